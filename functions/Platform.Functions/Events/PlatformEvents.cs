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
    IReadOnlyDictionary<string, object?>? Changes = null)
{
    /// <summary>
    /// The event's id when its publisher may publish it more than once (an activity retried after a crash): the same
    /// id every time (see <see cref="Storage.Ids.Derived"/>), so subscribers act on it once. Null: a fresh id.
    /// </summary>
    public string? StableId { get; init; }
}

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

/// <summary>
/// The one way events enter the event path. A change and its events commit together (<see cref="CommitAsync"/>: the
/// events ride in an outbox row of the change's own transaction); events that change no row (a failed sign-in) are
/// written to the tenant's partition of the <c>events</c> table (<see cref="PublishAsync"/>). Either way
/// <see cref="EventRelay"/> then hands them to the subscribers, at least once, in order per partition.
/// </summary>
public sealed class EventPublisher(StorageAccount storage, EventRelay relay, MonotonicIds ids, TimeProvider time)
{
    /// <summary>The outbox of events that belong to no change of a row.</summary>
    public const string TableName = "events";

    /// <summary>Events per outbox row when they come without a change.</summary>
    private const int EventsPerRow = 100;

    /// <summary>
    /// Submits <paramref name="actions"/> with <paramref name="events"/> as one entity-group transaction: both commit or
    /// neither does. The transaction holds one action more than the caller's (the outbox row, last but for the change
    /// log's two), so at most 97 when it writes logged rows. Responses keep the caller's order.
    /// </summary>
    public async Task<Response<IReadOnlyList<Response>>> CommitAsync(
        TenantPartition partition, IReadOnlyCollection<TableTransactionAction> actions, IReadOnlyList<PlatformEvent> events, CancellationToken cancellationToken)
    {
        if (events.Count == 0)
        {
            return await partition.SubmitTransactionAsync(actions, cancellationToken);
        }

        // Storage's answer says whether the row committed, so the relay takes its events from memory, reading nothing;
        // read from the row at hand-over, they are exactly what a relay that queried would hand over.
        var row = EventOutbox.Row(Stamp(events));
        return await relay.WriteCoveredAsync(partition, new EventRelay.Committed(row),
            token => partition.SubmitTransactionAsync([.. actions, new TableTransactionAction(TableTransactionActionType.Add, row)], token), cancellationToken);
    }

    /// <summary>
    /// For a write built elsewhere (a counted write, a retried plan): <paramref name="write"/> gets the outbox row of
    /// <paramref name="events"/> and adds it to its own transaction, in the same partition.
    /// </summary>
    public async Task<T> CommitWithAsync<T>(
        TenantPartition partition, IReadOnlyList<PlatformEvent> events, Func<TableTransactionAction, CancellationToken, Task<T>> write, CancellationToken cancellationToken)
    {
        var outbox = OutboxRow(events);
        return await CoveredAsync(partition, token => write(outbox, token), cancellationToken);
    }

    /// <summary>
    /// The outbox row of <paramref name="events"/>, for a write that decides its events only as it plans its rows (a
    /// counted write). Such a write must run inside <see cref="CoveredAsync"/>.
    /// </summary>
    public TableTransactionAction OutboxRow(IReadOnlyList<PlatformEvent> events) =>
        new(TableTransactionActionType.Add, EventOutbox.Row(Stamp(events)));

    /// <summary>
    /// The outbox row of <paramref name="events"/> and the same row as the relay takes it from memory, for a counted
    /// write run by <see cref="CoveredAsync{T}(TenantPartition, Func{CancellationToken, Task{T}}, Func{EventRelay.Committed?}, CancellationToken)"/>.
    /// </summary>
    internal (TableTransactionAction Action, EventRelay.Committed Row) Outbox(IReadOnlyList<PlatformEvent> events)
    {
        var row = EventOutbox.Row(Stamp(events));
        return (new TableTransactionAction(TableTransactionActionType.Add, row), new EventRelay.Committed(row));
    }

    /// <summary>
    /// Runs a counted write that plans its outbox row (<see cref="Outbox"/>) as it goes: <paramref name="committed"/>
    /// names the row its last plan, the one that committed, held. The relay then reads nothing back (a bulk import's
    /// relay used to query every outbox row it had just written).
    /// </summary>
    internal Task<T> CoveredAsync<T>(TenantPartition partition, Func<CancellationToken, Task<T>> write, Func<EventRelay.Committed?> committed, CancellationToken cancellationToken) =>
        relay.WriteCoveredAsync(partition, write, committed, cancellationToken);

    /// <summary>Runs a write that may add outbox rows (<see cref="OutboxRow"/>) to <paramref name="partition"/>: covered against a crash and relayed after.</summary>
    public Task<T> CoveredAsync<T>(TenantPartition partition, Func<CancellationToken, Task<T>> write, CancellationToken cancellationToken) =>
        relay.WriteCoveredAsync(partition, write, cancellationToken);

    /// <summary>One row written with its events; the entity holds its new ETag afterwards, like the partition's own writes.</summary>
    public async Task CommitAsync(TenantPartition partition, TableTransactionAction action, IReadOnlyList<PlatformEvent> events, CancellationToken cancellationToken)
    {
        var response = await CommitAsync(partition, [action], events, cancellationToken);
        if (action.ActionType != TableTransactionActionType.Delete)
        {
            action.Entity.ETag = response.Value[0].Headers.ETag ?? default;
        }
    }

    public Task PublishAsync(TenantId tenant, PlatformEvent platformEvent, CancellationToken cancellationToken) =>
        PublishManyAsync(tenant, [platformEvent], cancellationToken);

    /// <summary>Events that change no row, e.g. a refused sign-in: written to the <c>events</c> outbox, a row per hundred.</summary>
    public async Task PublishManyAsync(TenantId tenant, IReadOnlyList<PlatformEvent> events, CancellationToken cancellationToken)
    {
        var partition = storage.TenantTable(TableName).For(tenant);
        foreach (var chunk in events.Chunk(EventsPerRow))
        {
            try
            {
                await CommitAsync(partition, [], chunk, cancellationToken);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 409 && chunk.All(e => e.StableId is not null))
            {
                // Events with stable ids published again while the first publication still waits to be relayed.
            }
        }
    }

    private List<PublishedEvent> Stamp(IReadOnlyList<PlatformEvent> events)
    {
        var at = time.GetUtcNow();
        return [.. events.Select(e => new PublishedEvent(e.StableId ?? ids.Next(), at, e with { StableId = null }))];
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

        // One partition, so up to 100 entries go in one entity-group transaction. An event relayed again finds its
        // entry there (the row key is the event id): the entry is kept as it is, because it may have been scrubbed since.
        var partition = Entries(tenant);
        foreach (var chunk in entries.DistinctBy(e => e.RowKey).Chunk(100))
        {
            try
            {
                await partition.SubmitTransactionAsync([.. chunk.Select(e => new TableTransactionAction(TableTransactionActionType.Add, e))], cancellationToken);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 409)
            {
                foreach (var entry in chunk)
                {
                    try
                    {
                        await partition.AddAsync(entry, cancellationToken);
                    }
                    catch (RequestFailedException duplicate) when (duplicate.Status == 409)
                    {
                    }
                }
            }
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
