using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;
using static Platform.Tests.Schedules.ScheduleApi;

namespace Platform.Tests.Schedules;

/// <summary>A one-off schedule run end to end on the real clock: the app's own timer sweeps every second and the worker runs the export.</summary>
public sealed class ScheduleRunTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs(new Dictionary<string, string?>
    {
        ["Platform:Schedules:SweepSchedule"] = "* * * * * *",
    });

    [Fact]
    public async Task A_one_off_schedule_starts_exactly_one_export_that_succeeds_and_shows_in_its_runs()
    {
        var runAt = DateTimeOffset.UtcNow.AddSeconds(2);
        var schedule = await Admin.OneOffAsync(runAt);
        var id = schedule.Id();

        var run = Assert.Single(await Admin.SettledRunsAsync(id));
        var jobId = run.Str("jobId");
        Assert.Equal(Iso(runAt), Iso(run.Time("dueAt")));
        Assert.True(run.Time("startedAt") >= run.Time("dueAt"));
        Assert.Equal(JsonValueKind.Null, run.GetProperty("runId").ValueKind);

        var job = await Admin.FinishedJobAsync(jobId);
        Assert.Equal("succeeded", job.Str("status"));
        Assert.Equal("export", job.Str("type"));
        var file = await Admin.GetAsync(job.Str("resultUrl"), Ct);
        Assert.Equal(HttpStatusCode.OK, file.StatusCode);
        Assert.Contains(Tenant.AdminEmail, await file.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        // The run follows its job; the one-off is spent.
        Assert.Equal("succeeded", Assert.Single(await Admin.RunsAsync(id)).Str("status"));
        var after = await Admin.GetJsonAsync($"{SchedulesPath}/{id}");
        Assert.Equal(JsonValueKind.Null, after.GetProperty("nextRunAt").ValueKind);
        Assert.Equal(Iso(runAt), Iso(after.Time("lastRunAt")));
        var jobs = (await Admin.GetJsonAsync("/api/v1/jobs")).GetProperty("items").EnumerateArray().Select(j => j.Id()).ToList();
        Assert.Equal([jobId], jobs);

        // The audit trail names the schedule as the actor, on behalf of the user it acts as.
        var entry = await Eventually.Until(
            async () => (await Admin.GetJsonAsync("/api/v1/audit?action=job.succeeded")).GetProperty("items").EnumerateArray().FirstOrDefault(e => e.Str("targetId") == jobId),
            e => e.ValueKind == JsonValueKind.Object, "the job.succeeded audit entry");
        Assert.Equal("schedule", entry.Str("actorType"));
        Assert.Equal(id, entry.Str("actorId"));
    }
}

/// <summary>
/// Whom a run acts as: the user who set the schedule's target, checked afresh at every run. The fake clock moves the
/// schedule's time; the sweep is run as its timer would run it.
/// </summary>
public sealed class ScheduleRunsAsTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private static readonly string[] KeyPermissions = ["jobs.read", "jobs.write", "users.read"];

    [Fact]
    public async Task A_run_of_a_deleted_creator_fails_with_the_reason_and_starts_nothing()
    {
        var opsId = await Admin.CreateUserIdAsync("ops@example.com", Accounts.Password, ["manager"]);
        using var ops = await App.SignInAsAsync(Tenant, "ops@example.com");
        var id = (await ops.OneOffAsync(Clock.GetUtcNow().AddMinutes(1))).Id();

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{opsId}", Ct)).StatusCode);
        Clock.Advance(TimeSpan.FromMinutes(2));
        await App.SweepAsync();

        var run = Assert.Single(await Admin.SettledRunsAsync(id));
        Assert.Equal("failed", run.Str("status"));
        Assert.Contains("deleted or disabled", run.Str("error"), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, run.GetProperty("jobId").ValueKind);
        Assert.Empty((await Admin.GetJsonAsync("/api/v1/jobs")).GetProperty("items").EnumerateArray());

        // Told once, as the schedule, with the reason.
        var failed = await Eventually.Until(
            async () => (await Admin.GetJsonAsync("/api/v1/audit?action=schedule.run.failed")).GetProperty("items").EnumerateArray().ToList(),
            entries => entries.Count > 0, "the schedule.run.failed audit entry");
        var entry = Assert.Single(failed);
        Assert.Equal(id, entry.Str("targetId"));
        Assert.Equal("schedule", entry.Str("actorType"));
    }

    [Fact]
    public async Task A_creator_who_lost_the_permission_gets_failed_runs_never_a_run_with_stale_rights()
    {
        var opsId = await Admin.CreateUserIdAsync("ops@example.com", Accounts.Password, ["manager"]);
        using var ops = await App.SignInAsAsync(Tenant, "ops@example.com");
        var schedule = await ops.CreateScheduleAsync(new { name = "every minute", cron = "* * * * *", timeZone = "UTC", target = ExportUsers });
        var id = schedule.Id();

        Clock.SetUtcNow(schedule.Time("nextRunAt").AddSeconds(1));
        await App.SweepAsync();
        var first = Assert.Single(await Admin.SettledRunsAsync(id));
        Assert.Equal("queued", first.Str("status"));
        Assert.Equal(first.Id(), first.Str("jobId"));

        // The default role reads jobs but may not start them.
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutRolesAsync(opsId, "user")).StatusCode);
        Clock.Advance(TimeSpan.FromMinutes(1));
        await App.SweepAsync();

        var runs = await Admin.SettledRunsAsync(id, 2);
        Assert.Equal(2, runs.Count);
        Assert.Equal("failed", runs[0].Str("status"));
        Assert.Contains("may no longer start it", runs[0].Str("error"), StringComparison.Ordinal);
        Assert.True(runs[0].Time("dueAt") > runs[1].Time("dueAt"));
        Assert.Single((await Admin.GetJsonAsync("/api/v1/jobs")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task A_schedule_set_by_an_API_key_stops_when_the_key_is_revoked()
    {
        var key = await (await Admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "scheduler", permissions = KeyPermissions }, Ct)).ReadJsonAsync(HttpStatusCode.Created);
        using var byKey = App.CreateClient();
        byKey.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key.Str("key"));
        var id = (await byKey.OneOffAsync(Clock.GetUtcNow().AddMinutes(1))).Id();

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/api-keys/{key.Id()}", Ct)).StatusCode);
        Clock.Advance(TimeSpan.FromMinutes(2));
        await App.SweepAsync();

        var run = Assert.Single(await Admin.SettledRunsAsync(id));
        Assert.Equal("failed", run.Str("status"));
        Assert.Contains("API key", run.Str("error"), StringComparison.Ordinal);
        Assert.Empty((await Admin.GetJsonAsync("/api/v1/jobs")).GetProperty("items").EnumerateArray());
    }
}
