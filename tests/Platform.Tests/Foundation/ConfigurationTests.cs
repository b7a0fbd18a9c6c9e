using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Platform.Functions.Hosting;
using Platform.Functions.Storage;
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
        var error = StartFails(azurite.ConnectionString, new Dictionary<string, string?> { [key] = value });

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingStorageSettingStopsTheStartWithAMessageNamingIt()
    {
        var error = StartFails(storageConnection: "");

        Assert.Contains("AzureWebJobsStorage", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StoragePrefixIsRefusedUnderTheFunctionsHost()
    {
        var error = StartFails(azurite.ConnectionString, new Dictionary<string, string?>
        {
            ["Platform:Storage:Prefix"] = PlatformApp.NewPrefix(),
            [FunctionsHost.PortVariable] = "7999",
        });

        Assert.Contains("Platform:Storage:Prefix must be empty", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Runs the checks the app runs when it starts (every option registered with ValidateOnStart by the hosting,
    /// storage and trigger registrations, with the app's own settings) and returns the failure. Checked on a host of
    /// its own: through WebApplicationFactory, a start that fails this fast races the factory's wait for the start and
    /// can surface as ObjectDisposedException instead.
    /// </summary>
    private static OptionsValidationException StartFails(string storageConnection, IDictionary<string, string?>? settings = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = storageConnection,
            ["Platform:Auth:SigningKey"] = TestKeys.SigningKeyPem,
            ["Platform:Auth:DataEncryptionKey"] = TestKeys.DataEncryptionKey,
        });
        builder.Configuration.AddInMemoryCollection(settings ?? new Dictionary<string, string?>());
        builder.AddPlatformHosting();
        builder.AddPlatformStorage();
        builder.AddPlatformTriggers();
        return Assert.Throws<OptionsValidationException>(() =>
        {
            // Some options are read while the host is built (the host's shutdown timeout follows the triggers' drain).
            using var app = builder.Build();
            app.Services.GetRequiredService<IStartupValidator>().Validate();
        });
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
