using System.Collections.Concurrent;
using System.Globalization;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// A per-tenant log of which rows changed, so that an in-memory projection on another instance can catch up by
/// reading only what changed instead of scanning the tenant's partition. A table registers the row-key prefixes it
/// logs (<see cref="StorageLayoutExtensions.AddStorageTable"/>); from then on every write through
/// <see cref="TenantPartition"/> that touches such a row also adds one entry, listing the keys written, <b>in the same
/// entity-group transaction</b>. So no code path can change a logged row without logging it, and a logged change is
/// never lost to a crash between two writes.
/// <para>
/// Entries are numbered, not timed. The partition holds a sequence row (<see cref="SequenceKey"/>) with the number
/// of the last entry, and a logged transaction carries, besides its entry <c>n</c>, an update of that row from
/// <c>n-1</c> to <c>n</c> conditioned on its ETag. Why that makes catch-up correct whatever the clocks and delays:
/// </para>
/// <list type="number">
/// <item>Entry <c>n</c> commits only together with the sequence row going from <c>n-1</c> to <c>n</c>, and that
/// update is conditional, so exactly one transaction gets each number, numbers have no holes, and entry <c>n</c>
/// commits after entry <c>n-1</c>. A transaction delayed by retries either still finds the row at <c>n-1</c> (then
/// nobody committed in between and its number is the next) or fails on the ETag and is renumbered.</item>
/// <item>So a reader that has seen every entry up to <c>P</c> and reads the entries after <c>P</c> can miss nothing:
/// anything committed later has a greater number. Entries are numbered by storage, not by the writer's clock, so no
/// clock skew or commit delay moves a write behind a reader.</item>
/// <item>Numbers have no holes, so a reader that finds one knows entries were trimmed before it read them and
/// reloads (<see cref="Read"/>). A trim never deletes the newest entry, so a hole always shows.</item>
/// </list>
/// <para>
/// The price is that logged writes to one tenant's table are serialized: two transactions cannot both move the
/// sequence row. Each instance queues its own writers per tenant and table and remembers the row's ETag, so a write
/// costs its one transaction as before; after another instance wrote to the tenant, one more read of the row and one
/// more attempt. Writes to other tenants, and the reads and checks around a write, still run in parallel.
/// </para>
/// <para>
/// Clocks only decide when entries are deleted: each entry carries its writer's time, and entries older than
/// <see cref="Retention"/> are deleted by writers, a page at a time until none is left (bounded per run), whenever a
/// write's number is a multiple of <see cref="TrimStride"/> (so trimming keeps pace with writes, whichever instance
/// makes them) and at least every <see cref="TrimEvery"/> per instance. A wrong clock makes an entry live too long or
/// too short; the latter costs a lagging reader a reload, never a missed write.
/// </para>
/// </summary>
public static class ChangeLog
{
    public const string KeyPrefix = "~changelog:";
    private const string KeyEnd = "~changelog;";

