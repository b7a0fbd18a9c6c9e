using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Housekeeping;
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
            services: s => s.AddTestQueueWork()).ReadyAsync();
        _client = _app.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    private TestQueueWork.WorkLog Log => _app.Services.GetRequiredService<TestQueueWork.WorkLog>();

    [Fact]
    public async Task TimerInvocationRunsHousekeepingAndAnswersInTheHostsShape()
    {
        var expirations = _app.Services.GetRequiredService<Expirations>();
        var rows = _app.Storage.TenantTable(TestQueueWork.RowsTable).For(Tenant);
        var expired = new TableEntity { RowKey = Ids.New() };
        var current = new TableEntity { RowKey = Ids.New() };
        await rows.AddAsync(expired, Ct);
        await rows.AddAsync(current, Ct);
        await expirations.ScheduleAsync(TestQueueWork.RowsTable, Tenant, expired.RowKey, DateTimeOffset.UtcNow.AddMinutes(-1), Ct);
        await expirations.ScheduleAsync(TestQueueWork.RowsTable, Tenant, current.RowKey, DateTimeOffset.UtcNow.AddMinutes(1), Ct);

        var response = await _client.PostAsync("/StorageHousekeeping", Json("""
            {"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2026-11-22T10:00:00Z","Next":"2026-11-22T10:05:00Z","LastUpdated":"2026-11-22T10:00:00Z"},"IsPastDue":false}},
             "Metadata":{"timer":{},"sys":{"MethodName":"StorageHousekeeping","UtcNow":"2026-11-22T10:00:00Z","RandGuid":"0b5d4c4e-0000-0000-0000-000000000000"}}}
            """), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"Outputs":{},"Logs":[],"ReturnValue":null}""", await response.Content.ReadAsStringAsync(Ct));
        Assert.Null(await rows.GetAsync<TableEntity>(expired.RowKey, Ct));
        Assert.NotNull(await rows.GetAsync<TableEntity>(current.RowKey, Ct));
    }

    [Theory]
    [InlineData("object")]
    [InlineData("string")]
    [InlineData("string encoded twice")]
    public async Task QueueInvocationRunsTheHandlerHoweverTheMessageIsEncoded(string encoding)
    {
        var id = Guid.NewGuid().ToString("N");
        var text = TestQueueWork.Message(id, TestQueueWork.Succeed);
        var message = encoding switch
        {
            "object" => text,
            "string" => JsonSerializer.Serialize(text),
            _ => JsonSerializer.Serialize(JsonSerializer.Serialize(text)),
        };

        var response = await _client.PostAsync("/TestWork", Json("{\"Data\":{\"message\":" + message + "},\"Metadata\":{\"DequeueCount\":1,\"Id\":\"m-1\"}}"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"Outputs":{},"Logs":[],"ReturnValue":null}""", await response.Content.ReadAsStringAsync(Ct));
        var run = Assert.Single(Log.RunsOf(id));
        Assert.Equal(1, run.DequeueCount);
    }

    [Fact]
    public async Task FailingQueueInvocationAnswers500WithTheReasonSoTheHostRetries()
    {
        var id = Guid.NewGuid().ToString("N");

        var response = await _client.PostAsync("/TestWork", Json(Invocation(id, TestQueueWork.Fail, dequeueCount: 1)), Ct);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var line = Assert.Single(body.GetProperty("Logs").EnumerateArray()).GetString();
        Assert.Contains("TestWork failed", line, StringComparison.Ordinal);
        Assert.Contains(TestQueueWork.FailureMessage, line, StringComparison.Ordinal);
        Assert.Single(Log.RunsOf(id));
        Assert.Empty(Log.Poisoned);
    }

    [Fact]
    public async Task PoisonedMessageReachesThePoisonFunctionThroughTheHostPath()
    {
        var id = Guid.NewGuid().ToString("N");
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            var failed = await _client.PostAsync("/TestWork", Json(Invocation(id, TestQueueWork.Fail, attempt)), Ct);
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        // The host moves the message to testwork-poison after its last try and invokes that queue's function.
        var response = await _client.PostAsync("/TestWorkPoison", Json(Invocation(id, TestQueueWork.Fail, dequeueCount: 1)), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(id, Assert.Single(Log.Poisoned));
        Assert.Equal([1L, 2, 3, 4, 5], Log.RunsOf(id).Select(r => r.DequeueCount));
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
        var response = await _client.PostAsync("/TestWork", Json(payload), Ct);

        await response.ReadProblemAsync(400, "invalid_invocation");
        Assert.Empty(Log.Deliveries);
    }

    /// <summary>
    /// A handler's <c>PoisonMessageException</c> fails the invocation like any other failure: unlike the standalone
    /// runtime, which poisons such a message at once, the endpoint cannot move it, so the host retries and poisons it.
    /// </summary>
    [Theory]
    [InlineData("\"not work\"")]
    [InlineData("{\"id\":\"\",\"behaviour\":\"succeed\"}")]
    [InlineData("{\"id\":\"x\",\"behaviour\":\"dance\"}")]
    [InlineData("42")]
    public async Task UnreadableMessageFailsTheInvocation(string message)
    {
        var response = await _client.PostAsync("/TestWork", Json("{\"Data\":{\"message\":" + message + "},\"Metadata\":{\"DequeueCount\":1}}"), Ct);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var line = Assert.Single(body.GetProperty("Logs").EnumerateArray()).GetString();
        Assert.Contains("PoisonMessageException", line, StringComparison.Ordinal);
        Assert.Contains(TestQueueWork.UnreadableMessage, line, StringComparison.Ordinal);
        Assert.Single(Log.Deliveries);
        Assert.Empty(Log.Runs);
    }

    [Fact]
    public async Task CallersBeyondLoopbackCannotInvokeFunctions()
    {
        await using var exposed = new PlatformApp(azurite, settings: new Dictionary<string, string?> { ["Platform:Triggers:Standalone"] = "false" },
            services: s => s.AddTestQueueWork().AddSingleton<IStartupFilter, RemoteCaller>());
        using var client = exposed.CreateClient();
        var id = Guid.NewGuid().ToString("N");

        var timer = await client.PostAsync("/StorageHousekeeping", Json("""{"Data":{"timer":{}},"Metadata":{}}"""), Ct);
        var queue = await client.PostAsync("/TestWork", Json(Invocation(id, TestQueueWork.Succeed, dequeueCount: 1)), Ct);

        await timer.ReadProblemAsync(404, "not_found");
        await queue.ReadProblemAsync(404, "not_found");
        Assert.Empty(exposed.Services.GetRequiredService<TestQueueWork.WorkLog>().Deliveries);
    }

    private static string Invocation(string id, string behaviour, int dequeueCount) =>
        JsonSerializer.Serialize(new
        {
            Data = new { message = TestQueueWork.Message(id, behaviour) },
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
