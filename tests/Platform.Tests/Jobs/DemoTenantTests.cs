using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>What <c>./infra/run.sh</c> shows a developer: the Development app seeds a demo tenant, finished jobs included.</summary>
public sealed class DemoTenantTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_development_app_seeds_a_demo_tenant_with_an_import_that_has_an_error_report_and_an_export()
    {
        await using var app = await new PlatformApp(azurite, settings: PlatformApp.RunsJobs()) { Environment = "Development" }.ReadyAsync();
        var tenants = app.Services.GetRequiredService<TenantDirectory>();
        var demo = await Eventually.Until(() => tenants.FindBySlugAsync(DemoTenant.Slug, Ct), t => t is not null, "the demo tenant");
        var tenant = new TenantId(demo!.Id);
        var client = app.Services.GetRequiredService<TaskHubClient>();
        var jobs = app.Services.GetRequiredService<JobCommands>();

        var finished = await Eventually.Until(async () =>
        {
            var page = await client.QueryPageAsync(new OrchestrationQuery(InstanceIdPrefix: JobIds.TenantPrefix(tenant), FetchInputsAndOutputs: true), Ct);
            var views = new List<JobView>();
            foreach (var instance in page.Values)
            {
                Assert.True(JobIds.TryParse(instance.InstanceId, out _, out var id));
                views.Add(await jobs.ViewAsync(tenant, instance, id, Ct));
            }

            return views;
        }, views => views.Count == 2 && views.All(v => v.IsFinished), "the demo's two jobs to finish", TimeSpan.FromSeconds(90));

        var import = Assert.Single(finished, j => j.Type == "import");
        Assert.Equal("completed_with_errors", import.Status);
        Assert.NotNull(import.ErrorReportUrl);
        var export = Assert.Single(finished, j => j.Type == "export");
        Assert.Equal("succeeded", export.Status);
        Assert.Equal(5, export.Progress.Succeeded);
    }
}
