using System.IO.Compression;
using System.Text;
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

    /// <summary>
    /// The same events as they were committed: one list per outbox row (one change's transaction), in order. A row is
    /// always handed over whole and alike, however often it is relayed, so a subscriber may act per row.
    /// </summary>
    Task OnOutboxRowsAsync(TenantId tenant, IReadOnlyList<IReadOnlyList<PublishedEvent>> rows, CancellationToken cancellationToken) =>
        OnEventsAsync(tenant, [.. rows.SelectMany(row => row)], cancellationToken);
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
/// reads in time order; rows are only ever added (and scrubbed).
/// <para>
/// A <b>bundle</b> row holds a run of events that one change committed together and that differ only in their target
/// and changes - the items of a bulk import's transaction, a bulk create's users: same action, actor, address, target
/// type and time, ids in the same millisecond. Its row key is the first event's id, its <see cref="AuditEntry.Bundle"/>
/// lists every event's id, target and changes, and <see cref="AuditEntry.Bundled"/> marks it for queries. Readers
/// see one entry per event (<see cref="Expand"/>). Why: an audit row per imported row made the audit trail a third of
/// what a bulk import writes (docs/benchmarks.md, jobs figure); a bundle of up to a transaction's events is one row.
/// A bundle is made from one outbox row's events only, so relaying the row again makes the same bundle, with the
/// same key, and is refused as a repeat like any other entry.
/// </para>
/// </summary>
public sealed class AuditTrail(StorageAccount storage) : IEventSubscriber
{
    public const string TableName = "audit";

    /// <summary>Characters of a bundle's event list: a table property holds at most 32K UTF-16 characters.</summary>
    public const int MaxBundleChars = 30_000;

    public TenantPartition Entries(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>One entry per event of a row: a bundle's events, else the row itself.</summary>
    public static IEnumerable<AuditEntry> Expand(AuditEntry row)
    {
        if (row.Bundled != true || (row.Bundle is null && row.Packed is null))
        {
            yield return row;
            yield break;
        }

        List<BundledEvent>? events;
        try
        {
            events = row.Bundle is { } text
                ? JsonSerializer.Deserialize<List<BundledEvent>>(text, JsonSerializerOptions.Web)
                : Unpack(row.Packed!);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            events = null;
        }

        foreach (var e in events ?? [])
        {
            yield return new AuditEntry
            {
                PartitionKey = row.PartitionKey,
                RowKey = e.Id,
                Timestamp = row.Timestamp,
                At = row.At,
                Action = row.Action,
                ActorType = row.ActorType,
                ActorId = row.ActorId,
                OnBehalfOf = row.OnBehalfOf,
                Ip = e.NoIp == true ? null : row.Ip,
                TargetType = row.TargetType,
                TargetId = e.TargetId,
                Changes = e.Changes,
            };
        }
    }

    /// <summary>The entries a user caused or that are about them, oldest first.</summary>
    public async IAsyncEnumerable<AuditEntry> AboutAsync(TenantId tenant, string id, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var row in Entries(tenant).QueryWhereAsync<AuditEntry>($"TargetId eq {id} or ActorId eq {id} or OnBehalfOf eq {id} or Bundled eq true", cancellationToken: cancellationToken))
        {
            foreach (var entry in Expand(row))
            {
                if (entry.TargetId == id || entry.ActorId == id || entry.OnBehalfOf == id)
                {
                    yield return entry;
                }
            }
        }
    }

    /// <summary>
    /// Removes the personal data (recorded field values, addresses) from the entries about a purged user; the entries
    /// stay, with ids only. In a bundle, only the user's own events lose their values, unless the user made them all.
    /// </summary>
    public async Task ScrubAsync(TenantId tenant, string userId, CancellationToken cancellationToken)
    {
        var entries = Entries(tenant);
        await foreach (var found in entries.QueryWhereAsync<AuditEntry>($"TargetId eq {userId} or ActorId eq {userId} or OnBehalfOf eq {userId} or Bundled eq true", cancellationToken: cancellationToken))
        {
            // Conditioned on the row as read: two purges scrubbing one bundle at once must not put back each other's
            // users' data. A row that moved is read again and scrubbed again.
            var row = found;
            for (var attempt = 1; Scrubbed(row, userId) is { } scrubbed; attempt++)
            {
                try
                {
                    await entries.UpdateAsync(scrubbed, row.ETag, cancellationToken);
                    break;
                }
                catch (RequestFailedException ex) when (ex.Status == 412 && attempt < 10)
                {
                    row = await entries.GetAsync<AuditEntry>(row.RowKey, cancellationToken);
                    if (row is null)
                    {
                        break;
                    }
                }
            }
        }
    }

