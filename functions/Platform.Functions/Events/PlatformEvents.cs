using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Events;

/// <summary>
/// Something that happened in a tenant: a change, a sign-in, a revoked key. Every capability reports through
/// <see cref="EventPublisher"/>, the one event path: the audit trail records each event and later subscribers
/// (webhook deliveries) receive the same events, so no change can reach one and miss the other.
/// </summary>
/// <param name="Type">Dotted name, e.g. <c>auth.login.succeeded</c>, <c>user.created</c>.</param>
/// <param name="Changes">Field-level detail; never secrets, hashes or tokens.</param>
public sealed record PlatformEvent(
    string Type,
    Actor Actor,
    string? TargetType = null,
    string? TargetId = null,
    IReadOnlyDictionary<string, object?>? Changes = null);

/// <summary>Who caused an event: a user, an API key, the system itself, or an anonymous caller.</summary>
public sealed record Actor(string Type, string? Id, string? Ip)
{
    /// <summary>The user an API key acts for: the key is the actor, and the user can still find what it did.</summary>
    public string? OnBehalfOf { get; init; }

    public static Actor System { get; } = new("system", null, null);

    public static Actor User(string userId, string? ip) => new("user", userId, ip);

    public static Actor Anonymous(string? ip) => new("anonymous", null, ip);
}

/// <summary>
/// An event as subscribers receive it: its id (a ULID, so ids sort by time; stable across redeliveries, which makes
/// it the key for idempotent handling) and when it happened.
/// </summary>
public sealed record PublishedEvent(string Id, DateTimeOffset At, PlatformEvent Event);

/// <summary>Receives every published event; the audit trail is one, webhook delivery is another.</summary>
/// <remarks>
/// Delivery is at least once: after a crash the same event (same <see cref="PublishedEvent.Id"/>) can come again,
/// so a subscriber acts on an id once.
/// </remarks>
public interface IEventSubscriber
{
    /// <summary>Events of one tenant, in the order they happened.</summary>
    Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken);
}

public sealed class EventPublisher(IEnumerable<IEventSubscriber> subscribers, TimeProvider time)
{
    public Task PublishAsync(TenantId tenant, PlatformEvent platformEvent, CancellationToken cancellationToken) =>
        PublishManyAsync(tenant, [platformEvent], cancellationToken);

    /// <summary>Publishes a batch at once, so a bulk change costs a few writes rather than one per event.</summary>
    public async Task PublishManyAsync(TenantId tenant, IReadOnlyList<PlatformEvent> events, CancellationToken cancellationToken)
    {
        if (events.Count == 0)
        {
            return;
        }

        var at = time.GetUtcNow();
        var published = events.Select(e => new PublishedEvent(Ids.New(time), at, e)).ToList();
        foreach (var subscriber in subscribers)
        {
            await subscriber.OnEventsAsync(tenant, published, cancellationToken);
        }
    }
}

/// <summary>
/// Appends each event to the tenant's partition of the <c>audit</c> table. Row keys are ULIDs, so a partition
/// reads in time order; rows are only ever added.
/// </summary>
public sealed class AuditTrail(StorageAccount storage) : IEventSubscriber
{
    public const string TableName = "audit";

    public TenantPartition Entries(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>The entries a user caused or that are about them, oldest first.</summary>
    public async IAsyncEnumerable<AuditEntry> AboutAsync(TenantId tenant, string id, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entry in Entries(tenant).QueryWhereAsync<AuditEntry>($"TargetId eq {id} or ActorId eq {id} or OnBehalfOf eq {id}", cancellationToken: cancellationToken))
        {
            yield return entry;
        }
    }

    /// <summary>
    /// Removes the personal data (recorded field values, addresses) from the entries about a purged user; the entries
    /// stay, with ids only.
    /// </summary>
    public async Task ScrubAsync(TenantId tenant, string userId, CancellationToken cancellationToken)
    {
        var entries = Entries(tenant);
        await foreach (var entry in AboutAsync(tenant, userId, cancellationToken))
        {
            if (entry.Changes is not null || entry.Ip is not null)
            {
                entry.Changes = null;
                entry.Ip = null;
                await entries.UpdateAsync(entry, ETag.All, cancellationToken);
            }
        }
    }

    public async Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken)
    {
        var entries = events.Select(p => new AuditEntry
        {
            RowKey = p.Id,
            At = p.At,
            Action = p.Event.Type,
            ActorType = p.Event.Actor.Type,
            ActorId = p.Event.Actor.Id,
            OnBehalfOf = p.Event.Actor.OnBehalfOf,
            Ip = p.Event.Actor.Ip,
            TargetType = p.Event.TargetType,
            TargetId = p.Event.TargetId,
            Changes = p.Event.Changes is null ? null : JsonSerializer.Serialize(p.Event.Changes, JsonSerializerOptions.Web),
        }).ToList();

        if (entries.Count == 1)
        {
            await Entries(tenant).AddAsync(entries[0], cancellationToken);
            return;
        }

        // One partition, so up to 100 entries go in one entity-group transaction.
        foreach (var chunk in entries.DistinctBy(e => e.RowKey).Chunk(100))
        {
            await Entries(tenant).SubmitTransactionAsync([.. chunk.Select(e => new TableTransactionAction(TableTransactionActionType.Add, e))], cancellationToken);
        }
    }
}

public sealed class AuditEntry : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public DateTimeOffset At { get; set; }
    public string Action { get; set; } = "";
    public string ActorType { get; set; } = "";
    public string? ActorId { get; set; }
    public string? OnBehalfOf { get; set; }
    public string? Ip { get; set; }
    public string? TargetType { get; set; }
    public string? TargetId { get; set; }
    public string? Changes { get; set; }
}
