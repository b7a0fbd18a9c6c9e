using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;
using Platform.Functions.Workflows;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Workflows;

/// <summary>
/// The demo tenant's "weekly restock" workflow, run with the real <c>report</c> job type: its inventory-status report
/// of the demo data finds items low on stock, so the run asks the managers, waits for one to approve, and publishes
/// the <c>inventory.reorder</c> webhook.
/// </summary>
public sealed class DemoWorkflowTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_demo_tenant_gets_weekly_restock_which_reports_low_stock_asks_the_managers_and_publishes_the_reorder()
    {
        await using var app = await new PlatformApp(azurite, settings: PlatformApp.RunsJobs()) { Environment = "Development" }.ReadyAsync();
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
            run => run!.FinishedAt is not null || run.Steps.Single(s => s.Id == "approve").Status == StepStatuses.Waiting, "the approval to wait", TimeSpan.FromSeconds(120));
        Assert.True(waiting!.FinishedAt is null, $"The run finished before its approval: {waiting.Status} {waiting.Error}");

        // The real inventory-status report of the demo data: Bolt M10 (80 of reorder point 100) and the two imported
        // items with no stock yet (Nut M10, Washer M10, reorder point 200) are low; glue and saw are above theirs.
        var report = waiting.Steps.Single(s => s.Id == "report");
        Assert.Equal(StepStatuses.Succeeded, report.Status);
        Assert.Equal(3, report.Output!.Value.GetProperty("lowStockCount").GetDouble());
        var job = await app.Services.GetRequiredService<JobCommands>().GetAsync(tenant, report.Output.Value.GetProperty("jobId").GetString()!, Ct);
        Assert.Equal(("report", "succeeded"), (job!.Type, job.Status));
        Assert.True(waiting.Steps.Single(s => s.Id == "low-stock").Output!.Value.GetProperty("matched").GetBoolean());
        Assert.Equal(1, waiting.Steps.Single(s => s.Id == "ask").Output!.Value.GetProperty("recipients").GetInt32());
        Assert.Contains(app.MailTo("maria@demo.example"), m => m.Subject != null && m.Subject.Contains("approve the weekly reorder", StringComparison.Ordinal));

        // The approval is the managers': the admin may not answer it, Maria may.
        Assert.Equal(403, (await runs.RaiseAsync(caller, DemoWorkflows.Id, runId, "approve", null, Ct)).Error?.Status);
        var maria = new Caller(tenant, users.Single(u => u.View.Email == "maria@demo.example").View.Id, SessionGuard.SessionlessPrefix + "demo-test");
        Assert.True((await runs.RaiseAsync(maria, DemoWorkflows.Id, runId, "approve", null, Ct)).Succeeded);
        var done = await Eventually.Until(() => runs.GetAsync(tenant, DemoWorkflows.Id, runId, Ct), run => run!.FinishedAt is not null, "the run to finish", TimeSpan.FromSeconds(90));
        Assert.Equal(RunStatuses.Succeeded, done!.Status);
        Assert.Equal(maria.UserId, done.Steps.Single(s => s.Id == "approve").Output!.Value.GetProperty("by").GetString());
        var reorder = done.Steps.Single(s => s.Id == "reorder");
        Assert.Equal(StepStatuses.Succeeded, reorder.Status);
        Assert.Equal(DemoWorkflows.ReorderEvent, reorder.Output!.Value.GetProperty("event").GetString());
        Assert.False(string.IsNullOrEmpty(reorder.Output.Value.GetProperty("eventId").GetString()));
    }

    [Fact]
    public async Task The_demo_workflow_is_not_seeded_when_the_app_has_no_report_job_type()
    {
        // A workflow naming a job type the app lacks would be refused on save: the seeding skips it instead.
        await using var app = await new PlatformApp(azurite, settings: PlatformApp.RunsJobs(),
            services: services => services.PostConfigure<JobTypeCatalog>(catalog => catalog.Names.Remove("report"))) { Environment = "Development" }.ReadyAsync();
        var tenant = await DemoTenantAsync(app);
        var jobs = app.Services.GetRequiredService<TaskHubClient>();
        await Eventually.Until(async () =>
        {
            var page = await jobs.QueryPageAsync(new Microsoft.DurableTask.Client.OrchestrationQuery(InstanceIdPrefix: JobIds.TenantPrefix(tenant)), Ct);
            return page.Values.Count(i => i.IsCompleted);
        }, count => count == 2, "the demo's jobs", TimeSpan.FromSeconds(90));

        // The seeding runs on a session of the admin's, revoked once it is done (the workflow comes before that).
        var users = await app.Services.GetRequiredService<UserProjections>().RowsAsync(tenant, Ct);
        var admin = users.Single(u => u.View.Email == DemoTenant.AdminEmail).View.Id;
        var sessions = app.Services.GetRequiredService<Sessions>();
        await Eventually.Until(() => sessions.ListAsync(tenant, admin, Ct), active => active.Count == 0, "the demo seeding to finish", TimeSpan.FromSeconds(60));
        Assert.Null(await app.Services.GetRequiredService<WorkflowStore>().GetAsync(tenant, DemoWorkflows.Id, Ct));
    }

    private static async Task<TenantId> DemoTenantAsync(PlatformApp app)
    {
        var tenants = app.Services.GetRequiredService<TenantDirectory>();
        var demo = await Eventually.Until(() => tenants.FindBySlugAsync(DemoTenant.Slug, Ct), t => t is not null, "the demo tenant");
        return new TenantId(demo!.Id);
    }
}
