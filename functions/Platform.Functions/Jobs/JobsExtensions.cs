using Platform.Functions.Hosting;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Jobs;

public static class JobsExtensions
{
    /// <summary>
    /// The durable engine (the task hub, its in-process worker and client), the job API and the long work built on
    /// it. Orchestrations and activities are registered here; the rows they move come from the capabilities' import
    /// and export kinds, registered in each capability's own extensions.
    /// </summary>
    public static IHostApplicationBuilder AddJobs(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<JobOptions>(JobOptions.Section);
        services.AddStorageContainer(JobFiles.ContainerName);
        services.AddSingleton<JobFiles>();
        services.AddStorageTable(JobFailures.TableName);
        services.AddSingleton<JobFailures>();
        services.AddSingleton<JobCommands>();
        services.AddScoped<JobFilePermissions>();

        services.AddSingleton<DurableLogging>();
        services.AddSingleton<TaskHub>();
        services.AddSingleton<TaskHubClient>();
        services.AddSingleton<DurableObjects>();
        services.AddHostedService<DurableWorkerHost>();
        services.AddOptions<DurableCatalog>();
        services.AddOptions<ImportKindCatalog>();
        services.AddOptions<ExportKindCatalog>();

        services.AddActivity<JobFinished>(JobFinished.Name);
        services.AddOrchestrator<ImportOrchestrator>(ImportOrchestrator.Name);
        services.AddActivity<ImportSplit>(ImportSplit.Name);
        services.AddActivity<ImportApply>(ImportApply.Name);
        services.AddActivity<ImportReport>(ImportReport.Name);
        services.AddActivity<ImportCleanup>(ImportCleanup.Name);
        services.AddOrchestrator<ExportOrchestrator>(ExportOrchestrator.Name);
        services.AddActivity<ExportWrite>(ExportWrite.Name);

        // What schedules and workflow steps start by name.
        services.AddOptions<JobTypeCatalog>();
        services.AddSingleton<JobTypes>();
        services.AddSingleton<ExportJobType>();
        services.AddJobType<ExportJobType>("export");

        services.AddTimerFunction<JobRetention>("JobRetention", "0 15 * * * *");
        return builder;
    }
}
