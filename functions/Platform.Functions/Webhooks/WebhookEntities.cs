using System.Runtime.Serialization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Webhooks;

/// <summary>
/// Rows of the <c>webhooks</c> table, one partition per tenant:
/// <list type="bullet">
/// <item><c>endpoint:{id}</c> an endpoint (<see cref="EndpointEntity"/>), and <c>endpoints</c> their count (<see cref="EndpointCountEntity"/>), written together;</item>
/// <item><c>lane:{endpointId}</c> the endpoint's delivery lane: lease, failure streak, pacing (<see cref="LaneEntity"/>);</item>
/// <item><c>pending:{endpointId}:{order}</c> a delivery not yet finished, in the order it must be sent (<see cref="PendingEntity"/>);</item>
/// <item><c>log:{endpointId}:{inverted delivery id}</c> a delivery and its attempts, newest first (<see cref="DeliveryEntity"/>);</item>
/// <item><c>dlv:{deliveryId}</c> which endpoint a delivery belongs to (<see cref="DeliveryIndexEntity"/>), added with the log row,
/// so a fan-out retried after a crash finds the delivery it made and makes no second one.</item>
/// </list>
/// </summary>
public static class WebhookRows
{
    public const string CountKey = "endpoints";

    public static string Endpoint(string id) => "endpoint:" + id;

    public static string Lane(string endpointId) => "lane:" + endpointId;

    public static string PendingPrefix(string endpointId) => $"pending:{endpointId}:";

    public static string LogPrefix(string endpointId) => $"log:{endpointId}:";

    public static string Log(string endpointId, string deliveryId) => LogPrefix(endpointId) + Invert(deliveryId);

    public static string Index(string deliveryId) => "dlv:" + deliveryId;

    /// <summary>Maps a ULID so that later ids sort first (each Crockford digit d becomes 31-d).</summary>
    public static string Invert(string id)
    {
        const string alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        return string.Create(id.Length, id, (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
            {
                var d = alphabet.IndexOf(source[i], StringComparison.Ordinal);
                span[i] = d < 0 ? source[i] : alphabet[31 - d];
            }
        });
    }
}

public abstract class WebhookRow : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
}

public sealed class EndpointEntity : WebhookRow
{
    public string Id { get; set; } = "";
    public string Url { get; set; } = "";
    public string Description { get; set; } = "";

    /// <summary>JSON array of subscription patterns.</summary>
    public string Events { get; set; } = "[]";

    /// <summary>JSON object of custom headers.</summary>
    public string Headers { get; set; } = "{}";

    public bool Enabled { get; set; } = true;
    public string? DisabledReason { get; set; }
    public DateTimeOffset? DisabledAt { get; set; }

    /// <summary>When a user last turned the endpoint back on; failures before it do not count towards disabling it.</summary>
    public DateTimeOffset? EnabledAt { get; set; }
    public int? RateLimitPerSecond { get; set; }

    /// <summary>The signing secret's 32 bytes, sealed with the data-encryption key (bound to tenant and endpoint).</summary>
    public byte[] Secret { get; set; } = [];

    public byte[]? PreviousSecret { get; set; }
    public DateTimeOffset? PreviousSecretUntil { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>
    /// The URL as events, the audit trail and mail show it: scheme, host, port and path, never the query or user info
    /// (where tokens tend to sit).
    /// </summary>
    [IgnoreDataMember]
    public string ShownUrl => Shown(Url);

    public static string Shown(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri)
            ? uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped)
            : "";

    [IgnoreDataMember]
    public IReadOnlyList<string> EventList => JsonSerializer.Deserialize<List<string>>(Events) ?? [];

    [IgnoreDataMember]
    public IReadOnlyDictionary<string, string> HeaderMap => JsonSerializer.Deserialize<Dictionary<string, string>>(Headers) ?? [];
}

public sealed class EndpointCountEntity : WebhookRow
{
    public int Count { get; set; }
}

public sealed class LaneEntity : WebhookRow
{
    public DateTimeOffset? LeaseUntil { get; set; }
    public string? LeaseOwner { get; set; }

    /// <summary>When the current streak of failures began; cleared by a success, restarted after a quiet spell.</summary>
    public DateTimeOffset? FailingSince { get; set; }

    /// <summary>The latest failed attempt: a failure long after it starts a new streak (<see cref="WebhookLane.QuietGap"/>).</summary>
    public DateTimeOffset? LastFailedAt { get; set; }

    /// <summary>When the lane last sent, so <c>rateLimitPerSecond</c> paces across handler runs too.</summary>
    public DateTimeOffset? LastSentAt { get; set; }
}

public sealed class PendingEntity : WebhookRow
{
    public string DeliveryId { get; set; } = "";

    /// <summary>Not before this time (a retry's backoff); null: at once.</summary>
    public DateTimeOffset? NextAttemptAt { get; set; }
}

public static class DeliveryStatus
{
    public const string Pending = "pending";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

public sealed class DeliveryEntity : WebhookRow
{
    public string Id { get; set; } = "";
    public string EndpointId { get; set; } = "";
    public string EventId { get; set; } = "";
    public string EventType { get; set; } = "";

    /// <summary>The <c>webhook-id</c> header: the event id for fan-out, replays and recovery; its own id for a test.</summary>
    public string MessageId { get; set; } = "";

    /// <summary>The exact body sent (signatures cover these bytes).</summary>
    public string Payload { get; set; } = "";

    public int Attempt { get; set; }
    public string Status { get; set; } = DeliveryStatus.Pending;
    public int? ResponseStatus { get; set; }
    public string? ResponseBody { get; set; }
    public string? Error { get; set; }
    public long? DurationMs { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? At { get; set; }
    public DateTimeOffset? NextAttemptAt { get; set; }

    /// <summary>JSON array of the attempts so far (at most the schedule's length), oldest first.</summary>
    public string Attempts { get; set; } = "[]";

    /// <summary>The pending row while the delivery is not finished.</summary>
    public string? PendingKey { get; set; }
}

public sealed class DeliveryIndexEntity : WebhookRow
{
    public string EndpointId { get; set; } = "";
}

/// <summary>One attempt as the log shows it.</summary>
public sealed record DeliveryAttempt(int Attempt, DateTimeOffset At, int? ResponseStatus, long DurationMs, string? Error);