    /// <summary>The row holding the number of the partition's last entry; outside the entries' key range.</summary>
    public const string SequenceKey = "~changelog";

    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);
    public static readonly TimeSpan TrimEvery = TimeSpan.FromMinutes(10);

    /// <summary>The write whose number is a multiple of this also trims: deletes keep pace with inserts.</summary>
    public const long TrimStride = 100;

    /// <summary>Pages of 100 deletes a trim takes at most, so that one write never carries an unbounded cleanup.</summary>
    public const int MaxTrimPages = 20;

    /// <summary>The keys of logged rows a transaction writes, '\n'-separated, or null when it writes none.</summary>
    internal static string? KeysOf(IEnumerable<TableTransactionAction> actions, IReadOnlyList<string> loggedPrefixes)
    {
        if (loggedPrefixes.Count == 0)
        {
            return null;
        }

        var keys = actions.Select(a => a.Entity.RowKey).Where(k => IsLogged(k, loggedPrefixes)).Distinct(StringComparer.Ordinal).ToList();
        return keys.Count == 0 ? null : string.Join('\n', keys);
    }

    internal static bool IsLogged(string rowKey, IReadOnlyList<string> loggedPrefixes)
    {
        foreach (var prefix in loggedPrefixes)
        {
            if (rowKey.StartsWith(prefix, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    public static string KeyFor(long sequence) => KeyPrefix + sequence.ToString("D19", CultureInfo.InvariantCulture);

    /// <summary>The number of the partition's last entry (0 before the first): everything up to it is committed.</summary>
    public static async Task<long> LastSequenceAsync(TenantPartition partition, CancellationToken cancellationToken) =>
        (await partition.GetAsync<SequenceEntity>(SequenceKey, cancellationToken))?.Sequence ?? 0;

    /// <summary>The entries numbered after <paramref name="after"/>, in order: a row-key range, not a scan.</summary>
    public static AsyncPageable<ChangeEntity> ReadAfterAsync(TenantPartition partition, long after, CancellationToken cancellationToken) =>
        partition.QueryWhereAsync<ChangeEntity>($"RowKey gt {KeyFor(after)} and RowKey lt {KeyEnd}", maxPerPage: 1000, cancellationToken);

    /// <summary>
    /// What changed after entry <paramref name="after"/>: the rows named, and the number to read after next time.
    /// Null when entries after <paramref name="after"/> were already trimmed (a hole) or more than
    /// <paramref name="maxKeys"/> rows changed: the reader must reload.
    /// </summary>
    public static async Task<(HashSet<string> Keys, long Last)?> Read(
        TenantPartition partition, long after, string keyPrefix, int maxKeys, CancellationToken cancellationToken)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var last = after;
        await foreach (var entry in ReadAfterAsync(partition, after, cancellationToken))
        {
            if (entry.Sequence != last + 1)
            {
                return null;
            }

            last = entry.Sequence;
            foreach (var key in entry.ChangedKeys())
            {
                if (key.StartsWith(keyPrefix, StringComparison.Ordinal))
                {
                    keys.Add(key);
                }
            }

            if (keys.Count > maxKeys)
            {
                return null;
            }
        }

        return (keys, last);
    }

    /// <summary>The sequence row.</summary>
    public sealed class SequenceEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = SequenceKey;
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public long Sequence { get; set; }
    }
}

/// <summary>
/// One app instance's side of the change log: per tenant partition of a logged table, the last sequence row it saw
/// (number and ETag) and the queue its writers wait in, so they do not race each other for the next number.
/// </summary>
public sealed class ChangeLogWriter(TimeProvider time)
{
    private const int MaxSlots = 10_000;

    /// <summary>Attempts at a number before a write gives up (only under sustained contention from other instances).</summary>
    private const int MaxAttempts = 20;

    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);

    /// <summary>
    /// Submits <paramref name="actions"/> with their entry and the sequence row's move as the last two actions (the
    /// callers' responses and failed-action indexes keep their order), renumbering while the row moved under it.
    /// </summary>
    internal async Task<Response<IReadOnlyList<Response>>> SubmitAsync(
        TableClient table, string partitionKey, IReadOnlyCollection<TableTransactionAction> actions, string keys, CancellationToken cancellationToken)
    {
        if (_slots.Count > MaxSlots)
        {
            // Only the remembered ETags and queues go: a writer holding an old slot still conditions on the row.
            _slots.Clear();
        }

        var slot = _slots.GetOrAdd(table.Name + "\n" + partitionKey, _ => new Slot());
        Response<IReadOnlyList<Response>> response;
        long sequence;
        await slot.Gate.WaitAsync(cancellationToken);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                if (!slot.Known)
                {
                    var row = await table.GetEntityIfExistsAsync<ChangeLog.SequenceEntity>(partitionKey, ChangeLog.SequenceKey, cancellationToken: cancellationToken);
                    (slot.Sequence, slot.ETag, slot.Known) = row.HasValue ? (row.Value!.Sequence, row.Value.ETag, true) : (0, default, true);
                }

                sequence = slot.Sequence + 1;
                var counter = new ChangeLog.SequenceEntity { PartitionKey = partitionKey, Sequence = sequence };
                var entry = new ChangeEntity { PartitionKey = partitionKey, RowKey = ChangeLog.KeyFor(sequence), Keys = keys, At = time.GetUtcNow() };
                TableTransactionAction move = slot.ETag == default
                    ? new(TableTransactionActionType.Add, counter)
                    : new(TableTransactionActionType.UpdateReplace, counter, slot.ETag);
                try
                {
                    response = await table.SubmitTransactionAsync([.. actions, move, new(TableTransactionActionType.Add, entry)], cancellationToken);
                    slot.Sequence = sequence;
                    slot.ETag = response.Value[actions.Count].Headers.ETag ?? default;
                    slot.Known = slot.ETag != default;
                    break;
                }
                catch (TableTransactionFailedException ex) when (ex.FailedTransactionActionIndex >= actions.Count)
                {
                    // Another instance took the number (412 on the row, or 409 on a row or entry it created): read it again.
                    slot.Known = false;
                    if (attempt >= MaxAttempts)
                    {
                        throw;
                    }
                }
                catch (Exception ex) when (ex is not TableTransactionFailedException)
                {
                    // The outcome is unknown (a timeout, a 5xx after retries): read the row before the next write. A
                    // failed condition of the callers' own writes commits nothing and leaves what this knows as it was.
                    slot.Known = false;
                    throw;
                }
            }
        }
        finally
        {
            slot.Gate.Release();
        }

        try
        {
            // After the write, with its own token: a trim that fails or is cut short must not fail a write that happened.
            await TrimIfDueAsync(table, partitionKey, slot, sequence, CancellationToken.None);
        }
        catch (RequestFailedException)
        {
            // Left for the next trim.
        }

        return response;
    }

    /// <summary>
    /// Deletes entries older than <see cref="ChangeLog.Retention"/> below <paramref name="written"/> (so the newest entry
    /// stays and a reader always sees a hole), oldest first, a page per transaction until none is left or
    /// <see cref="ChangeLog.MaxTrimPages"/> pages are done. Due on every <see cref="ChangeLog.TrimStride"/>-th number and
    /// when this instance has not trimmed the partition for <see cref="ChangeLog.TrimEvery"/>.
    /// </summary>
    private async Task TrimIfDueAsync(TableClient table, string partitionKey, Slot slot, long written, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (written % ChangeLog.TrimStride != 0 && slot.LastTrim is { } last && now - last < ChangeLog.TrimEvery)
        {
            return;
        }

        slot.LastTrim = now;
        var cutoff = now - ChangeLog.Retention;
        for (var page = 0; page < ChangeLog.MaxTrimPages; page++)
        {
            // The oldest hundred entries left, by number; writers' clocks roughly agree with that order, so a page
            // without an expired entry means the rest are younger too.
            var oldest = table.QueryAsync<ChangeEntity>(
                TableClient.CreateQueryFilter($"PartitionKey eq {partitionKey} and RowKey ge {ChangeLog.KeyPrefix} and RowKey lt {ChangeLog.KeyFor(written)}"),
                maxPerPage: 100, select: ["RowKey", "At"], cancellationToken: cancellationToken);
            var expired = new List<string>();
            await foreach (var first in oldest.AsPages().WithCancellation(cancellationToken))
            {
                expired.AddRange(first.Values.Where(e => e.At < cutoff).Select(e => e.RowKey));
                break;
            }

            if (expired.Count == 0)
            {
                return;
            }

            try
            {
                await table.SubmitTransactionAsync(
                    expired.Select(key => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(partitionKey, key), ETag.All)),
                    cancellationToken);
            }
            catch (TableTransactionFailedException)
            {
                // Another instance trimmed the same entries first; whatever is left goes next time.
                return;
            }
        }
    }

    private sealed class Slot
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public bool Known { get; set; }
        public long Sequence { get; set; }
        public ETag ETag { get; set; }
        public DateTimeOffset? LastTrim { get; set; }
    }
}

/// <summary>One logged write: its number, the row keys it changed (separated by '\n', which row keys cannot hold), and its writer's time.</summary>
public sealed class ChangeEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Keys { get; set; } = "";

    /// <summary>The writer's clock when it wrote the entry: what retention is measured by, never what readers order by.</summary>
    public DateTimeOffset At { get; set; }

    public long Sequence =>
        RowKey.StartsWith(ChangeLog.KeyPrefix, StringComparison.Ordinal) && long.TryParse(RowKey.AsSpan(ChangeLog.KeyPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence)
            ? sequence : -1;

    public string[] ChangedKeys() => Keys.Split('\n', StringSplitOptions.RemoveEmptyEntries);
}
