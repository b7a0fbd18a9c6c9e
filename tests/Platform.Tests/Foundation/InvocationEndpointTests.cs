using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Housekeeping;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>
/// The custom-handler contract: the Functions host POSTs <c>/{FunctionName}</c> with <c>{"Data","Metadata"}</c> and
/// needs <c>{"Outputs","Logs","ReturnValue"}</c> back. The standalone runtime is off here, so only the host path runs.
/// </summary>
public sealed class InvocationEndpointTests(Azurite azurite) : IAsyncLifetime
{
    private static readonly TenantId Tenant = new("01TENANTINVOCATIONS");
    private PlatformApp _app = null!;
    private HttpClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _app = await new PlatformApp(azurite,
            settings: new Dictionary<string, string?> { ["Platform:Triggers:Standalone"] = "false" },
            services: s => s.AddTestJobTypes()).ReadyAsync();
        _client = _app.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    private JobQueue Jobs => _app.Services.GetRequiredService<JobQueue>();
    private TestJobTypes.JobLog Log => _app.Services.GetRequiredService<TestJobTypes.JobLog>();

    [Fact]
    public async Task TimerInvocationRunsHousekeepingAndAnswersInTheHostsShape()
    {
        var expirations = _app.Services.GetRequiredService<Expirations>();
        var jobs = Jobs.Jobs(Tenant);
        var expired = new JobEntity { RowKey = Ids.New(), Type = "expired" };
        var current = new JobEntity { RowKey = Ids.New(), Type = "current" };
        await jobs.AddAsync(expired, Ct);
        await jobs.AddAsync(current, Ct);
        await expirations.ScheduleAsync(JobQueue.TableName, Tenant, expired.RowKey, DateTimeOffset.UtcNow.AddMinutes(-1), Ct);
        await expirations.ScheduleAsync(JobQueue.TableName, Tenant, current.RowKey, DateTimeOffset.UtcNow.AddMinutes(1), Ct);

        var response = await _client.PostAsync("/StorageHousekeeping", Json("""
            {"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2026-11-22T10:00:00Z","Next":"2026-11-22T10:05:00Z","LastUpdated":"2026-11-22T10:00:00Z"},"IsPastDue":false}},
             "Metadata":{"timer":{},"sys":{"MethodName":"StorageHousekeeping","UtcNow":"2026-11-22T10:00:00Z","RandGuid":"0b5d4c4e-0000-0000-0000-000000000000"}}}
            """), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"Outputs":{},"Logs":[],"ReturnValue":null}""", await response.Content.ReadAsStringAsync(Ct));
        Assert.Null(await jobs.GetAsync<JobEntity>(expired.RowKey, Ct));
        Assert.NotNull(await jobs.GetAsync<JobEntity>(current.RowKey, Ct));
    }

    [Theory]
    [InlineData("object")]
    [InlineData("string")]
    [InlineData("string encoded twice")]
    public async Task QueueInvocationRunsTheJobHoweverTheMessageIsEncoded(string encoding)
    {
        var job = await Jobs.StartAsync(Tenant, TestJobTypes.Succeeds, null, Ct);
        var text = JsonSerializer.Serialize(new JobMessage(Tenant.Value, job.RowKey), JsonSerializerOptions.Web);
        var message = encoding switch
        {
            "object" => text,
            "string" => JsonSerializer.Serialize(text),
            _ => JsonSerializer.Serialize(JsonSerializer.Serialize(text)),
        };

        var response = await _client.PostAsync("/Jobs", Json("{\"Data\":{\"message\":" + message + "},\"Metadata\":{\"DequeueCount\":1,\"Id\":\"m-1\"}}"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stored = await Jobs.Jobs(Tenant).GetAsync<JobEntity>(job.RowKey, Ct);
        Assert.Equal(JobStatus.Succeeded, stored!.State);
        Assert.Equal(1, Log.RunsOf(job.RowKey));
    }

    [Fact]
    public async Task FailingQueueInvocationAnswers500SoTheHostRetries()
    {
        var job = await Jobs.StartAsync(Tenant, TestJobTypes.AlwaysFails, null, Ct);

        var response = await _client.PostAsync("/Jobs", Json(Invocation(job.RowKey, dequeueCount: 1)), Ct);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Contains(TestJobTypes.FailureMessage, body.GetProperty("Logs")[0].GetString(), StringComparison.Ordinal);
        var stored = await Jobs.Jobs(Tenant).GetAsync<JobEntity>(job.RowKey, Ct);
        Assert.Equal(JobStatus.Running, stored!.State);
        Assert.Contains(TestJobTypes.FailureMessage, stored.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PoisonedJobMessageFailsTheJobWithTheReason()
    {
        var job = await Jobs.StartAsync(Tenant, TestJobTypes.AlwaysFails, null, Ct);
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            await _client.PostAsync("/Jobs", Json(Invocation(job.RowKey, attempt)), Ct);
        }

        var response = await _client.PostAsync("/JobsPoison", Json(Invocation(job.RowKey, dequeueCount: 1)), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stored = await Jobs.Jobs(Tenant).GetAsync<JobEntity>(job.RowKey, Ct);
        Assert.Equal(JobStatus.Failed, stored!.State);
        Assert.Equal(5, stored.Attempts);
        Assert.Contains("after 5 attempts", stored.Error, StringComparison.Ordinal);
        Assert.Contains(TestJobTypes.FailureMessage, stored.Error, StringComparison.Ordinal);
        Assert.NotNull(stored.FinishedAt);
    }

    [Fact]
    public async Task RedeliveredMessageOfAFinishedJobDoesNotRunItAgain()
    {
        var job = await Jobs.StartAsync(Tenant, TestJobTypes.Succeeds, null, Ct);

        await _client.PostAsync("/Jobs", Json(Invocation(job.RowKey, 1)), Ct);
        var again = await _client.PostAsync("/Jobs", Json(Invocation(job.RowKey, 2)), Ct);

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(1, Log.RunsOf(job.RowKey));
    }

    [Fact]
    public async Task UnknownFunctionIsNotFoundAndRunsNothing()
    {
        var response = await _client.PostAsync("/DeleteEverything", Json("""{"Data":{"timer":{}},"Metadata":{}}"""), Ct);

        await response.ReadProblemAsync(404, "not_found");
    }

    [Theory]
    [InlineData("""{}""")]
    [InlineData("""{"Data":{},"Metadata":{}}""")]
    [InlineData("""{"Metadata":{"DequeueCount":1}}""")]
    public async Task InvocationWithoutTriggerDataIsABadRequest(string payload)
    {
        var response = await _client.PostAsync("/Jobs", Json(payload), Ct);

        await response.ReadProblemAsync(400, "invalid_invocation");
    }

    [Theory]
    [InlineData("\"not a job\"")]
    [InlineData("{\"tenantId\":\"../other\",\"jobId\":\"x\"}")]
    [InlineData("42")]
    public async Task UnreadableJobMessageFailsTheInvocation(string message)
    {
        var response = await _client.PostAsync("/Jobs", Json("{\"Data\":{\"message\":" + message + "},\"Metadata\":{\"DequeueCount\":1}}"), Ct);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Contains("Not a job message", body.GetProperty("Logs")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CallersBeyondLoopbackCannotInvokeFunctions()
    {
        await using var exposed = new PlatformApp(azurite, settings: new Dictionary<string, string?> { ["Platform:Triggers:Standalone"] = "false" },
            services: s => s.AddSingleton<IStartupFilter, RemoteCaller>());
        using var client = exposed.CreateClient();

        var response = await client.PostAsync("/StorageHousekeeping", Json("""{"Data":{"timer":{}},"Metadata":{}}"""), Ct);

        await response.ReadProblemAsync(404, "not_found");
    }

    private static string Invocation(string jobId, int dequeueCount) =>
        JsonSerializer.Serialize(new
        {
            Data = new { message = JsonSerializer.Serialize(new JobMessage(Tenant.Value, jobId), JsonSerializerOptions.Web) },
            Metadata = new { DequeueCount = dequeueCount, Id = "m-" + dequeueCount },
        });

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>Makes every request look as if it came from a public address.</summary>
    private sealed class RemoteCaller : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                context.Connection.RemoteIpAddress = IPAddress.Parse("203.0.113.9");
                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
