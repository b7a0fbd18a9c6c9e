using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Webhooks;

/// <summary>Settings of outgoing webhooks (<c>Platform:Webhooks</c>); the guard's own are in <see cref="OutboundHttpOptions"/>.</summary>
public sealed class WebhookOptions : IValidatableObject
{
    public const string Section = "Platform:Webhooks";

    /// <summary>
    /// Waits before each attempt, comma-separated <c>TimeSpan</c>s (Svix's schedule by default): attempt n is made entry
    /// n-1 after the previous attempt failed (the first at once); when the last entry's attempt fails, the delivery is
    /// given up. A string, not an array, because configuration binding appends to an array's defaults.
    /// </summary>
    public string RetrySchedule { get; set; } = "00:00:00,00:00:05,00:05:00,00:30:00,02:00:00,05:00:00,10:00:00,10:00:00";

    public IReadOnlyList<TimeSpan> Delays => _delays ??= Parse(RetrySchedule) ?? [];

    private IReadOnlyList<TimeSpan>? _delays;

    private static TimeSpan[]? Parse(string? text)
    {
        var parts = (text ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var delays = new TimeSpan[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!TimeSpan.TryParse(parts[i], System.Globalization.CultureInfo.InvariantCulture, out delays[i]))
            {
                return null;
            }
        }

        return delays;
    }

    /// <summary>An endpoint whose deliveries have failed without a success for this long is disabled.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "90.00:00:00")]
    public TimeSpan DisableAfter { get; set; } = TimeSpan.FromDays(5);

    /// <summary>The longest <c>Retry-After</c> a receiver's 429/503 can make us wait.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long one handler keeps an endpoint's lane; longer than <see cref="LaneBudget"/> plus one request's timeout.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan LaneLease { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long one handler sends an endpoint's backlog before handing the lane to a fresh message.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan LaneBudget { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>How long a fan-out remembers a tenant's endpoints; writes on this instance forget at once.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan EndpointCacheLifetime { get; set; } = TimeSpan.FromSeconds(30);

    [Range(1, 1000)]
    public int MaxEndpointsPerTenant { get; set; } = 50;

    /// <summary>Delivery log rows are deleted this long after their delivery was created.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "365.00:00:00")]
    public TimeSpan LogRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long past its due time a lane's head may wait before the lane sweep wakes the lane (its wake-up was lost).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan StallAfter { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The most messages one <c>recover</c> call sends again; the answer says <c>more</c> when others remain.</summary>
    [Range(1, 10_000)]
    public int RecoverLimit { get; set; } = 1000;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Parse(RetrySchedule) is not { Length: > 0 and <= 20 } delays)
        {
            yield return new ValidationResult("RetrySchedule must be 1 to 20 comma-separated durations (hh:mm:ss).", [nameof(RetrySchedule)]);
        }
        else if (delays.Any(d => d < TimeSpan.Zero || d > TimeSpan.FromDays(6)))
        {
            yield return new ValidationResult("RetrySchedule entries must be from 0 to 6 days (a queue message's delay).", [nameof(RetrySchedule)]);
        }

        if (LaneLease <= LaneBudget)
        {
            yield return new ValidationResult("LaneLease must be longer than LaneBudget.", [nameof(LaneLease)]);
        }
    }
}