    /// <summary>The row with the user's personal data gone, or null when it holds none of it.</summary>
    private static AuditEntry? Scrubbed(AuditEntry row, string userId)
    {
        var byUser = row.ActorId == userId || row.OnBehalfOf == userId;
        if (row.Bundled == true && (row.Bundle is not null || row.Packed is not null))
        {
            var events = Expand(row).ToList();
            var left = byUser
                ? row.Ip is not null || events.Any(e => e.Changes is not null)
                : events.Any(e => e.TargetId == userId && (e.Changes is not null || e.Ip is not null));
            if (!left)
            {
                return null;
            }

            var scrubbed = events.Select(e =>
            {
                var aboutUser = byUser || e.TargetId == userId;
                // An event scrubbed before keeps its address hidden; when the user made them all, the row's goes.
                var noIp = !byUser && (aboutUser || e.Ip is null);
                return new BundledEvent(e.RowKey, e.TargetId, aboutUser ? null : e.Changes, noIp ? true : null);
            });
            Store(row, "[" + string.Join(',', scrubbed.Select(e => JsonSerializer.Serialize(e, BundleJson))) + "]");
            if (byUser)
            {
                row.Ip = null;
            }

            return row;
        }

        if ((byUser || row.TargetId == userId) && (row.Changes is not null || row.Ip is not null))
        {
            row.Changes = null;
            row.Ip = null;
            return row;
        }

        return null;
    }

