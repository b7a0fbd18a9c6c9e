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
/// The log of a partition is <see cref="Lanes"/> numbered sequences that writers use in parallel. Each lane has a
/// sequence row (<see cref="SequenceKey"/>) with the number of its last entry, and a logged transaction carries, besides
/// its entry <c>n</c> in lane <c>l</c>, an update of lane <c>l</c>'s row from <c>n-1</c> to <c>n</c> conditioned on its
/// ETag. Why that makes catch-up correct whatever the clocks and delays, lane by lane:
/// </para>
/// <list type="number">
/// <item>Entry <c>n</c> commits only together with its lane's row going from <c>n-1</c> to <c>n</c>, and that update is
/// conditional, so exactly one transaction gets each number of a lane, numbers have no holes, and entry <c>n</c> commits
/// after entry <c>n-1</c>. A transaction delayed by retries either still finds the row at <c>n-1</c> (then nobody
/// committed in between and its number is the next) or fails on the ETag and is renumbered.</item>
/// <item>So a reader that has seen every entry of each lane up to its position and reads each lane's entries after it
/// can miss nothing: anything committed later has a greater number in its lane. Entries are numbered by storage, not by
/// the writer's clock, so no clock skew or commit delay moves a write behind a reader.</item>
/// <item>Numbers have no holes, so a reader that finds one (or finds a lane's row ahead of its entries) knows entries
/// were trimmed before it read them and reloads (<see cref="Read"/>). A trim never deletes a lane's newest entry.</item>
/// </list>
/// <para>
/// Why lanes: with one sequence, logged writes to one tenant's table were serialized (two transactions cannot both
/// move one row), which held a tenant's bulk import or burst of movements to one write at a time. Each instance
/// queues its writers per lane and remembers each lane row's ETag, so a write costs its one transaction; a writer takes
/// the first free lane, starting from an offset of its own instance so that instances rarely share one. A reader reads
/// the lanes' rows in one range query and then only the lanes that moved.
/// </para>
/// <para>
/// Clocks only decide when entries are deleted: each entry carries its writer's time, and entries older than
/// <see cref="Retention"/> are deleted by writers of their lane, a page at a time until none is left (bounded per run),
/// whenever a write's number is a multiple of <see cref="TrimStride"/> (so trimming keeps pace with writes, whichever
/// instance makes them) and at least every <see cref="TrimEvery"/> per instance. A wrong clock makes an entry live too
/// long or too short; the latter costs a lagging reader a reload, never a missed write.
/// </para>
/// </summary>
public static class ChangeLog
{
    /// <summary>Entries are <c>~changelog:{lane}:{number}</c>.</summary>
    public const string KeyPrefix = "~changelog:";
    private const string KeyEnd = "~changelog;";

    /// <summary>Lane rows are <c>~changelog-{lane}</c>: outside the entries' key range, and one range of their own.</summary>
    private const string SequencePrefix = "~changelog-";
    private const string SequenceEnd = "~changelog.";

