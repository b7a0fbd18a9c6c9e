using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Backups;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Schedules;
using Platform.Tests.Users;
using static Platform.Tests.Schedules.ScheduleApi;

namespace Platform.Tests.Backups;

/// <summary>
/// Every new tenant gets a daily backup: a schedule of its own, made at sign-up, that acts for the admin who signed up
/// and makes <c>scheduled</c> backups, which the tenant can change or turn off like any schedule.
/// </summary>
public sealed class BackupScheduleTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups(new Dictionary<string, string?>
    {
        ["Platform:Backups:DailySchedule"] = "30 2 * * *",
        ["Platform:Backups:DailyScheduleTimeZone"] = "Europe/Berlin",
        ["Platform:Schedules:SweepSchedule"] = "* * * * * *",
    });

    [Fact]
    public async Task A_new_tenant_gets_a_daily_backup_schedule_that_acts_for_its_admin_and_makes_scheduled_backups()
    {
        var schedule = await DailyBackupAsync();
        // The configured minute is replaced by one of the tenant's own, so tenants' backups spread over the hour.
        Assert.Equal(DefaultBackupSchedule.Spread("30 2 * * *", new TenantId(Tenant.Id)), schedule.Str("cron"));
        Assert.Matches(@"^([0-9]|[1-5][0-9]) 2 \* \* \*$", schedule.Str("cron"));
        Assert.Equal("Europe/Berlin", schedule.Str("timeZone"));
        Assert.True(schedule.GetProperty("enabled").GetBoolean());
        Assert.Equal(Tenant.AdminId, schedule.Str("runsAs"));
        Assert.Equal("backup", schedule.GetProperty("target").GetProperty("job").Str("type"));
        var next = schedule.Time("nextRunAt");
        Assert.True(next > Clock.GetUtcNow() && next <= Clock.GetUtcNow().AddDays(1), $"next run {next}");
        var minute = int.Parse(schedule.Str("cron").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(new TimeOnly(2, minute), TimeOnly.FromDateTime(TimeZoneInfo.ConvertTime(next, TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin")).DateTime));

        // The audit trail names the schedule as having made itself, on behalf of the admin.
        var created = await Eventually.Until(
            async () => (await Admin.GetJsonAsync($"/api/v1/audit?action=schedule.created&targetId={schedule.Id()}")).GetProperty("items").EnumerateArray().ToList(),
            items => items.Count == 1, "the schedule.created audit entry");
        Assert.Equal("schedule", created[0].Str("actorType"));

        // Once it is due, the app's own sweep (every second here) starts a backup that is listed as scheduled.
        Clock.SetUtcNow(next.AddSeconds(1));
        await SignInAdminAgainAsync();
        var run = Assert.Single(await Admin.SettledRunsAsync(schedule.Id()));
        var job = await Admin.FinishedJobAsync(run.Str("jobId"));
        Assert.True(job.Str("status") == "succeeded", $"the scheduled backup ended {job}");
        var backup = Assert.Single(await Admin.ListBackupsAsync());
        Assert.Equal("scheduled", backup.Str("kind"));
        Assert.Equal(run.Str("jobId"), backup.Id());
        Assert.True(backup.GetProperty("verified").GetBoolean());
    }

    [Fact]
    public async Task The_sign_up_event_delivered_again_makes_no_second_schedule_and_the_tenant_can_turn_it_off()
    {
        var schedule = await DailyBackupAsync();

        // At-least-once delivery: the same tenant.created event (same id) reaches the subscriber again.
        var again = new PublishedEvent(schedule.Id(), Clock.GetUtcNow(),
            new PlatformEvent("tenant.created", Actor.User(Tenant.AdminId, null), "tenant", Tenant.Id));
        await App.Services.GetRequiredService<DefaultBackupSchedule>().OnEventsAsync(new TenantId(Tenant.Id), [again], Ct);
        Assert.Single(await SchedulesAsync());

        var patched = await Admin.PatchAsJsonAsync($"{SchedulesPath}/{schedule.Id()}", new { enabled = false }, Ct);
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var off = Assert.Single(await SchedulesAsync());
        Assert.False(off.GetProperty("enabled").GetBoolean());
        Assert.Equal(JsonValueKind.Null, off.GetProperty("nextRunAt").ValueKind);
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{SchedulesPath}/{schedule.Id()}", Ct)).StatusCode);
        Assert.Empty(await SchedulesAsync());
    }

    [Fact]
    public async Task Another_tenants_daily_backup_schedule_is_not_found()
    {
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        var theirs = await Eventually.Until(async () => (await otherAdmin.GetJsonAsync(SchedulesPath)).GetProperty("items").EnumerateArray().ToList(),
            items => items.Count == 1, "the other tenant's daily backup schedule");
        var id = theirs[0].Id();

        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync($"{SchedulesPath}/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.PatchAsJsonAsync($"{SchedulesPath}/{id}", new { enabled = false }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.DeleteAsync($"{SchedulesPath}/{id}", Ct)).StatusCode);
        Assert.True((await otherAdmin.GetJsonAsync($"{SchedulesPath}/{id}")).GetProperty("enabled").GetBoolean());
    }

    private async Task<List<JsonElement>> SchedulesAsync() =>
        [.. (await Admin.GetJsonAsync(SchedulesPath)).GetProperty("items").EnumerateArray()];

    /// <summary>The schedule sign-up made: the event that makes it is relayed just after the sign-up answered.</summary>
    private async Task<JsonElement> DailyBackupAsync()
    {
        var schedules = await Eventually.Until(SchedulesAsync, items => items.Count > 0, "the daily backup schedule");
        var schedule = Assert.Single(schedules);
        Assert.Equal(DefaultBackupSchedule.Name, schedule.Str("name"));
        return schedule;
    }
}