    /// <summary>Events handed over without their rows (not by the relay): an entry each.</summary>
    public Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken) =>
        AddAsync(tenant, [.. events.Select(Single)], cancellationToken);

    public Task OnOutboxRowsAsync(TenantId tenant, IReadOnlyList<IReadOnlyList<PublishedEvent>> rows, CancellationToken cancellationToken) =>
        AddAsync(tenant, [.. rows.SelectMany(Rows)], cancellationToken);

    /// <summary>The audit rows of one outbox row's events: runs that only differ in target and changes as bundles.</summary>
    public static IEnumerable<AuditEntry> Rows(IReadOnlyList<PublishedEvent> events)
    {
        // Each event's part of a bundle, serialized once: its exact length decides where a bundle ends.
        var run = new List<(PublishedEvent Event, string Json)>();
        var chars = 2;
        foreach (var published in events)
        {
            var json = JsonSerializer.Serialize(new BundledEvent(published.Id, published.Event.TargetId, ChangesOf(published)), BundleJson);
            if (run.Count > 0 && (!SameRun(run[^1].Event, published) || chars + json.Length + 1 > MaxBundleChars))
            {
                foreach (var row in Of(run))
                {
                    yield return row;
                }

                run.Clear();
                chars = 2;
            }

            run.Add((published, json));
            chars += json.Length + 1;
        }

        foreach (var row in Of(run))
        {
            yield return row;
        }
    }

    private static bool SameRun(PublishedEvent last, PublishedEvent next) =>
        last.At == next.At &&
        string.CompareOrdinal(last.Id, next.Id) < 0 && last.Id.Length == 26 && next.Id.Length == 26 && last.Id.AsSpan(0, 10).SequenceEqual(next.Id.AsSpan(0, 10)) &&
        last.Event.Type == next.Event.Type && last.Event.TargetType == next.Event.TargetType &&
        last.Event.TargetId is not null && next.Event.TargetId is not null &&
        last.Event.Actor.Type == next.Event.Actor.Type && last.Event.Actor.Id == next.Event.Actor.Id &&
        last.Event.Actor.OnBehalfOf == next.Event.Actor.OnBehalfOf && last.Event.Actor.Ip == next.Event.Actor.Ip;

    /// <summary>A run as rows: one bundle, or the event's own row when it is alone (or its part alone is too long).</summary>
    private static IEnumerable<AuditEntry> Of(List<(PublishedEvent Event, string Json)> run)
    {
        if (run.Count == 1)
        {
            yield return Single(run[0].Event);
        }
        else if (run.Count > 1)
        {
            var first = Single(run[0].Event);
            first.TargetId = null;
            first.Changes = null;
            first.Bundled = true;
            Store(first, "[" + string.Join(',', run.Select(r => r.Json)) + "]");
            yield return first;
        }
    }

    /// <summary>
    /// Packed bytes a bundle may take. The SDK sizes its buffer for a binary property's base64 at several bytes a
    /// character: this keeps that buffer off the large object heap. A bundle that packs larger (long, varied changes)
    /// is stored as text.
    /// </summary>
    public const int MaxPackedBytes = 16 * 1024;

    /// <summary>The most a packed bundle may unpack to: its text is at most <see cref="MaxBundleChars"/> characters.</summary>
    private const int MaxUnpackedBytes = MaxBundleChars * 3;

    /// <summary>A bundle's event list into its row: packed when it packs small enough, else as text.</summary>
    private static void Store(AuditEntry row, string bundle)
    {
        var packed = new MemoryStream();
        using (var zlib = new ZLibStream(packed, CompressionLevel.Fastest, leaveOpen: true))
        {
            zlib.Write(Encoding.UTF8.GetBytes(bundle));
        }

        var fits = packed.Length <= MaxPackedBytes;
        row.Packed = fits ? packed.ToArray() : null;
        row.Bundle = fits ? null : bundle;
    }

    /// <summary>A packed bundle's events; an <see cref="InvalidDataException"/> when it is damaged or unpacks too large.</summary>
    private static List<BundledEvent>? Unpack(byte[] packed) =>
        JsonSerializer.Deserialize<List<BundledEvent>>(PackedJson.Unpack(new MemoryStream(packed, writable: false), MaxUnpackedBytes).Span, JsonSerializerOptions.Web);

    /// <summary>
    /// A bundle's JSON: quotes in the recorded changes escaped as <c>\"</c>, not <c>\u0022</c>, so that a bundle holds
    /// as many events as it can (it is stored text, never served as HTML); absent values left out.
    /// </summary>
    private static readonly JsonSerializerOptions BundleJson = new(JsonSerializerOptions.Web)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    private static string? ChangesOf(PublishedEvent p) =>
        p.Event.Changes is null ? null : JsonSerializer.Serialize(p.Event.Changes, JsonSerializerOptions.Web);

    private static AuditEntry Single(PublishedEvent p) => new()
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
        Changes = ChangesOf(p),
    };

    private async Task AddAsync(TenantId tenant, List<AuditEntry> entries, CancellationToken cancellationToken)
    {
        // One partition, so up to 100 entries go in one entity-group transaction. An event relayed again finds its
        // entry there (the row key is the event id, or a bundle's first): the entry is kept as it is, because it may
        // have been scrubbed since.
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

    /// <summary>
    /// One event of a bundle: its id, target and recorded changes (JSON text, as in a row's <c>Changes</c>); <c>NoIp</c>
    /// when its address was scrubbed while the bundle's other events keep theirs.
    /// </summary>
    private sealed record BundledEvent(string Id, string? TargetId, string? Changes, bool? NoIp = null);
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

    /// <summary>True on a bundle row (see <see cref="AuditTrail"/>); absent on an entry of one event.</summary>
    public bool? Bundled { get; set; }

    /// <summary>A bundle's events as text: <c>[{ id, targetId, changes }]</c>, in order (rows written before
    /// <see cref="Packed"/>, and bundles too varied to pack small).</summary>
    public string? Bundle { get; set; }

    /// <summary>
    /// A bundle's events, the same JSON compressed with zlib: how bundles are written. As text, a bundle of an import
    /// transaction's 48 items took some 6-8 KB with every quote escaped twice, the largest part of what the table service
    /// parsed for an import beyond the items themselves; packed it takes under 4 KB (docs/benchmarks.md, jobs figure).
    /// </summary>
    public byte[]? Packed { get; set; }
}