    /// <summary>Writers of one tenant's table that can commit at once (per instance; instances share the lanes).</summary>
    public const int Lanes = 16;

    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);
    public static readonly TimeSpan TrimEvery = TimeSpan.FromMinutes(10);

    /// <summary>The write whose number is a multiple of this also trims its lane: deletes keep pace with inserts.</summary>
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

    public static string SequenceKey(int lane) => SequencePrefix + lane.ToString("D2", CultureInfo.InvariantCulture);

    public static string LanePrefix(int lane) => KeyPrefix + lane.ToString("D2", CultureInfo.InvariantCulture) + ":";

    public static string KeyFor(int lane, long sequence) => LanePrefix(lane) + sequence.ToString("D19", CultureInfo.InvariantCulture);

    /// <summary>Each lane's last number (0 before its first entry): everything up to them is committed. One range query.</summary>
    public static async Task<LogPosition> PositionAsync(TenantPartition partition, CancellationToken cancellationToken)
    {
        var numbers = new long[Lanes];
        await foreach (var row in partition.QueryWhereAsync<SequenceEntity>($"RowKey ge {SequencePrefix} and RowKey lt {SequenceEnd}", cancellationToken: cancellationToken))
        {
            if (row.Lane is >= 0 and < Lanes)
            {
                numbers[row.Lane] = row.Sequence;
            }
        }

        return new LogPosition(numbers);
    }

    /// <summary>The entries of one lane numbered after <paramref name="after"/>, in order: a row-key range, not a scan.</summary>
    public static AsyncPageable<ChangeEntity> ReadAfterAsync(TenantPartition partition, int lane, long after, CancellationToken cancellationToken) =>
        partition.QueryWhereAsync<ChangeEntity>($"RowKey gt {KeyFor(lane, after)} and RowKey lt {KeyFor(lane, long.MaxValue)}", maxPerPage: 1000, cancellationToken);

    /// <summary>Every entry still kept, lane by lane.</summary>
    public static AsyncPageable<ChangeEntity> ReadAllAsync(TenantPartition partition, CancellationToken cancellationToken) =>
        partition.QueryWhereAsync<ChangeEntity>($"RowKey gt {KeyPrefix} and RowKey lt {KeyEnd}", maxPerPage: 1000, cancellationToken);

    /// <summary>
    /// What changed after <paramref name="after"/>: the rows named, and the position to read after next time. Null
    /// when entries after it were already trimmed (a hole) or more than <paramref name="maxKeys"/> rows changed: the
    /// reader must reload.
    /// </summary>
    public static async Task<(HashSet<string> Keys, LogPosition Last)?> Read(
        TenantPartition partition, LogPosition after, string keyPrefix, int maxKeys, CancellationToken cancellationToken)
    {
        var now = await PositionAsync(partition, cancellationToken);

        // A lane behind the reader was reset (its row deleted and started again): what the reader holds is not on record.
        if (Enumerable.Range(0, Lanes).Any(lane => now[lane] < after[lane]))
        {
            return null;
        }

        var moved = Enumerable.Range(0, Lanes).Where(lane => now[lane] > after[lane]).ToList();
        var last = after.ToArray();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var complete = true;
        var partitionCopy = partition;
        await Parallel.ForEachAsync(moved, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken }, async (lane, ct) =>
        {
            var seen = after[lane];
            var found = new List<string>();
            await foreach (var entry in ReadAfterAsync(partitionCopy, lane, after[lane], ct))
            {
                if (entry.Sequence != seen + 1)
                {
                    Volatile.Write(ref complete, false);
                    return;
                }

                seen = entry.Sequence;
                found.AddRange(entry.ChangedKeys().Where(key => key.StartsWith(keyPrefix, StringComparison.Ordinal)));
                if (found.Count > maxKeys)
                {
                    Volatile.Write(ref complete, false);
                    return;
                }
            }

            // The lane's row was ahead of its entries when this read began: those entries were trimmed.
            if (seen < now[lane])
            {
                Volatile.Write(ref complete, false);
                return;
            }

            lock (keys)
            {
                last[lane] = seen;
                keys.UnionWith(found);
            }
        });

        return complete && keys.Count <= maxKeys ? (keys, new LogPosition(last)) : null;
    }

    /// <summary>A lane's row.</summary>
    public sealed class SequenceEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public long Sequence { get; set; }

        public int Lane => RowKey.StartsWith(SequencePrefix, StringComparison.Ordinal) && int.TryParse(RowKey.AsSpan(SequencePrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var lane)
            ? lane : -1;
    }
}

/// <summary>How far a reader has read the log: the last number seen in each lane.</summary>
public sealed class LogPosition
{
    private readonly long[] _numbers;

    public LogPosition(long[] numbers)
    {
        if (numbers.Length != ChangeLog.Lanes)
        {
            throw new ArgumentException($"A position has one number per lane ({ChangeLog.Lanes}).", nameof(numbers));
        }

        _numbers = numbers;
    }

    public static LogPosition Start { get; } = new(new long[ChangeLog.Lanes]);

    public long this[int lane] => _numbers[lane];

    /// <summary>Entries written up to this position, over all lanes.</summary>
    public long Total => _numbers.Sum();

    public long[] ToArray() => (long[])_numbers.Clone();
}

/// <summary>
/// One app instance's side of the change log: per tenant partition of a logged table, per lane, the last sequence row
/// it saw (number and ETag) and the gate its writers take turns at, so they do not race each other for the next number.
/// </summary>
public sealed class ChangeLogWriter(TimeProvider time, EntityGroupTransactions transactions)
{
    private const int MaxPartitions = 10_000;

    /// <summary>Attempts at a number before a write gives up (only under sustained contention from other instances).</summary>
    private const int MaxAttempts = 20;

    private readonly ConcurrentDictionary<string, Slot[]> _partitions = new(StringComparer.Ordinal);

    /// <summary>Where this instance's writers start looking for a free lane: instances spread over the lanes.</summary>
    private readonly int _firstLane = Random.Shared.Next(ChangeLog.Lanes);
    private int _nextBusyLane;

