using System.Net;
using System.Text;
using System.Text.Json;
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
