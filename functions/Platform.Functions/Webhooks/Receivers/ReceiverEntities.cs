using System.Runtime.Serialization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>What a receiver does with what it accepts.</summary>
public static class ReceiverActions
{
    public const string InventoryMovements = "inventory.movements";
    public const string JobsStart = "jobs.start";

    /// <summary>Raising an event (an approval) into a workflow run of the tenant.</summary>
    public const string WorkflowsEvent = "workflows.event";

    public static readonly IReadOnlyList<string> All = [InventoryMovements, JobsStart, WorkflowsEvent];
}

/// <summary>How a sender signs: Standard Webhooks (default), GitHub's <c>X-Hub-Signature-256</c> or Stripe's <c>Stripe-Signature</c>.</summary>
public static class ReceiverSchemes
{
    public const string Standard = "standard";
    public const string GitHub = "github";
    public const string Stripe = "stripe";

    public static readonly IReadOnlyList<string> All = [Standard, GitHub, Stripe];
}

/// <summary>Statuses of a received message.</summary>
public static class MessageStatus
{
    public const string Received = "received";
    public const string Processing = "processing";
    public const string Succeeded = "succeeded";

    /// <summary>Some lines of the message were applied and some failed (each failure is in <c>errors</c>).</summary>
    public const string CompletedWithErrors = "completed_with_errors";
    public const string Failed = "failed";

    public static bool IsFinal(string status) => status is Succeeded or CompletedWithErrors or Failed;
}

/// <summary>A receiver: row <c>r:{id}</c> in the tenant's partition of <c>webhookreceivers</c>.</summary>
public sealed class ReceiverEntity : ITableEntity
{
    public const string KeyPrefix = "r:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Name { get; set; } = "";
    public string Action { get; set; } = "";
    public string Scheme { get; set; } = "";

    /// <summary>The options object as JSON, or null.</summary>
    public string? Options { get; set; }

    /// <summary>The signing secret's key bytes, sealed with <see cref="Auth.SecretBox"/> bound to the tenant and receiver.</summary>
    public byte[] SealedSecret { get; set; } = [];

    /// <summary>The user the receiver acts for; it never does more than this user may do at the time it acts.</summary>
    public string CreatedBy { get; set; } = "";

    /// <summary>The API key the receiver was created with, if any: once it is revoked or expires, the receiver stops acting.</summary>
    public string? CreatedByKey { get; set; }

    /// <summary>
    /// A copy restored into a sandbox tenant: it keeps the original's id while the platform index names the original
    /// tenant, so it never claims that id's route (not even when the sandbox restores a backup of itself).
    /// </summary>
    public bool SandboxCopy { get; set; }

    /// <summary>The permissions the receiver acts with (JSON array), taken from its creator's at creation.</summary>
    public string Scopes { get; set; } = "[]";

    public DateTimeOffset CreatedAt { get; set; }

    [IgnoreDataMember]
    public string Id => RowKey[KeyPrefix.Length..];

    [IgnoreDataMember]
    public IReadOnlyList<string> ScopeList
    {
        get => JsonSerializer.Deserialize<string[]>(Scopes) ?? [];
        set => Scopes = JsonSerializer.Serialize(value);
    }

    public static string KeyFor(string id) => KeyPrefix + id;
}

/// <summary>
/// The platform-wide index <c>webhookreceiverindex</c>: partition = receiver id, row <c>receiver</c>, naming the tenant.
/// The public hook URL carries only the receiver id, so this is how the hook finds the tenant without trusting anything
/// the sender says.
/// </summary>
public sealed class ReceiverIndexEntity : ITableEntity
{
    public const string Row = "receiver";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = Row;
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string TenantId { get; set; } = "";
}

/// <summary>
/// A received message: row <c>m:{receiverId}:{inverted time}{id}</c>, so a receiver's messages list newest first.
/// The raw body is the blob <c>{tenant}/{receiverId}/{id}</c> of the <c>webhookpayloads</c> container.
/// </summary>
public sealed class ReceivedMessageEntity : ITableEntity
{
    public const string KeyPrefix = "m:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Id { get; set; } = "";
    public string ReceiverId { get; set; } = "";

    /// <summary>The sender's message id (<c>webhook-id</c>, <c>X-GitHub-Delivery</c>, or a Stripe event's <c>id</c>).</summary>
    public string WebhookId { get; set; } = "";
    public string Status { get; set; } = MessageStatus.Received;
    public string? Error { get; set; }

    /// <summary>Per-line failures as a JSON array of <c>{ line, code, message }</c>, or null.</summary>
    public string? Errors { get; set; }
    public int? LinesApplied { get; set; }
    public int? LinesFailed { get; set; }
    public string? JobId { get; set; }
    public long Bytes { get; set; }
    public int Attempts { get; set; }

    /// <summary>The queue message whose run set <c>processing</c>; its own redelivery after a crash takes over at once.</summary>
    public string? ProcessingBy { get; set; }

    /// <summary>When <c>processing</c> was set; another run takes over only after <see cref="ReceiverOptions.ProcessingLease"/>.</summary>
    public DateTimeOffset? ProcessingSince { get; set; }

    public DateTimeOffset ReceivedAt { get; set; }
    public DateTimeOffset? ProcessedAt { get; set; }

    public static string PrefixFor(string receiverId) => $"{KeyPrefix}{receiverId}:";

    public static string KeyFor(string receiverId, DateTimeOffset receivedAt, string id) =>
        $"{PrefixFor(receiverId)}{DateTimeOffset.MaxValue.UtcTicks - receivedAt.UtcTicks:D19}{id}";
}

/// <summary>
/// Row <c>d:{receiverId}:{hash of the sender's message id}</c>, added in the same transaction as the message row: a
/// second delivery of the same id fails to add it and is answered as the duplicate it is.
/// </summary>
public sealed class SeenMessageEntity : ITableEntity
{
    public const string KeyPrefix = "d:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    /// <summary>The row key of the message first received under this id.</summary>
    public string MessageKey { get; set; } = "";

    /// <summary>Hashed: a sender's id may hold any characters, and row keys must not.</summary>
    public static string KeyFor(string receiverId, string webhookId) =>
        $"{KeyPrefix}{receiverId}:{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(webhookId)))[..40]}";
}
