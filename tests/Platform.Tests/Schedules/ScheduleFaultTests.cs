using System.Text.Json;
using Azure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Roles;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;
using static Platform.Tests.Schedules.ScheduleApi;

namespace Platform.Tests.Schedules;

/// <summary>
/// Schedules under faults, with app instances sharing one storage prefix and one fake clock: two instances sweeping
/// one due occurrence at once, a start that fails after the claim, and every instance down across occurrences.
/// </summary>
public sealed class ScheduleFaultTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private PlatformApp NewApp(string prefix, FakeTimeProvider clock, Action<IServiceCollection>? more = null, IDictionary<string, string?>? settings = null) =>
        new(azurite, prefix, settings, services: services =>
        {
            services.AddSingleton<TimeProvider>(clock);
            more?.Invoke(services);
        });

    /// <summary>The app's own timer sweeps once a year, so the test's sweeps are the only ones.</summary>
    private static readonly Dictionary<string, string?> SweepsOnlyWhenAsked = new() { ["Platform:Schedules:SweepSchedule"] = "0 0 0 1 1 *" };

    private static async Task<IReadOnlyList<string>> JobIdsAsync(HttpClient client) =>
        [.. (await client.GetJsonAsync("/api/v1/jobs")).GetProperty("items").EnumerateArray().Select(j => j.Id())];

    [Fact]
    public async Task Two_instances_sweeping_one_due_schedule_at_once_make_one_run_and_one_job()
    {
        var prefix = PlatformApp.NewPrefix();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var first = await NewApp(prefix, clock).ReadyAsync();
        await using var second = await NewApp(prefix, clock).ReadyAsync();
        var tenant = await first.SignUpAsync();
        using var admin = await first.SignedInClientAsync(tenant);
        var id = (await admin.OneOffAsync(clock.GetUtcNow().AddSeconds(30))).Id();

        clock.Advance(TimeSpan.FromMinutes(1));
        await Task.WhenAll(Enumerable.Range(0, 3).SelectMany(_ => new[] { first.SweepAsync(), second.SweepAsync() }));

        var run = Assert.Single(await admin.SettledRunsAsync(id));
        Assert.Equal("queued", run.Str("status"));
        Assert.Equal([run.Str("jobId")], await JobIdsAsync(admin));
    }

    [Fact]
    public async Task A_start_that_fails_after_the_claim_is_started_by_the_next_sweep_under_the_same_id_once()
    {
        var prefix = PlatformApp.NewPrefix();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var attempts = new FlakyJobType.Attempts();
        await using var app = await NewApp(prefix, clock, services =>
        {
            services.AddTestJobs();
            services.AddSingleton(attempts);
            services.AddJobType<FlakyJobType>(FlakyJobType.Name);
        }, SweepsOnlyWhenAsked).ReadyAsync();
        var tenant = await app.SignUpAsync();
        using var admin = await app.SignedInClientAsync(tenant);
        var id = (await admin.OneOffAsync(clock.GetUtcNow().AddSeconds(30), new { job = new { type = FlakyJobType.Name } })).Id();

        clock.Advance(TimeSpan.FromMinutes(1));
        await app.SweepAsync();

        // Claimed (the schedule moved on), not started: as after a crash between claim and start.
        var pending = Assert.Single(await admin.RunsAsync(id));
        Assert.Equal("pending", pending.Str("status"));
        Assert.Equal(JsonValueKind.Null, (await admin.GetJsonAsync($"{SchedulesPath}/{id}")).GetProperty("nextRunAt").ValueKind);
        Assert.Empty(await JobIdsAsync(admin));

        await app.SweepAsync();
        await app.SweepAsync();

        var run = Assert.Single(await admin.SettledRunsAsync(id));
        Assert.Equal(pending.Id(), run.Str("jobId"));
        Assert.Equal([run.Str("jobId")], await JobIdsAsync(admin));
        Assert.Equal(2, attempts.Count);
    }

    [Fact]
    public async Task An_app_down_across_several_occurrences_makes_one_catch_up_run_at_start_then_keeps_time()
    {
        var prefix = PlatformApp.NewPrefix();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        TestTenant tenant;
        string id;
        DateTimeOffset firstDue;
        await using (var before = await NewApp(prefix, clock).ReadyAsync())
        {
            tenant = await before.SignUpAsync();
            using var admin = await before.SignedInClientAsync(tenant);
            var schedule = await admin.CreateScheduleAsync(new { name = "every minute", cron = "* * * * *", timeZone = "UTC", target = ExportUsers });
            id = schedule.Id();
            firstDue = schedule.Time("nextRunAt");
        }

        // Every instance is down while three occurrences pass.
        clock.SetUtcNow(firstDue.AddMinutes(2).AddSeconds(20));

        await using var after = await NewApp(prefix, clock).ReadyAsync();
        using var client = await after.SignedInClientAsync(tenant);

        // The app's own timer fires the missed sweep once at start: one run, for the first missed occurrence.
        var run = Assert.Single(await client.SettledRunsAsync(id));
        Assert.Equal(firstDue, run.Time("dueAt"));
        Assert.Equal("queued", run.Str("status"));
        var schedule2 = await client.GetJsonAsync($"{SchedulesPath}/{id}");
        Assert.Equal(firstDue.AddMinutes(3), schedule2.Time("nextRunAt"));

        // Sweeping again finds nothing more to do until the next occurrence, which runs on its own.
        await after.SweepAsync();
        Assert.Single(await client.RunsAsync(id));
        clock.SetUtcNow(firstDue.AddMinutes(3).AddSeconds(1));
        await after.SweepAsync();
        var runs = await client.SettledRunsAsync(id, 2);
        Assert.Equal([firstDue.AddMinutes(3), firstDue], runs.Select(r => r.Time("dueAt")).ToList());
        Assert.Equal(2, (await JobIdsAsync(client)).Count);
    }

    /// <summary>A job type whose first start fails the way an unreachable engine would; later starts start a no-op job.</summary>
    private sealed class FlakyJobType(JobCommands jobs, FlakyJobType.Attempts attempts) : IJobType
    {
        public const string Name = "test.flaky";

        public sealed class Attempts
        {
            private int _count;

            public int Count => _count;

            public int Next() => Interlocked.Increment(ref _count);
        }

        public string? Check(JsonElement? parameters, string field, Validation validation) => Permissions.JobsRead;

        public async Task<JobView> StartAsync(Caller caller, JsonElement? parameters, string jobId, CancellationToken cancellationToken)
        {
            if (attempts.Next() == 1)
            {
                throw new RequestFailedException(503, "The task hub did not answer.");
            }

            return await jobs.StartAsync(caller, TestJobs.NoOp, new TestJobs.Parameters(), cancellationToken, jobId);
        }
    }
}
