using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Triggers;

/// <summary>
/// Settings of the standalone trigger runtime (<c>Platform:Triggers</c>). The queue defaults equal the
/// <c>extensions.queues</c> section of host.json, so a function behaves the same under the Functions host and
/// locally; a test keeps the two equal.
/// </summary>
public sealed class TriggerOptions
{
    public const string Section = "Platform:Triggers";

    /// <summary>Run timers and queue consumers in-process. Default: on, unless the Functions host started the app.</summary>
    public bool? Standalone { get; set; }

    [Range(1, 100)]
    public int MaxDequeueCount { get; set; } = 5;

    /// <summary>How long a failed message stays invisible before its next try (host.json <c>visibilityTimeout</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a message being processed stays hidden; renewed at half-time while the handler runs.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "00:10:00")]
    public TimeSpan MessageLease { get; set; } = TimeSpan.FromMinutes(1);

    [Range(1, 32)]
    public int BatchSize { get; set; } = 16;

    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan MaxPollingInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>On shutdown, how long in-flight messages get to finish before they are released to the queue again.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>The blob lease that makes one instance the timer scheduler (15-60 s, as Blob storage allows).</summary>
    [Range(typeof(TimeSpan), "00:00:15", "00:01:00")]
    public TimeSpan TimerLease { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A timer firing this much later than its occurrence reports <c>IsPastDue</c>.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan PastDueAfter { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Facts about running under the Azure Functions host as a custom handler.</summary>
public static class FunctionsHost
{
    public const string PortVariable = "FUNCTIONS_CUSTOMHANDLER_PORT";
}
