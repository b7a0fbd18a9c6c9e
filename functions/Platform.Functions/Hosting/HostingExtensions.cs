using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Hosting;

/// <summary>Settings under <c>Platform</c> that are not owned by one capability.</summary>
public sealed class PlatformOptions
{
    public const string Section = "Platform";

    /// <summary>The external base URL for links in mail and webhook receiver URLs; never taken from the Host header.</summary>
    [Required]
    public Uri PublicBaseUrl { get; set; } = new("http://localhost:7071");
}

public static class HostingExtensions
{
    public const string DefaultUrl = "http://localhost:7071";

    /// <summary>
    /// Where to listen (the Functions host's port when it started us), structured JSON logs with trace ids, the
    /// optional <c>local.settings.json</c>, and the settings every part shares.
    /// </summary>
    public static WebApplicationBuilder AddPlatformHosting(this WebApplicationBuilder builder)
    {
        AddLocalSettings(builder);

        var port = builder.Configuration[FunctionsHost.PortVariable];
        if (!string.IsNullOrEmpty(port))
        {
            // The host talks to us over loopback on the port it chose; nothing else may reach this server.
            var loopbackPort = int.Parse(port, CultureInfo.InvariantCulture);
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Loopback, loopbackPort));
        }
        else if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        builder.Logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);

        builder.Services.AddValidatedOptions<PlatformOptions>(PlatformOptions.Section);
        builder.Services.AddSingleton<IValidateOptions<StorageOptions>, FunctionsHostStorageRule>();
        builder.Services.AddSingleton(TimeProvider.System);
        return builder;
    }

    /// <summary>
    /// <c>local.settings.json</c> is the Functions tooling's file of local settings; its <c>Values</c> become
    /// configuration here too (environment variables still win), so one file configures both ways of running.
    /// </summary>
    private static void AddLocalSettings(WebApplicationBuilder builder)
    {
        var path = Path.Combine(builder.Environment.ContentRootPath, "local.settings.json");
        if (!File.Exists(path))
        {
            return;
        }

        using var document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        if (!document.RootElement.TryGetProperty("Values", out var values) || values.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var settings = values.EnumerateObject()
            .Where(p => Environment.GetEnvironmentVariable(p.Name) is null)
            .ToDictionary(p => p.Name.Replace("__", ConfigurationPath.KeyDelimiter, StringComparison.Ordinal),
                p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText());
        builder.Configuration.AddInMemoryCollection(settings);
    }

    /// <summary>
    /// Under the Functions host, queue triggers listen on the names written in function.json, which carry no
    /// prefix; a prefix would make the app send to queues nobody reads.
    /// </summary>
    private sealed class FunctionsHostStorageRule(IConfiguration configuration) : IValidateOptions<StorageOptions>
    {
        public ValidateOptionsResult Validate(string? name, StorageOptions options) =>
            !string.IsNullOrEmpty(configuration[FunctionsHost.PortVariable]) && options.Prefix.Length > 0
                ? ValidateOptionsResult.Fail("Platform:Storage:Prefix must be empty when the Azure Functions host runs the app.")
                : ValidateOptionsResult.Success;
    }
}
