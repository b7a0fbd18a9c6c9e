using System.Net;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Storage;
using Platform.Functions.Webhooks.Receivers;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;
using static Platform.Tests.Webhooks.Receivers.ReceiverApi;

namespace Platform.Tests.Webhooks.Receivers;

/// <summary>The <c>jobs.start</c> action: an import of a file at a URL (fetched through the SSRF guard) and an export.</summary>
public sealed class ReceiverJobTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    // Loopback is allowed here, as on a developer's machine: the file is served by a listener on this machine.
    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs(new Dictionary<string, string?>
    {
        ["Platform:Webhooks:AllowPrivateNetworks"] = "true",
    });

    private async Task<HttpStatusCode> SendAsync(HttpRequestMessage request)
    {
        using var client = App.CreateClient();
        using (request)
        {
            return (await client.SendAsync(request, Ct)).StatusCode;
        }
    }

    private static string Served(string contentType, string body) =>
        $"HTTP/1.1 200 OK\r\nContent-Type: {contentType}\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";

    [Fact]
    public async Task AnImportOfAFileAtAUrlRunsOncePerMessage()
    {
        using var file = new RecordingListener(Served("text/csv", "sku,name\nIMP-1,Imported one\nIMP-2,Imported two\n"));
        var receiver = await Admin.CreateReceiverAsync("jobs.start");
        var body = JsonSerializer.Serialize(new { type = "import", parameters = new { kind = "inventory-items", url = $"http://127.0.0.1:{file.Port}/items.csv" } });

        Assert.Equal(HttpStatusCode.Accepted, await SendAsync(SignedStandard(receiver, body, id: "import-1")));
        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal("succeeded", message.Str("status"));
        var jobId = message.Str("jobId")!;
        var job = await Admin.FinishedJobAsync(jobId);
        Assert.Equal("succeeded", job.Str("status"));
        Assert.Equal(2, job.GetProperty("progress").GetProperty("succeeded").GetInt32());
        Assert.Equal(2, (await Admin.ListAsync($"{InventoryApi.Items}?pageSize=1000")).Count);

        // The same message again starts nothing.
        Assert.Equal(HttpStatusCode.OK, await SendAsync(SignedStandard(receiver, body, id: "import-1")));
        Assert.Equal(1, file.Connections);
        var jobs = (await Admin.GetJsonAsync("/api/v1/jobs")).GetProperty("items").EnumerateArray().Select(j => j.Id()).ToList();
        Assert.Equal([jobId], jobs);
    }

    [Fact]
    public async Task AnImportThatCannotBeFetchedOrReadFailsTheMessage()
    {
        using var missing = new RecordingListener("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        var receiver = await Admin.CreateReceiverAsync("jobs.start");
        await SendAsync(SignedStandard(receiver, JsonSerializer.Serialize(new { type = "import", parameters = new { kind = "inventory-items", url = $"http://127.0.0.1:{missing.Port}/gone.csv" } })));
        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal("failed", message.Str("status"));
        Assert.Contains("404", message.Str("error"), StringComparison.Ordinal);

        await SendAsync(SignedStandard(receiver, JsonSerializer.Serialize(new { type = "import", parameters = new { kind = "users-and-more", url = "http://127.0.0.1:1/x.csv" } })));
        var second = await Admin.ProcessedMessageAsync(receiver.Id, 2);
        Assert.Equal("failed", second.Str("status"));
        Assert.Contains("parameters.kind", second.Str("error"), StringComparison.Ordinal);

        // Link-local (the metadata range) stays refused even with private networks allowed.
        await SendAsync(SignedStandard(receiver, JsonSerializer.Serialize(new { type = "import", parameters = new { kind = "inventory-items", url = "http://169.254.169.254/latest/meta-data" } })));
        var third = await Admin.ProcessedMessageAsync(receiver.Id, 3);
        Assert.Equal("failed", third.Str("status"));
        Assert.Contains("metadata", third.Str("error"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExportCanBeStarted()
    {
        await Admin.CreateItemAsync("EXP-1");
        var receiver = await Admin.CreateReceiverAsync("jobs.start");
        await SendAsync(SignedStandard(receiver, JsonSerializer.Serialize(new { type = "export", parameters = new { kind = "inventory-items", format = "csv" } })));
        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal("succeeded", message.Str("status"));
        var job = await Admin.FinishedJobAsync(message.Str("jobId")!);
        Assert.Equal("succeeded", job.Str("status"));
    }
}

/// <summary>
/// The queue functions of receivers run here the way the Functions host runs them (<c>POST /{FunctionName}</c>), with
/// the standalone consumer off, so a test decides which queue message runs when.
/// </summary>
public sealed class ReceiverQueueTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    // Its tests take queue messages by hand, with no consumer: another test's message left on a shared app's queue
    // would be taken instead.
    protected override bool SharesApp => false;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Triggers:Standalone"] = "false",
        ["Platform:Webhooks:AllowPrivateNetworks"] = "true",
        ["Platform:Webhooks:Receivers:CleanupPerRun"] = "2",
    };

    private static StringContent Invocation(string queueMessage, string messageId) => new(
        JsonSerializer.Serialize(new { Data = new { message = queueMessage }, Metadata = new { Id = messageId, DequeueCount = 1 } }),
        Encoding.UTF8, "application/json");

    /// <summary>Takes the next message off a queue, as the host would before invoking its function.</summary>
    private async Task<string?> TakeAsync(string queue) =>
        (await App.Storage.Queue(queue).ReceiveMessagesAsync(1, TimeSpan.FromMinutes(5), Ct)).Value.SingleOrDefault()?.Body.ToString();

    [Fact]
    public async Task TheSameReceiptRunTwiceAtOnceFetchesUploadsAndStartsOnce()
    {
        // Two queue messages of one received message (a sender's retry queues it again while it is still "received"),
        // handled at the same time: only one of them may act on it.
        using var file = new HeldFileServer("text/csv", "sku,name\nRACE-1,Raced\n");
        var receiver = await Admin.CreateReceiverAsync("jobs.start");
        var body = JsonSerializer.Serialize(new { type = "import", parameters = new { kind = "inventory-items", url = $"http://127.0.0.1:{file.Port}/items.csv" } });
        using var client = App.CreateClient();
        using (var signed = SignedStandard(receiver, body))
        {
            Assert.Equal(HttpStatusCode.Accepted, (await client.SendAsync(signed, Ct)).StatusCode);
        }

        var queued = (await TakeAsync(ReceiverStore.QueueName))!;
        var first = client.PostAsync("/WebhookReceipts", Invocation(queued, "queue-message-1"), Ct);
        var second = client.PostAsync("/WebhookReceipts", Invocation(queued, "queue-message-2"), Ct);

        // One run is fetching the file (held open); wait until the other has either given way or started fetching too.
        await Eventually.Until(() => Task.FromResult(file.Connections >= 2 || first.IsCompleted || second.IsCompleted), done => done,
            "the second run to give way or to fetch as well");
        file.Release();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await second).StatusCode);

        Assert.Equal(1, file.Connections);
        var message = (await Admin.MessagesAsync(receiver.Id)).Single();
        Assert.Equal("succeeded", message.Str("status"));
        Assert.Equal(1, message.GetProperty("attempts").GetInt32());
        var jobs = (await Admin.GetJsonAsync("/api/v1/jobs")).GetProperty("items").EnumerateArray().Select(j => j.Id()).ToList();
        Assert.Equal([message.Str("jobId")!], jobs);
    }

    [Fact]
    public async Task DeletingAReceiverLeavesItsMessagesToBackgroundRunsOfBoundedSize()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        using var client = App.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            using var signed = SignedStandard(receiver, """{"movements":[]}""");
            Assert.Equal(HttpStatusCode.Accepted, (await client.SendAsync(signed, Ct)).StatusCode);
        }

        var rows = App.Services.GetRequiredService<ReceiverStore>().Rows(new TenantId(Tenant.Id));
        var payloads = App.Storage.Container(ReceiverStore.PayloadContainer);
        async Task<int> LeftAsync() =>
            await rows.QueryAsync<TableEntity>($"m:{receiver.Id}:", cancellationToken: Ct).CountAsync(Ct) +
            await rows.QueryAsync<TableEntity>($"d:{receiver.Id}:", cancellationToken: Ct).CountAsync(Ct) +
            await payloads.GetBlobsAsync(BlobTraits.None, BlobStates.None, $"{Tenant.Id}/{receiver.Id}/", Ct).CountAsync(Ct);

        // The request removes the receiver only: its URL and messages route are gone at once, and its messages are not
        // touched by it (however many there are, the request stays short).
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{ReceiversPath}/{receiver.Id}", Ct)).StatusCode);
        await (await Admin.GetAsync($"{ReceiversPath}/{receiver.Id}/messages", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Equal(9, await LeftAsync());

        // Then queued runs remove them, 2 at a time here, each queueing the next.
        var runs = 0;
        while (await TakeAsync(ReceiverCleanup.QueueName) is { } cleanup)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/WebhookReceiverCleanup", Invocation(cleanup, $"cleanup-{runs}"), Ct)).StatusCode);
            runs++;
            Assert.True(runs <= 10, "the cleanup keeps going");
        }

        Assert.Equal(0, await LeftAsync());
        Assert.Equal(5, runs);
    }
}
