using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>
/// The durable engine as a user of the jobs API sees it: jobs run on DTFx's worker against Azurite, and their status,
/// progress, failures and cancellation come back through <c>/api/v1/jobs</c>.
/// </summary>
public sealed class JobEngineTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private static readonly object JobRunnerRole = new { permissions = new[] { "jobs.read", "jobs.write" } };

    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs();

    // The test jobs' step log and gates are the app's, one per test.
    protected override bool SharesApp => false;

    protected override void ConfigureServices(IServiceCollection services) => services.AddTestJobs();

    private TestJobs.StepLog Log => App.Services.GetRequiredService<TestJobs.StepLog>();

    private async Task<string> StartAsync(string type, TestJobs.Parameters parameters, PlatformApp? app = null)
    {
        await using var scope = (app ?? App).Services.CreateAsyncScope();
        var job = await scope.ServiceProvider.GetRequiredService<JobCommands>()
            .StartAsync(new Caller(new TenantId(Tenant.Id), Tenant.AdminId, "test-session"), type, parameters, Ct);
        return job.Id;
    }

    private Task<JsonElement> FinishedAsync(string id) => Admin.FinishedJobAsync(id);

    [Fact]
    public async Task A_job_runs_on_the_engine_and_reads_back_succeeded_with_its_times()
    {
        var id = await StartAsync(TestJobs.NoOp, new());

        var job = await FinishedAsync(id);

        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        Assert.Equal(TestJobs.NoOp, job.GetProperty("type").GetString());
        Assert.Equal(id, job.GetProperty("id").GetString());
        var created = job.GetProperty("createdAt").GetDateTimeOffset();
        var started = job.GetProperty("startedAt").GetDateTimeOffset();
        var finished = job.GetProperty("finishedAt").GetDateTimeOffset();
        Assert.True(created <= started && started <= finished, $"{created} <= {started} <= {finished}");
        var response = await Admin.GetAsync($"/api/v1/jobs/{id}", Ct);
        Assert.Null(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task A_running_job_shows_its_progress_and_asks_to_be_polled_again()
    {
        var id = await StartAsync(TestJobs.Steps, new(Steps: 3));
        await Log.FirstStepStarted.Task.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        var running = await Eventually.Until(() => Admin.GetAsync($"/api/v1/jobs/{id}", Ct),
            r => r.Headers.RetryAfter is not null, "the job to show as running");
        var body = await running.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("running", body.GetProperty("status").GetString());
        Assert.Equal(0, body.GetProperty("progress").GetProperty("processed").GetInt64());

        Log.Gate.SetResult();
        var job = await FinishedAsync(id);
        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        var progress = job.GetProperty("progress");
        Assert.Equal(3, progress.GetProperty("total").GetInt64());
        Assert.Equal(3, progress.GetProperty("processed").GetInt64());
        Assert.Equal(3, progress.GetProperty("succeeded").GetInt64());
    }

    [Fact]
    public async Task An_activity_that_always_throws_fails_the_job_with_the_reason_after_its_retries()
    {
        var id = await StartAsync(TestJobs.AlwaysFails, new());

        var job = await FinishedAsync(id);

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains(TestJobs.FailureMessage, job.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(4, Log.RunsOf(id));
    }

    [Fact]
    public async Task A_cancelled_job_stops_between_steps_and_says_what_was_done()
    {
        var id = await StartAsync(TestJobs.Steps, new(Steps: 5));
        await Log.FirstStepStarted.Task.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        var cancel = await Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Log.Gate.SetResult();

        var job = await FinishedAsync(id);
        Assert.Equal("cancelled", job.GetProperty("status").GetString());
        var processed = job.GetProperty("progress").GetProperty("processed").GetInt64();
        Assert.InRange(processed, 1, 4);
        Assert.Contains($"after {processed} of 5", job.GetProperty("note").GetString(), StringComparison.Ordinal);

        var again = await Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("job_finished", (await again.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Retrying_a_failed_job_runs_it_again_under_its_own_id()
    {
        var id = await StartAsync(TestJobs.AlwaysFails, new());
        await FinishedAsync(id);

        var retry = await Admin.PostAsync($"/api/v1/jobs/{id}/retry", null, Ct);

        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        Assert.Equal($"/api/v1/jobs/{id}", retry.Headers.Location?.OriginalString);
        await Eventually.Until(() => Task.FromResult(Log.RunsOf(id)), runs => runs == 8, "the retried job's activity to run its four attempts again");
        Assert.Equal("failed", (await FinishedAsync(id)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_succeeded_job_has_nothing_to_retry()
    {
        var id = await StartAsync(TestJobs.NoOp, new());
        await FinishedAsync(id);

        var retry = await Admin.PostAsync($"/api/v1/jobs/{id}/retry", null, Ct);

        Assert.Equal(HttpStatusCode.Conflict, retry.StatusCode);
        Assert.Equal("job_succeeded", (await retry.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task The_job_list_filters_by_type_and_status_and_pages_with_a_token()
    {
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await StartAsync(TestJobs.NoOp, new()));
        }

        var failed = await StartAsync(TestJobs.AlwaysFails, new());
        foreach (var id in ids.Append(failed))
        {
            await FinishedAsync(id);
        }

        var noOps = await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs?type={TestJobs.NoOp}", Ct);
        Assert.Equal(ids, noOps.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetString()!).ToList());

        var failures = await Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs?status=failed", Ct);
        Assert.Equal([failed], failures.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetString()!).ToList());

        var seen = new List<string>();
        string? token = null;
        do
        {
            var page = await Admin.GetFromJsonAsync<JsonElement>(
                "/api/v1/jobs?pageSize=2" + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token)), Ct);
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetString()!));
            token = page.GetProperty("continuationToken").GetString();
        }
        while (token is not null);

        Assert.Equal([.. ids, failed], seen);

        var bad = await Admin.GetAsync("/api/v1/jobs?status=sleeping", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task Progress_streams_as_server_sent_events_ending_with_the_final_status()
    {
        var id = await StartAsync(TestJobs.Steps, new(Steps: 2));
        await Log.FirstStepStarted.Task.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        using var response = await Admin.GetAsync($"/api/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Log.Gate.SetResult();
        var stream = await response.Content.ReadAsStringAsync(Ct);

        Assert.StartsWith("event: progress\ndata: ", stream, StringComparison.Ordinal);
        var last = stream.TrimEnd().Split("\n\n")[^1];
        Assert.StartsWith("event: status\ndata: ", last, StringComparison.Ordinal);
        var final = JsonDocument.Parse(last["event: status\ndata: ".Length..]).RootElement;
        Assert.Equal("succeeded", final.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_job_of_another_tenant_is_not_found_on_every_job_route()
    {
        var id = await StartAsync(TestJobs.NoOp, new());
        await FinishedAsync(id);
        var other = await App.SignUpAsync();
        using var stranger = await App.SignedInClientAsync(other);

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, $"/api/v1/jobs/{id}"),
            (HttpMethod.Post, $"/api/v1/jobs/{id}/cancel"),
            (HttpMethod.Post, $"/api/v1/jobs/{id}/retry"),
            (HttpMethod.Get, $"/api/v1/jobs/{id}/result"),
            (HttpMethod.Get, $"/api/v1/jobs/{id}/error-report"),
            (HttpMethod.Get, $"/api/v1/jobs/{id}/events"),
        })
        {
            var response = await stranger.SendAsync(new HttpRequestMessage(method, path), Ct);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {response.StatusCode}");
            Assert.Equal("not_found", (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("code").GetString());
        }

        var list = await stranger.GetFromJsonAsync<JsonElement>("/api/v1/jobs", Ct);
        Assert.Empty(list.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Ids_that_name_no_job_are_not_found()
    {
        foreach (var id in new[] { "nope", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "..%2F..%2Fx", new string('a', 200) })
        {
            var response = await Admin.GetAsync($"/api/v1/jobs/{id}", Ct);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
    }

    [Fact]
    public async Task Finished_jobs_older_than_the_retention_are_purged_with_their_history()
    {
        var id = await StartAsync(TestJobs.NoOp, new());
        await FinishedAsync(id);
        await using var scope = App.Services.CreateAsyncScope();
        var retention = scope.ServiceProvider.GetRequiredService<JobRetention>();

        Assert.Equal(0, await retention.PurgeAsync(DateTimeOffset.UtcNow.AddHours(-1), Ct));
        Assert.Equal(1, await retention.PurgeAsync(DateTimeOffset.UtcNow.AddMinutes(1), Ct));

        var gone = await Admin.GetAsync($"/api/v1/jobs/{id}", Ct);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Starting_jobs_needs_jobs_write_and_the_permission_of_what_is_moved()
    {
        using var user = await SignedInAsync("plain@example.com");
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsJsonAsync("/api/v1/jobs/exports", new { kind = "users" }, Ct)).StatusCode);

        // jobs.write alone does not open the users table.
        (await Admin.PutAsJsonAsync("/api/v1/roles/jobrunner", JobRunnerRole, Ct)).EnsureSuccessStatusCode();
        using var runner = await SignedInAsync("runner@example.com", "jobrunner");
        var export = await runner.PostAsJsonAsync("/api/v1/jobs/exports", new { kind = "users" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, export.StatusCode);
        Assert.Contains("users.read", (await export.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_worker_stopped_after_its_container_disposed_it_stops_without_an_error()
    {
        var worker = App.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().Single(s => s.GetType().Name == "DurableWorkerHost");

        ((IDisposable)worker).Dispose();

        await worker.StopAsync(Ct);
    }
}
