using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Usage;

/// <summary>Usage metering (<c>Platform:Usage</c>).</summary>
public sealed class UsageOptions
{
    public const string Section = "Platform:Usage";

    /// <summary>Off: requests are not metered at all (the benchmark's baseline; never needed in production).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often an instance writes what it gathered. A crash loses at most this much usage of the instance.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Distinct (tenant, caller, endpoint) keys one instance gathers between two flushes. Past it, a tenant's new keys
    /// go to that tenant's overflow key (<c>(other)</c>); past twice it, requests are only counted in the log.
    /// Each key holds a latency histogram of about 9 KiB, so the default bounds the meter at about 36 MiB.
    /// </summary>
    [Range(10, 1_000_000)]
    public int MaxKeysPerFlush { get; set; } = 2000;

    /// <summary>How long hourly usage rows are kept.</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(400);
}