    /// <summary>
    /// Submits <paramref name="actions"/> with their entry and their lane row's move as the last two actions (the
    /// callers' responses and failed-action indexes keep their order), renumbering while the row moved under it.
    /// </summary>
    internal async Task<Response<IReadOnlyList<Response>>> SubmitAsync(
        TableClient table, string partitionKey, IReadOnlyCollection<TableTransactionAction> actions, string keys, CancellationToken cancellationToken)
    {
        if (_partitions.Count > MaxPartitions)
        {
            // Only the remembered ETags and gates go: a writer holding an old slot still conditions on the row.
            _partitions.Clear();
        }

        var lanes = _partitions.GetOrAdd(table.Name + "\n" + partitionKey, _ => [.. Enumerable.Range(0, ChangeLog.Lanes).Select(lane => new Slot(lane))]);
        var slot = await TakeLaneAsync(lanes, cancellationToken);
        Response<IReadOnlyList<Response>> response;
        long sequence;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                if (!slot.Known)
                {
                    var row = await table.GetEntityIfExistsAsync<ChangeLog.SequenceEntity>(partitionKey, ChangeLog.SequenceKey(slot.Lane), cancellationToken: cancellationToken);
                    (slot.Sequence, slot.ETag, slot.Known) = row.HasValue ? (row.Value!.Sequence, row.Value.ETag, true) : (0, default, true);
                }

                sequence = slot.Sequence + 1;
                var counter = new ChangeLog.SequenceEntity { PartitionKey = partitionKey, RowKey = ChangeLog.SequenceKey(slot.Lane), Sequence = sequence };
                var entry = new ChangeEntity { PartitionKey = partitionKey, RowKey = ChangeLog.KeyFor(slot.Lane, sequence), Keys = keys, At = time.GetUtcNow() };
                TableTransactionAction move = slot.ETag == default
                    ? new(TableTransactionActionType.Add, counter)
                    : new(TableTransactionActionType.UpdateReplace, counter, slot.ETag);
                try
                {
                    response = await transactions.SubmitAsync(table, [.. actions, move, new(TableTransactionActionType.Add, entry)], cancellationToken);
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
    /// The first free lane from this instance's own start, so one writer at a time keeps to one lane; when all are
    /// busy, the turn at one of them, taken round-robin so waiting writers spread over the lanes.
    /// </summary>
    private async Task<Slot> TakeLaneAsync(Slot[] lanes, CancellationToken cancellationToken)
    {
        for (var i = 0; i < lanes.Length; i++)
        {
            var slot = lanes[(_firstLane + i) % lanes.Length];
            if (slot.Gate.Wait(0, CancellationToken.None))
            {
                return slot;
            }
        }

        var busy = lanes[(int)((uint)Interlocked.Increment(ref _nextBusyLane) % (uint)lanes.Length)];
        await busy.Gate.WaitAsync(cancellationToken);
        return busy;
    }

    /// <summary>
    /// Deletes the lane's entries older than <see cref="ChangeLog.Retention"/> below <paramref name="written"/> (so the
    /// newest entry stays and a reader always sees a hole), oldest first, a page per transaction until none is left or
    /// <see cref="ChangeLog.MaxTrimPages"/> pages are done. Due on every <see cref="ChangeLog.TrimStride"/>-th number and
    /// when this instance has not trimmed the lane for <see cref="ChangeLog.TrimEvery"/>.
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
                TableClient.CreateQueryFilter($"PartitionKey eq {partitionKey} and RowKey ge {ChangeLog.LanePrefix(slot.Lane)} and RowKey lt {ChangeLog.KeyFor(slot.Lane, written)}"),
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
                await transactions.SubmitAsync(
                    table, [.. expired.Select(key => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(partitionKey, key), ETag.All))],
                    cancellationToken);
            }
            catch (TableTransactionFailedException)
            {
                // Another instance trimmed the same entries first; whatever is left goes next time.
                return;
            }
        }
    }

    private sealed class Slot(int lane)
    {
        public int Lane { get; } = lane;
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

    /// <summary>The entry's number in its lane; -1 for a key of another shape.</summary>
    public long Sequence =>
        RowKey.StartsWith(ChangeLog.KeyPrefix, StringComparison.Ordinal) && RowKey.Length == ChangeLog.KeyPrefix.Length + 3 + 19
        && long.TryParse(RowKey.AsSpan(ChangeLog.KeyPrefix.Length + 3), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence)
            ? sequence : -1;

    public int Lane =>
        RowKey.StartsWith(ChangeLog.KeyPrefix, StringComparison.Ordinal) && RowKey.Length == ChangeLog.KeyPrefix.Length + 3 + 19
        && int.TryParse(RowKey.AsSpan(ChangeLog.KeyPrefix.Length, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var lane)
            ? lane : -1;

    public string[] ChangedKeys() => Keys.Split('\n', StringSplitOptions.RemoveEmptyEntries);
}
