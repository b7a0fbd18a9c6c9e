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

    /// <summary>
    /// Requests the hook route takes per minute on one instance, whatever the receiver id (fixed window). The
    /// per-receiver window is keyed by the id in the URL, so ids made up at random would each get a window of their
    /// own; this bounds what such a spray costs (lookups, partitions, buffers). Beyond it 429 <c>rate_limited</c>.
    /// </summary>
    [Range(1, 10_000_000)]
    public int RequestsPerMinutePerInstance { get; set; } = 60_000;

    /// <summary>
    /// Requests the hook route takes per minute from one client address (an IPv6 client by its /64), checked before
    /// the instance-wide window, so one source cannot use up everybody's allowance. Generous: GitHub and Stripe
    /// deliver to every receiver from a handful of addresses.
    /// </summary>
    [Range(1, 10_000_000)]
    public int RequestsPerMinutePerIp { get; set; } = 6_000;

    /// <summary>Receivers (and unknown ids) the hook keeps in memory at most, so made-up ids cannot grow the cache.</summary>
    [Range(1, 1_000_000)]
    public int MaxCachedReceivers { get; set; } = 10_000;

    /// <summary>
    /// How long a message being processed belongs to the run that started it. Another delivery of it (a second queue
    /// message for the same message) waits until then before it takes the message over; the run's own queue message,
    /// handed out again after a crash, takes it over at once. Longer than any action runs.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan ProcessingLease { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Rows and bodies of a deleted receiver's messages that one background run removes; the rest go in further runs.</summary>
    [Range(1, 100_000)]
    public int CleanupPerRun { get; set; } = 1000;

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
