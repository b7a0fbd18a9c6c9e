using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Threading.Channels;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Events;

/// <summary>Settings under <c>Platform:Events</c>.</summary>
public sealed class EventsOptions
{
    public const string Section = "Platform:Events";

    /// <summary>
    /// When a cover message (see <see cref="EventRelay"/>) makes the relay look at a partition whose writer may have
    /// died: the longest a crash delays an event. At least <see cref="EventRelay.WriteBudget"/> plus the storage
    /// service's own timeout beyond the time a cover is relied on, which this also sets.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan CoverDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Partitions this instance relays at once.</summary>
    [Range(1, 64)]
    public int RelayConcurrency { get; set; } = 4;

    /// <summary>
    /// Committed outbox rows this instance holds in memory per partition for its relay (each as its packed row, about
    /// 2 KB for a bulk write's 48 events): the bound on what a relay that falls behind holds. Rows committed past it
    /// stay in storage only, and the relay reads just those back, after relaying the ones it holds.
    /// </summary>
    [Range(1, 100_000)]
    public int MaxHeldRows { get; set; } = 1000;
}

/// <summary>
/// Moves events from the outboxes (<see cref="EventOutbox"/>) to the subscribers (the audit trail, webhook fan-out),
/// at least once and in order per partition, then deletes them.
/// <para>
/// Normally the writer's own instance relays a partition moments after the write: the write nudges this relay in
/// memory. A write whose outbox row is known to have committed (<see cref="EventPublisher.CommitAsync(TenantPartition, IReadOnlyCollection{TableTransactionAction}, IReadOnlyList{PlatformEvent}, CancellationToken)"/>
/// answered success) hands the row's key and events along with the nudge, so the relay reads nothing: it passes them
/// on and deletes the rows. Any other write (one built elsewhere, or one whose outcome is unknown) makes the relay
/// query the partition's outbox instead; a write refused by storage committed nothing and needs no relay (should a
/// retry have hidden a commit, the cover below finds its row). For a writer that dies between its commit and the relay, every outbox write is <b>covered</b> first: before
/// the first such write to a partition in a while, the instance queues a message on the <c>event-relay</c> queue that
/// becomes visible only after <see cref="EventsOptions.CoverDelay"/>, and whichever instance receives it relays that
/// partition. A cover is relied on by writes that start within <c>CoverDelay - WriteBudget - 30 s</c> of sending it, and
/// such a write is cancelled after <see cref="WriteBudget"/>: so any transaction a dead writer left in flight has
/// committed or failed (storage's own limit is 30 s) before its cover is read. An idle cover costs one message that
/// finds nothing; a cover per partition per few minutes is the whole price of surviving a crash there.
/// </para>
/// </summary>
public sealed partial class EventRelay(
    StorageAccount storage,
    IServiceProvider services,
    IOptions<EventsOptions> options,
    IOptions<StorageLayout> layout,
    TimeProvider time,
    ILogger<EventRelay> logger) : BackgroundService
{
    public const string QueueName = "event-relay";

    /// <summary>The longest an outbox write may take (its retries included) before it is given up.</summary>
    public static readonly TimeSpan WriteBudget = TimeSpan.FromSeconds(60);

    /// <summary>How long storage may still commit a transaction whose writer is gone (the service's operation timeout).</summary>
    private static readonly TimeSpan StorageCommitLag = TimeSpan.FromSeconds(30);

    private const int RowsPerPage = 100;

    /// <summary>How long a nudged partition waits for more writes before it is relayed.</summary>
    private static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// How long a busy partition waits: one whose last relay began less than this long ago. A bulk import commits a
    /// transaction every 10-15 ms; relayed 25 ms after each nudge, a drain took only the few rows committed meanwhile,
    /// and each drain is two more requests (the audit transaction and the outbox delete). Waiting this long, one drain
    /// takes a dozen rows or more. A write now and then still goes out after 25 ms.
    /// </summary>
    private static readonly TimeSpan BusyCoalesce = TimeSpan.FromMilliseconds(250);
    private const int MaxRemembered = 10_000;

    private readonly Channel<Partition> _nudges = Channel.CreateUnbounded<Partition>(new UnboundedChannelOptions { SingleReader = false });
    private readonly ConcurrentDictionary<Partition, byte> _queued = new();

    /// <summary>
    /// Per partition, the outbox rows this instance committed and has not relayed yet, or null when the partition must
    /// be queried from its start (a write of unknown rows or outcome, a failed relay). Guarded by its own lock.
    /// </summary>
    private readonly Dictionary<Partition, Held?> _pending = [];
    private readonly ConcurrentDictionary<Partition, Cover> _covers = new();
    /// <summary>
    /// One relay of a partition at a time on this instance, through a fixed set of gates picked by the partition's
    /// hash: bounded memory without ever dropping a gate that someone holds. Two partitions that share a gate only take
    /// turns.
    /// </summary>
    private readonly SemaphoreSlim[] _gates = [.. Enumerable.Range(0, 1024).Select(_ => new SemaphoreSlim(1, 1))];

    /// <summary>When a relay of the partitions of each gate last began (<see cref="Environment.TickCount64"/>).</summary>
    private readonly long[] _relayedAt = new long[1024];
    private IEventSubscriber[]? _subscribers;

    private readonly record struct Partition(string Table, string Tenant);

    private sealed record Cover(DateTimeOffset SentAt, Task Sending);

    private sealed record CoverMessage(string Table, string Tenant);

    /// <summary>
    /// The rows of a partition a relay takes from memory, up to <see cref="EventsOptions.MaxHeldRows"/>; with
    /// <see cref="Beyond"/>, rows committed after those (past the bound) wait in storage only. A relay hands the held
    /// rows over and deletes them, then reads the outbox: what it finds is exactly what it does not hold. Dropping the
    /// held rows instead (as this relay once did) made a relay that fell behind a bulk import read back every row it had
    /// in memory, about 1.5 MB a page of 100, for the rest of the import.
    /// </summary>
    private sealed class Held(Committed first)
    {
        public List<Committed> Rows { get; } = [first];

        public bool Beyond { get; set; }
    }

    /// <summary>
    /// An outbox row known to be in storage, kept as written: its events are read from it at hand-over, exactly as a
    /// relay that queried the row would read them. Kept as the row's packed bytes rather than as event objects because
    /// under load a partition's pending rows wait for the drain in front of them (a bulk import keeps hundreds, up to
    /// <see cref="EventsOptions.MaxHeldRows"/>): a waiting row then holds about 2 KB for 48 events rather than some
    /// 60 KB of small objects (each event's record, actor, payload dictionary and JSON documents).
    /// </summary>
    internal sealed record Committed(TableEntity Row)
    {
        public string RowKey => Row.RowKey;

        public IReadOnlyList<PublishedEvent> Events() => EventOutbox.EventsOf(Row);
    }

    private IEventSubscriber[] Subscribers => _subscribers ??= [.. services.GetServices<IEventSubscriber>()];

    private TimeSpan RelyFor => options.Value.CoverDelay - WriteBudget - StorageCommitLag;

    /// <summary>
    /// Runs a write that adds an outbox row: covered first, bounded by <see cref="WriteBudget"/>, and followed by a
    /// nudge so this instance relays the partition at once.
    /// </summary>
    internal async Task<T> WriteCoveredAsync<T>(TenantPartition partition, Func<CancellationToken, Task<T>> write, CancellationToken cancellationToken)
    {
        var key = await CoverAsync(partition, cancellationToken);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(WriteBudget);
        try
        {
            return await write(bounded.Token);
        }
        finally
        {
            // Also after a failure whose outcome is unknown: the relay finds the row or nothing.
            Relay(key, committed: null);
        }
    }

    /// <summary>
    /// Runs one transaction that adds the outbox row <paramref name="outbox"/>: covered, bounded, and relayed from
    /// memory once storage answered that it committed.
    /// </summary>
    internal Task<T> WriteCoveredAsync<T>(TenantPartition partition, Committed outbox, Func<CancellationToken, Task<T>> write, CancellationToken cancellationToken) =>
        WriteCoveredAsync(partition, write, () => outbox, cancellationToken);

    /// <summary>
    /// Runs a write that plans its outbox row as it goes (a counted write, whose plan may run again after a refused
    /// attempt): covered and bounded as above. Once storage answered that the write committed,
    /// <paramref name="committed"/> names the outbox row its committed attempt held (null: none, or unknown), and that
    /// row is relayed from memory. A refused write committed nothing; any other failure leaves the relay to query.
    /// </summary>
    internal async Task<T> WriteCoveredAsync<T>(TenantPartition partition, Func<CancellationToken, Task<T>> write, Func<Committed?> committed, CancellationToken cancellationToken)
    {
        var key = await CoverAsync(partition, cancellationToken);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(WriteBudget);
        T written;
        try
        {
            written = await write(bounded.Token);
        }
        catch (TableTransactionFailedException)
        {
            // Every attempt was refused whole (the cover finds a row a hidden retry may have committed).
            throw;
        }
        catch
        {
            // The outcome is unknown: the relay looks in storage and finds the row or nothing.
            Relay(key, committed: null);
            throw;
        }

        Relay(key, committed());
        return written;
    }

    private async Task<Partition> CoverAsync(TenantPartition partition, CancellationToken cancellationToken)
    {
        if (!layout.Value.Outboxes.Contains(partition.Table))
        {
            throw new InvalidOperationException($"The table '{partition.Table}' carries no outbox: register it with AddEventOutbox.");
        }

        var key = new Partition(partition.Table, partition.Tenant.Value);
        await CoverAsync(key, cancellationToken);
        return key;
    }

    /// <summary>Asks for a relay of the partition: of the row <paramref name="committed"/> from memory, or (null) by a query.</summary>
    private void Relay(Partition key, Committed? committed, bool nudge = true)
    {
        lock (_pending)
        {
            if (committed is null)
            {
                _pending[key] = null;
            }
            else if (!_pending.TryGetValue(key, out var held))
            {
                _pending[key] = new Held(committed);
            }
            else if (held is null)
            {
                // The partition is to be queried from its start, which finds this row too.
            }
            else if (held.Rows.Count < options.Value.MaxHeldRows)
            {
                held.Rows.Add(committed);
            }
            else
            {
                held.Beyond = true;
            }
        }

        if (nudge)
        {
            Nudge(key);
        }
    }

    /// <summary>
    /// Takes what a relay of the partition starts from: nothing (no write asked for one since the last relay took its
    /// rows), the rows known in memory (and whether more wait in storage), or null when it must read the outbox from its
    /// start (a write of unknown rows or outcome). A query sees the rows taken too.
    /// </summary>
    private (bool Asked, Held? Rows) TakePending(Partition key)
    {
        lock (_pending)
        {
            return _pending.Remove(key, out var rows) ? (true, rows) : (false, null);
        }
    }

    /// <summary>
    /// Rows a query found, relayed and deleted, are no longer the next relay's to hand over: a row committed while this
    /// relay ran is both in storage and in the partition's new list, and without this every such row reached the
    /// subscribers twice (the audit trail then retried its transaction an entry at a time, and the delete a row at a time).
    /// </summary>
    private void Forget(Partition key, List<TableEntity> relayed)
    {
        lock (_pending)
        {
            if (_pending.TryGetValue(key, out var held) && held is not null)
            {
                var gone = relayed.Select(row => row.RowKey).ToHashSet(StringComparer.Ordinal);
                held.Rows.RemoveAll(row => gone.Contains(row.RowKey));
                if (held.Rows.Count == 0 && !held.Beyond)
                {
                    // Nothing left to ask for; the nudge that is queued finds nothing and returns.
                    _pending.Remove(key);
                }
            }
        }
    }

    private async Task CoverAsync(Partition key, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_covers.TryGetValue(key, out var cover) && now - cover.SentAt < RelyFor)
        {
            await cover.Sending.WaitAsync(cancellationToken);
            return;
        }

        if (_covers.Count > MaxRemembered)
        {
            _covers.Clear();
        }

        var fresh = new Cover(now, SendCoverAsync(key));
        _covers[key] = fresh;
        try
        {
            await fresh.Sending.WaitAsync(cancellationToken);
        }
        catch
        {
            // Not sent: the next write tries again rather than relying on it.
            _covers.TryRemove(new KeyValuePair<Partition, Cover>(key, fresh));
            throw;
        }
    }

    private async Task SendCoverAsync(Partition key) =>
        await storage.Queue(QueueName).SendMessageAsync(
            BinaryData.FromObjectAsJson(new CoverMessage(key.Table, key.Tenant), JsonSerializerOptions.Web),
            visibilityTimeout: options.Value.CoverDelay, cancellationToken: CancellationToken.None);

    private void Nudge(Partition key)
    {
        if (_queued.TryAdd(key, 0))
        {
            _nudges.Writer.TryWrite(key);
        }
    }

    /// <summary>
    /// Relays every event waiting for <paramref name="tenant"/> in any outbox, before returning: for readers that must
    /// see the events of writes that were answered already (the audit trail's routes, a purge's scrub).
    /// </summary>
    /// <remarks>The tables at once: order holds per partition, and every capability's table carries an outbox.</remarks>
    public Task CatchUpAsync(TenantId tenant, CancellationToken cancellationToken) =>
        Task.WhenAll(layout.Value.Outboxes.Select(table => RelayAsync(new Partition(table, tenant.Value), query: true, cancellationToken)));

    /// <summary>Relays one partition's outbox; with a cover message, whatever instance wrote it.</summary>
    internal async Task RelayAsync(string table, TenantId tenant, CancellationToken cancellationToken)
    {
        if (!layout.Value.Outboxes.Contains(table))
        {
            throw new InvalidOperationException($"The table '{table}' carries no outbox.");
        }

        await RelayAsync(new Partition(table, tenant.Value), query: true, cancellationToken);
    }

    /// <param name="query">Whether to read the outbox from storage whatever this instance knows (a cover, a catch-up).</param>
    private async Task RelayAsync(Partition key, bool query, CancellationToken cancellationToken)
    {
        // One relay of a partition at a time on this instance, so its events reach subscribers in order.
        var gate = _gates[GateOf(key)];
        await gate.WaitAsync(cancellationToken);
        try
        {
            var tenant = new TenantId(key.Tenant);
            var partition = storage.TenantTable(key.Table).For(tenant);
            var (asked, known) = TakePending(key);
            try
            {
                if (!query && !asked)
                {
                    // Nudged twice while one relay took the rows of both.
                    return;
                }

                if (!query && known is not null)
                {
                    // Rows this instance saw commit, in key order (the order of their first events' ids).
                    known.Rows.Sort((a, b) => string.CompareOrdinal(a.RowKey, b.RowKey));
                    foreach (var chunk in known.Rows.Chunk(RowsPerPage))
                    {
                        await HandOverAsync(tenant, [.. chunk.Select(row => row.Events())], cancellationToken);
                        await DeleteAsync(partition, [.. chunk.Select(row => new TableEntity(key.Tenant, row.RowKey))], cancellationToken);
                    }

                    if (!known.Beyond)
                    {
                        return;
                    }

                    // Rows committed past the bound, all newer than those: the held ones are deleted, so the outbox now
                    // holds just them (and rows committed since, which the query relays and the next relay then skips).
                }

                while (true)
                {
                    List<TableEntity> rows = [];
                    await foreach (var page in EventOutbox.PendingAsync(partition, RowsPerPage, cancellationToken).AsPages().WithCancellation(cancellationToken))
                    {
                        rows = [.. page.Values];
                        break;
                    }

                    if (rows.Count > 0)
                    {
                        await HandOverAsync(tenant, [.. rows.Select(EventOutbox.EventsOf)], cancellationToken);
                        await DeleteAsync(partition, rows, cancellationToken);
                        Forget(key, rows);
                    }

                    // A short page was the whole outbox when the query ran; a row committed since nudged a relay of its own.
                    if (rows.Count < RowsPerPage)
                    {
                        return;
                    }
                }
            }
            catch
            {
                // What was taken from memory is still in storage (or relayed): the next try reads the outbox.
                Relay(key, committed: null, nudge: false);
                throw;
            }
        }
        finally
        {
            gate.Release();
        }
    }

    private int GateOf(Partition key) => (int)((uint)key.GetHashCode() % (uint)_gates.Length);

    /// <summary>Each outbox row's events, whole and in order (a subscriber may act per row: the audit trail bundles).</summary>
    private async Task HandOverAsync(TenantId tenant, List<IReadOnlyList<PublishedEvent>> rows, CancellationToken cancellationToken)
    {
        rows.RemoveAll(row => row.Count == 0);
        if (rows.Count > 0)
        {
            foreach (var subscriber in Subscribers)
            {
                await subscriber.OnOutboxRowsAsync(tenant, rows, cancellationToken);
            }
        }
    }

    private static async Task DeleteAsync(TenantPartition partition, List<TableEntity> rows, CancellationToken cancellationToken)
    {
        try
        {
            await partition.SubmitTransactionAsync([.. rows.Select(r => new TableTransactionAction(TableTransactionActionType.Delete, r, ETag.All))], cancellationToken);
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 404)
        {
            // Another instance relayed some of them meanwhile (their subscribers saw them twice: at least once).
            foreach (var row in rows)
            {
                try
                {
                    await partition.DeleteAsync(row.RowKey, ETag.All, cancellationToken);
                }
                catch (RequestFailedException gone) when (gone.Status == 404)
                {
                }
            }
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, options.Value.RelayConcurrency).Select(_ => RelayNudgedAsync(stoppingToken)));

    private async Task RelayNudgedAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var key in _nudges.Reader.ReadAllAsync(stoppingToken))
            {
                // A moment's wait lets the writes that follow close behind join this relay: under load one drain then
                // carries many events (one query, one audit transaction, one delete) instead of one each. Partitions
                // that share a gate share its clock: one of them may wait the longer time for the other's load.
                var slot = GateOf(key);
                var busy = Environment.TickCount64 - Volatile.Read(ref _relayedAt[slot]) < BusyCoalesce.TotalMilliseconds;
                await Task.Delay(busy ? BusyCoalesce : Coalesce, stoppingToken);
                Volatile.Write(ref _relayedAt[slot], Environment.TickCount64);

                // Taken off before relaying: a write committed while this relay runs nudges again and is not missed.
                _queued.TryRemove(key, out _);
                try
                {
                    await RelayAsync(key, query: false, stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    LogRelayFailed(logger, key.Table, ex.Message);
                    _ = RetryLaterAsync(key, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>A relay that failed (storage down, a subscriber failing) is tried again after a pause; the cover stays as the last resort.</summary>
    private async Task RetryLaterAsync(Partition key, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(5), stoppingToken);
            Nudge(key);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Relaying the events of a partition of '{Table}' failed and will be retried: {Reason}")]
    private static partial void LogRelayFailed(ILogger logger, string table, string reason);

    /// <summary>Reads a cover message; null for text that is not one.</summary>
    internal static (string Table, TenantId Tenant)? ReadCover(string text)
    {
        try
        {
            var message = JsonSerializer.Deserialize<CoverMessage>(text, JsonSerializerOptions.Web);
            return message is { Table.Length: > 0, Tenant.Length: > 0 } && TenantId.TryParse(message.Tenant, out var tenant) ? (message.Table, tenant) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>The <c>EventRelay</c> queue function: a cover message came due, so its partition is relayed, by whichever instance.</summary>
public sealed partial class EventRelayCovers(EventRelay relay, IOptions<StorageLayout> layout, ILogger<EventRelayCovers> logger) : IQueueHandler
{
    public async Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
    {
        if (EventRelay.ReadCover(message.Text) is not { } cover || !layout.Value.Outboxes.Contains(cover.Table))
        {
            LogUnreadable(logger, message.Id);
            return;
        }

        await relay.RelayAsync(cover.Table, cover.Tenant, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Event relay message {MessageId} is not a cover message; dropped.")]
    private static partial void LogUnreadable(ILogger logger, string messageId);
}
