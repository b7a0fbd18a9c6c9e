using Platform.Functions.Events;
using Platform.Functions.Hosting;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Workflows;

public static class WorkflowsExtensions
{
    /// <summary>Workflow definitions, their runs (one durable orchestration each) and what schedules start runs through.</summary>
    public static IHostApplicationBuilder AddWorkflows(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<WorkflowOptions>(WorkflowOptions.Section);
        services.AddEventOutbox(WorkflowStore.TableName);
        services.AddTenantData(WorkflowStore.TableName);
        services.AddSingleton<WorkflowValidator>();
        services.AddSingleton<WorkflowStore>();
        services.AddSingleton<WorkflowRuns>();
        services.AddSingleton<IWorkflowRunStarter>(provider => provider.GetRequiredService<WorkflowRuns>());
        services.AddSingleton<WorkflowMail>();
        services.AddSingleton<DemoWorkflows>();

        services.AddOrchestrator<WorkflowOrchestrator>(WorkflowOrchestrator.Name);
        services.AddActivity<WorkflowJobStart>(WorkflowJobStart.Name);
        services.AddActivity<WorkflowJobStatus>(WorkflowJobStatus.Name);
        services.AddActivity<WorkflowJobCancel>(WorkflowJobCancel.Name);
        services.AddActivity<WorkflowWebhook>(WorkflowWebhook.Name);
        services.AddActivity<WorkflowMailStep>(WorkflowMailStep.Name);
        services.AddActivity<WorkflowFinished>(WorkflowFinished.Name);
        services.AddTimerFunction<WorkflowRetention>("WorkflowRetention", "0 20 * * * *");
        return builder;
    }
}
