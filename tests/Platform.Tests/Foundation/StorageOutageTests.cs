using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

public sealed class StorageOutageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AppStartsWithoutStorageReportsNotReadyAndRecoversWhenStorageComesBack()
    {
        var ports = Azurite.FreePorts(3);
        await using var app = new PlatformApp(Azurite.ConnectionStringFor(ports));
        using var client = app.CreateClient();

        var live = await client.GetAsync("/api/health/live", Ct);
        var ready = await client.GetAsync("/api/health/ready", Ct);

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var report = await ready.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("unhealthy", report.GetProperty("status").GetString());
        var tables = report.GetProperty("checks").GetProperty("tables");
        Assert.Equal("unhealthy", tables.GetProperty("status").GetString());
        Assert.StartsWith("Table storage", tables.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("AccountKey", report.GetRawText(), StringComparison.Ordinal);

        await using var azurite = Azurite.OnPorts(ports);
        await azurite.InitializeAsync();

        await Eventually.Until(async () => (await client.GetAsync("/api/health/ready", Ct)).StatusCode,
            status => status == HttpStatusCode.OK, "readiness after storage came back", TimeSpan.FromSeconds(60));
    }
}
