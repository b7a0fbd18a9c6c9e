using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Schedules;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>What <c>./infra/run.sh</c> shows a developer: the Development app seeds a demo tenant, finished jobs included.</summary>
public sealed class DemoTenantTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_development_app_seeds_a_demo_tenant_with_an_import_that_has_an_error_report_an_export_a_report_a_backup_and_schedules()
    {
        // As ./infra/run.sh runs it: new tenants get their daily backup schedule.
        await using var app = await new PlatformApp(azurite, settings: PlatformApp.RunsJobs(new Dictionary<string, string?> { ["Platform:Backups:DailySchedule"] = "0 2 * * *" }))
        {
            Environment = "Development",
        }.ReadyAsync();
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
        }, views => views.Count == 4 && views.All(v => v.IsFinished), "the demo's four jobs to finish", TimeSpan.FromSeconds(120));

        var import = Assert.Single(finished, j => j.Type == "import");
        Assert.Equal("completed_with_errors", import.Status);
        Assert.NotNull(import.ErrorReportUrl);
        var export = Assert.Single(finished, j => j.Type == "export");
        Assert.Equal("succeeded", export.Status);
        Assert.Equal(5, export.Progress.Succeeded);
        var report = Assert.Single(finished, j => j.Type == "report");
        Assert.Equal("succeeded", report.Status);
        Assert.True(report.Figures!["lowStockCount"] > 0, "the demo's bolts are below their reorder point");

        var backup = Assert.Single(finished, j => j.Type == "backup");
        Assert.Equal("succeeded", backup.Status);
        var listed = Assert.Single(await app.Services.GetRequiredService<Platform.Functions.Backups.BackupStore>().ListAsync(tenant, 10, Ct));
        Assert.True(listed.Verified);

        // Weekly restock runs on its own: Mondays at 06:00 in Berlin, the next Monday planned; and the daily backup.
        var schedules = await Eventually.Until(() => app.Services.GetRequiredService<ScheduleCommands>().ListAsync(tenant, Ct), list => list.Count == 2, "the demo's two schedules");
        Assert.Contains(schedules, s => s.Name == "Daily backup" && s.JobType == "backup" && s.Enabled);
        var schedule = Assert.Single(schedules, s => s.Name == "Weekly restock");
        Assert.Equal("Weekly restock", schedule.Name);
        Assert.Equal("0 6 * * MON", schedule.Cron);
        Assert.Equal("Europe/Berlin", schedule.TimeZone);
        Assert.True(schedule.Enabled);
        Assert.Equal(DayOfWeek.Monday, TimeZoneInfo.ConvertTime(schedule.NextRunAt!.Value, TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin")).DayOfWeek);
    }
}
