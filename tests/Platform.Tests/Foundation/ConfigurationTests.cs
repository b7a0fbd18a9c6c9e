using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Triggers;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

public sealed class ConfigurationTests(Azurite azurite)
{
    [Theory]
    [InlineData("Platform:Storage:Prefix", "Bad_Prefix!", "Platform:Storage:Prefix")]
    [InlineData("Platform:Triggers:MaxDequeueCount", "0", "MaxDequeueCount")]
    [InlineData("Platform:PublicBaseUrl", "", "PublicBaseUrl")]
    public void BadSettingStopsTheStartWithAMessageNamingIt(string key, string value, string named)
    {
        using var app = new PlatformApp(azurite, settings: new Dictionary<string, string?> { [key] = value });

        var error = Assert.Throws<OptionsValidationException>(() => app.CreateClient());

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingStorageSettingStopsTheStartWithAMessageNamingIt()
    {
        using var app = new PlatformApp(storageConnection: "");

        var error = Assert.Throws<OptionsValidationException>(() => app.CreateClient());

        Assert.Contains("AzureWebJobsStorage", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StoragePrefixIsRefusedUnderTheFunctionsHost()
    {
        using var app = new PlatformApp(azurite, settings: new Dictionary<string, string?> { [FunctionsHost.PortVariable] = "7999" });

        var error = Assert.Throws<OptionsValidationException>(() => app.CreateClient());

        Assert.Contains("Platform:Storage:Prefix must be empty", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HostJsonQueueSettingsEqualTheStandaloneRuntimeDefaults()
    {
        using var hostJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repo.Root, "functions", "Platform.Functions", "host.json")));
        var queues = hostJson.RootElement.GetProperty("extensions").GetProperty("queues");
        var defaults = new TriggerOptions();

        Assert.Equal(defaults.MaxDequeueCount, queues.GetProperty("maxDequeueCount").GetInt32());
        Assert.Equal(defaults.RetryDelay, TimeSpan.Parse(queues.GetProperty("visibilityTimeout").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(defaults.BatchSize, queues.GetProperty("batchSize").GetInt32());
        Assert.Equal(defaults.MaxPollingInterval, TimeSpan.Parse(queues.GetProperty("maxPollingInterval").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("base64", queues.GetProperty("messageEncoding").GetString());
    }

    [Fact]
    public void HostJsonRunsTheAppAsACustomHandlerThatProxiesHttp()
    {
        using var hostJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repo.Root, "functions", "Platform.Functions", "host.json")));
        var handler = hostJson.RootElement.GetProperty("customHandler");

        // The self-contained app host: Flex Consumption's custom runtime has no dotnet to start a dll with.
        Assert.Equal("Platform.Functions", handler.GetProperty("description").GetProperty("defaultExecutablePath").GetString());
        Assert.Empty(handler.GetProperty("description").GetProperty("arguments").EnumerateArray());
        Assert.True(handler.GetProperty("enableProxyingHttpRequest").GetBoolean());
        Assert.Equal("", hostJson.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());
    }
}
