using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// The real app in-process (the whole HTTP pipeline, the trigger runtime) bound to the test run's Azurite.
/// Every instance gets its own storage prefix unless one is handed in - two instances with the same prefix are
/// two processes sharing one storage account.
/// </summary>
public sealed class PlatformApp : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly Action<IServiceCollection>? _services;

    public PlatformApp(Azurite azurite, string? prefix = null, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
        : this(azurite.ConnectionString, prefix, settings, services)
    {
    }

    public PlatformApp(string storageConnection, string? prefix = null, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        Prefix = prefix ?? NewPrefix();
        _services = services;
        _settings = new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = storageConnection,
            ["Platform:Storage:Prefix"] = Prefix,
            ["Platform:Triggers:MaxPollingInterval"] = "00:00:00.200",
            ["Platform:Triggers:RetryDelay"] = "00:00:00",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Platform:Auth:SigningKey"] = TestKeys.SigningKeyPem,
            ["Platform:Auth:DataEncryptionKey"] = TestKeys.DataEncryptionKey,
            ["Platform:Mail:PickupDirectory"] = MailDirectory,
            ["Platform:RateLimits:SignUpsPerHourPerIp"] = "10000",
            ["Platform:RateLimits:ForgotPasswordPerHourPerIp"] = "10000",
            ["Platform:RateLimits:LoginsPerHourPerIp"] = "100000",
            // Most tests never start a job: their apps leave the durable worker off (and its polling off Azurite).
            // Tests of long work turn it on with RunsJobs.
            ["Platform:Jobs:RunWorker"] = "false",
            // A tenant signed up in a test gets no daily backup schedule (its schedules, audit trail and events hold
            // only what the test did); BackupScheduleTests turn it back on.
            ["Platform:Backups:DailySchedule"] = "",
            ["Platform:Jobs:MaxPollingInterval"] = "00:00:00.100",
            ["Platform:Jobs:MessageVisibilityTimeout"] = "00:00:10",
            // Ten-second visibility makes the engine's ordinary abandon-and-retry cycles count up fast on a loaded run:
            // a plain job was declared poisoned after six. Tests of the poison verdict set their own threshold.
            ["Platform:Jobs:PoisonDequeueCount"] = "20",
            ["Platform:Jobs:StopTimeout"] = "00:00:02",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }
    }

    public string Prefix { get; }

    /// <summary>The host environment the app runs in (Development turns on what only a developer's machine gets).</summary>
    public string Environment { get; init; } = "Testing";

    /// <summary>Settings of an app that runs the durable worker (jobs, imports, exports).</summary>
    public static IDictionary<string, string?> RunsJobs(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?> { ["Platform:Jobs:RunWorker"] = "true" };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return settings;
    }

    /// <summary>Where this app's outgoing mail lands as .eml files.</summary>
    public string MailDirectory { get; } = Directory.CreateTempSubdirectory("platform-mail-").FullName;

    public bool IsDisposed { get; private set; }

    /// <summary>Moves the mail sent so far out of <see cref="MailDirectory"/>: the next test of a shared app reads only its own.</summary>
    public void SetMailAside()
    {
        var aside = Directory.CreateDirectory(Path.Combine(MailDirectory, "earlier")).FullName;
        foreach (var file in Directory.GetFiles(MailDirectory, "*.eml"))
        {
            File.Move(file, Path.Combine(aside, Path.GetFileName(file)), overwrite: true);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        IsDisposed = true;
        await base.DisposeAsync();
    }

    public StorageAccount Storage => Services.GetRequiredService<StorageAccount>();

    /// <summary>The storage an app with this prefix uses, without starting an app (and its queue consumers).</summary>
    public static StorageAccount StorageFor(Azurite azurite, string prefix, StorageLayout? layout = null, TimeProvider? time = null) =>
        new(Options.Create(new StorageConnection { ConnectionString = azurite.ConnectionString }), Options.Create(new StorageOptions { Prefix = prefix }),
            Options.Create(layout ?? new StorageLayout()), time ?? TimeProvider.System);

    public static string NewPrefix() => "t" + RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyz0123456789", 11);

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(Environment);
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        if (_services is not null)
        {
            builder.ConfigureTestServices(_services);
        }
    }

    /// <summary>Waits until storage is reachable and every resource exists, as a deployment's probe would.</summary>
    public async Task<PlatformApp> ReadyAsync()
    {
        using var client = CreateClient();
        await Eventually.Until(async () => (await client.GetAsync("/api/health/ready", TestContext.Current.CancellationToken)).StatusCode,
            status => status == System.Net.HttpStatusCode.OK, "the app to become ready",
            // Start-up creates every table, container and queue; on a loaded two-core CI machine with a dozen apps
            // starting at once that has taken over 30 s. A deadline, not a timing assertion.
            TimeSpan.FromSeconds(120));
        return this;
    }
}

public static class HttpAssertions
{
    /// <summary>Reads a problem response and checks the members every problem must have.</summary>
    public static async Task<JsonElement> ReadProblemAsync(this HttpResponseMessage response, int status, string code)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()));
        Assert.Matches("^[0-9a-f]{32}$", problem.GetProperty("traceId").GetString());
        return problem;
    }
}
