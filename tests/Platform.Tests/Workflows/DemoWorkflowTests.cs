using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;
using Platform.Functions.Workflows;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Workflows;

/// <summary>
/// The demo tenant's "weekly restock" workflow. Its first step is a <c>report</c> job, which this branch does not
/// have: with a stand-in report job type (reporting a low-stock figure) the workflow is seeded and runs through to
/// its <c>inventory.reorder</c> webhook; without one it is not seeded.
/// </summary>
public sealed class DemoWorkflowTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string StandInJob = "test.report";

    [Fact]
    public async Task The_demo_tenant_gets_weekly_restock_which_asks_the_managers_and_publishes_the_reorder()
    {
        await using var app = await new PlatformApp(azurite, settings: PlatformApp.RunsJobs(), services: services =>
        {
            services.AddOrchestrator<StandInReportJob>(StandInJob);
            services.AddJobType<StandInReport>("report");
        }) { Environment = "Development" }.ReadyAsync();
        var tenant = await DemoTenantAsync(app);
        var store = app.Services.GetRequiredService<WorkflowStore>();
        var workflow = await Eventually.Until(() => store.GetAsync(tenant, DemoWorkflows.Id, Ct), w => w is not null, "the demo workflow", TimeSpan.FromSeconds(120));
        Assert.Equal(["report", "low-stock", "ask", "approve", "reorder"], workflow!.StepList().Select(s => s.Id));

        var users = await app.Services.GetRequiredService<UserProjections>().RowsAsync(tenant, Ct);
        var admin = users.Single(u => u.View.Email == DemoTenant.AdminEmail).View.Id;
        var caller = new Caller(tenant, admin, SessionGuard.SessionlessPrefix + "demo-test");
        var runs = app.Services.GetRequiredService<WorkflowRuns>();
        var runId = (await runs.StartRunAsync(caller, DemoWorkflows.Id, null, null, Ct)).Value.RunId;

        var waiting = await Eventually.Until(() => runs.GetAsync(tenant, DemoWorkflows.Id, runId, Ct),
            run => run!.Steps.Single(s => s.Id == "approve").Status == StepStatuses.Waiting, "the approval to wait", TimeSpan.FromSeconds(90));
        Assert.Equal(2, waiting!.Steps[0].Output!.Value.GetProperty("lowStockCount").GetDouble());
        Assert.Equal(1, waiting.Steps.Single(s => s.Id == "ask").Output!.Value.GetProperty("recipients").GetInt32());
        Assert.Contains(app.MailTo("maria@demo.example"), m => m.Subject != null && m.Subject.Contains("approve the weekly reorder", StringComparison.Ordinal));

        // The approval is the managers': the admin may not answer it, Maria may.
        Assert.Equal(403, (await runs.RaiseAsync(caller, DemoWorkflows.Id, runId, "approve", null, Ct)).Error?.Status);
        var maria = new Caller(tenant, users.Single(u => u.View.Email == "maria@demo.example").View.Id, SessionGuard.SessionlessPrefix + "demo-test");
        Assert.True((await runs.RaiseAsync(maria, DemoWorkflows.Id, runId, "approve", null, Ct)).Succeeded);
        var done = await Eventually.Until(() => runs.GetAsync(tenant, DemoWorkflows.Id, runId, Ct), run => run!.FinishedAt is not null, "the run to finish", TimeSpan.FromSeconds(90));
        Assert.Equal(RunStatuses.Succeeded, done!.Status);
        Assert.Equal("inventory.reorder", done.Steps[^1].Output!.Value.GetProperty("event").GetString());
        Assert.Equal(maria.UserId, done.Steps.Single(s => s.Id == "approve").Output!.Value.GetProperty("by").GetString());
    }

    [Fact]
    public async Task The_demo_workflow_is_seeded_only_when_the_app_has_a_report_job_type()
    {
        await using var app = await new PlatformApp(azurite, settings: PlatformApp.RunsJobs()) { Environment = "Development" }.ReadyAsync();
        var tenant = await DemoTenantAsync(app);
        var jobs = app.Services.GetRequiredService<TaskHubClient>();
        // The seeding ends with its export job; the workflow would be saved right after it.
        await Eventually.Until(async () =>
        {
            var page = await jobs.QueryPageAsync(new Microsoft.DurableTask.Client.OrchestrationQuery(InstanceIdPrefix: JobIds.TenantPrefix(tenant)), Ct);
            return page.Values.Count(i => i.IsCompleted);
        }, count => count == 2, "the demo's jobs", TimeSpan.FromSeconds(90));
        var seeded = await app.Services.GetRequiredService<WorkflowStore>().GetAsync(tenant, DemoWorkflows.Id, Ct);
        Assert.Equal(app.Services.GetRequiredService<JobTypes>().Names.Contains("report"), seeded is not null);
    }

    private static async Task<TenantId> DemoTenantAsync(PlatformApp app)
    {
        var tenants = app.Services.GetRequiredService<TenantDirectory>();
        var demo = await Eventually.Until(() => tenants.FindBySlugAsync(DemoTenant.Slug, Ct), t => t is not null, "the demo tenant");
        return new TenantId(demo!.Id);
    }

    /// <summary>Stands in for the report job type (built on another branch): any parameters object, needs inventory.read.</summary>
    public sealed class StandInReport(JobCommands jobs) : IJobType
    {
        public string? Check(JsonElement? parameters, string field, Platform.Functions.Http.Validation validation)
        {
            if (parameters is not { ValueKind: JsonValueKind.Object })
            {
                validation.Add(field, "must be an object");
                return null;
            }

            return Permissions.InventoryRead;
        }

        public Task<JobView> StartAsync(Caller caller, JsonElement? parameters, string jobId, CancellationToken cancellationToken) =>
            jobs.StartAsync(caller, StandInJob, new TestJobs.Parameters(), cancellationToken, jobId);
    }

    /// <summary>A report that finds two items low on stock.</summary>
    public sealed class StandInReportJob : JobOrchestrator<TestJobs.Parameters>
    {
        protected override Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<TestJobs.Parameters> input, JobRun run) =>
            Task.FromResult(run.Finish(JobOutcome.Succeeded) with { Figures = new Dictionary<string, double> { ["lowStockCount"] = 2 } });
    }
}
