using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>Limits of incoming webhook receivers (<c>Platform:Webhooks:Receivers</c>).</summary>
public sealed class ReceiverOptions
{
    public const string Section = "Platform:Webhooks:Receivers";

    /// <summary>The largest body a sender may post (1 MiB); beyond it the hook answers 413 <c>payload_too_large</c>.</summary>
    public const int MaxBodyBytes = 1024 * 1024;

    /// <summary>How far a signed timestamp may be from our clock, either way (Standard Webhooks and Stripe).</summary>
    public static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(5);

    /// <summary>Receivers one tenant may have; creating one more is 409 <c>receiver_limit_reached</c>.</summary>
    [Range(1, 10_000)]
    public int MaxReceiversPerTenant { get; set; } = 50;

    /// <summary>
    /// Requests one receiver's hook accepts per minute (fixed window, all senders together); beyond it 429
    /// <c>rate_limited</c> with Retry-After. Bounds what one leaked URL or a runaway sender can cost.
    /// </summary>
    [Range(1, 1_000_000)]
    public int RequestsPerMinute { get; set; } = 3000;

    /// <summary>Lines one <c>inventory.movements</c> message may hold.</summary>
    [Range(1, 10_000)]
    public int MaxMovementLines { get; set; } = 500;

    /// <summary>
    /// How long a received message (its row, its stored body and the row that remembers its sender id) is kept after
    /// it arrived; housekeeping then deletes it. A sender id is recognised as a repeat only within this time.
    /// </summary>
    [Range(typeof(TimeSpan), "00:01:00", "365.00:00:00")]
    public TimeSpan MessageRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>The largest file a <c>jobs.start</c> import fetches from its URL (the jobs' own upload limit applies too).</summary>
    [Range(1, long.MaxValue)]
    public long MaxFetchBytes { get; set; } = 20L * 1024 * 1024;
}
