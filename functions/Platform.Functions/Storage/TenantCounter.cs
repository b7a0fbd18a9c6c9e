using System.Collections.Concurrent;
using System.Globalization;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// How many rows of one kind a tenant holds (users, items ...) against a cap, kept in rows of the tenant's partition
/// and moved in the <b>same entity-group transaction</b> as the rows they count, conditioned on their ETags. So a cap
/// holds under any concurrency, across instances.
/// <para>
/// The count is split over <see cref="Shards"/> rows so that counted writes commit in parallel (one row serialized
/// every create of a tenant: a bulk import ran one transaction at a time). Each shard row holds the rows it counted
/// and a <b>quota</b>, its share of the cap; the quotas sum to the cap. A write takes a free shard and may add rows up
/// to its quota - a check on that one row, exact because the write is conditioned on it. A shard that runs dry
/// rebalances: it reads every shard and rewrites all of them in one transaction conditioned on all their ETags,
/// sharing out what is free (cap minus the total); so quotas never sum to more than the cap, and a cap is reached
/// only when the tenant's total is at it. The same rewrite applies a changed cap. Deletes count down on any shard.
/// </para>
/// <para>
/// Each instance remembers every shard row as its own last write left it, so a write costs no read; a refusal on a
/// remembered row is read again before it stands. A tenant without shard rows (new, or from before them) is counted
/// once (the old single row's count when there is one, else a scan) and its rows are added together, conditioned on
/// not existing; every counted write touches a shard row, so a write that commits after the count makes the add fail.
/// </para>
/// </summary>
/// <param name="cap">The cap now (configuration): quotas follow it at the next rebalance.</param>
public sealed class TenantCounter(Func<TenantId, TenantPartition> partitionOf, string rowKey, Func<TenantPartition, CancellationToken, Task<long>> countRows, Func<long> cap)
{
    public const int Shards = 8;

    private const int MaxTenants = 10_000;

    /// <summary>Attempts before a write gives up (only under sustained contention from other instances).</summary>
    private const int MaxAttempts = 20;

    private readonly ConcurrentDictionary<string, TenantShards> _tenants = new(StringComparer.Ordinal);

    /// <summary>Where this instance's writers start looking for a free shard: instances spread over the shards.</summary>
    private readonly int _firstShard = Random.Shared.Next(Shards);
    private int _nextBusyShard;

    /// <summary>The rows a write makes and by how much it moves the count.</summary>
    public sealed record Change(IReadOnlyList<TableTransactionAction> Actions, long Delta);

    private string ShardKey(int shard) => $"{rowKey}:{shard}";

    /// <summary>
    /// Asks <paramref name="plan"/> for the write, given the count as far as the cap is concerned (the cap less the room
    /// this write may use), and submits it with its shard row's move as the last action; when the row moved meanwhile,
    /// reads it and asks again. Null when the plan wrote nothing (the cap reached). A failure of the plan's own actions
    /// is thrown as it is, with their indexes.
    /// </summary>
    public async Task<Response<IReadOnlyList<Response>>?> SubmitAsync(TenantId tenant, Func<long, Change?> plan, CancellationToken cancellationToken)
    {
        if (_tenants.Count > MaxTenants)
        {
            // Only remembered rows and gates go: a writer holding an old gate still conditions on its row.
            _tenants.Clear();
        }

        var partition = partitionOf(tenant);
        var shards = _tenants.GetOrAdd(tenant.Value, _ => new TenantShards());
        var shard = await TakeShardAsync(shards.All, cancellationToken);
        try
        {
            var rebalanced = 0;
            for (var attempt = 1; ; attempt++)
            {
                if (!shard.Known)
                {
                    await ReadAsync(partition, shards.All, cancellationToken);
                }

                var limit = cap();
                var room = shard.Cap == limit ? shard.Quota - shard.Count : 0;
                if (plan(limit - Math.Max(0, room)) is not { } change)
                {
                    // Dry on this shard (or the cap changed): share out what is free and ask again. The shard's turn is
                    // given up meanwhile: the rebalance takes every shard's, in order.
                    if (rebalanced++ < 3)
                    {
                        var index = shard.Index;
                        shard.Gate.Release();
                        shard = null;
                        var granted = await RebalanceAsync(partition, shards, index, limit, cancellationToken);
                        shard = await TakeShardAsync(shards.All, cancellationToken);
                        if (granted)
                        {
                            continue;
                        }
                    }

                    return null;
                }

                var moved = new CounterEntity { RowKey = ShardKey(shard.Index), Count = shard.Count + change.Delta, Quota = shard.Quota, Cap = shard.Cap };
                try
                {
                    var response = await partition.SubmitTransactionAsync([.. change.Actions, new(TableTransactionActionType.UpdateReplace, moved, shard.ETag)], cancellationToken);
                    shard.Remember(moved, response.Value[change.Actions.Count].Headers.ETag);
                    return response;
                }
                catch (TableTransactionFailedException ex) when (ex.FailedTransactionActionIndex == change.Actions.Count && attempt < MaxAttempts)
                {
                    // Another instance moved the shard first: read it again.
                    shard.Known = false;
                }
                catch (RequestFailedException)
                {
                    shard.Known = false;
                    throw;
                }
            }
        }
        finally
        {
            shard?.Gate.Release();
        }
    }

    /// <summary>
    /// The count as it stands (the rows are counted when the tenant has no shard rows yet). Only for a caller that
    /// writes nothing, such as a dry run: a write decides against the rows it is conditioned on.
    /// </summary>
    public async Task<long> ReadAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var partition = partitionOf(tenant);
        var rows = await ShardRowsAsync(partition, cancellationToken);
        return rows.Count > 0
            ? rows.Sum(r => r.Count)
            : (await partition.GetAsync<CounterEntity>(rowKey, cancellationToken))?.Count ?? await countRows(partition, cancellationToken);
    }

    private async Task<List<CounterEntity>> ShardRowsAsync(TenantPartition partition, CancellationToken cancellationToken) =>
        await partition.QueryAsync<CounterEntity>(rowKey + ":", cancellationToken: cancellationToken).ToListAsync(cancellationToken);

    /// <summary>Reads every shard row into what this instance knows, adding them first when the tenant has none.</summary>
    private async Task ReadAsync(TenantPartition partition, Shard[] shards, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var rows = await ShardRowsAsync(partition, cancellationToken);
            if (rows.Count == Shards)
            {
                foreach (var row in rows)
                {
                    if (int.TryParse(row.RowKey.AsSpan(rowKey.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index is >= 0 and < Shards)
                    {
                        shards[index].Remember(row, row.ETag);
                    }
                }

                return;
            }

            // No shard rows yet: the count so far (the old single row's, else a scan) goes to shard 0, the cap is
            // shared out evenly on top of it.
            var existing = (await partition.GetAsync<CounterEntity>(rowKey, cancellationToken))?.Count ?? await countRows(partition, cancellationToken);
            var limit = cap();
            var quotas = Share(Math.Max(0, limit - existing), Shards);
            var added = Enumerable.Range(0, Shards)
                .Select(i => new CounterEntity { RowKey = ShardKey(i), Count = i == 0 ? existing : 0, Quota = quotas[i] + (i == 0 ? existing : 0), Cap = limit })
                .ToList();
            try
            {
                await partition.SubmitTransactionAsync([.. added.Select(r => new TableTransactionAction(TableTransactionActionType.Add, r))], cancellationToken);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 409 && attempt < MaxAttempts)
            {
                // Another writer added them first: read theirs.
            }
        }
    }

    /// <summary>
    /// Rewrites every shard with what is free shared out again (half to the shard that ran dry, the rest evenly), in one
    /// transaction conditioned on all of them. False when nothing is free (the cap is reached). Holds the tenant's
    /// rebalance turn and then every shard's turn on this instance, taken in order (writers hold one turn at most and
    /// never wait for another while holding it), so this instance's own writes do not make the rewrite fail.
    /// </summary>
    private async Task<bool> RebalanceAsync(TenantPartition partition, TenantShards shards, int dry, long limit, CancellationToken cancellationToken)
    {
        await shards.Rebalancing.WaitAsync(cancellationToken);
        var held = new List<Shard>();
        try
        {
            foreach (var shard in shards.All)
            {
                await shard.Gate.WaitAsync(cancellationToken);
                held.Add(shard);
            }

            for (var attempt = 1; attempt <= MaxAttempts; attempt++)
            {
                await ReadAsync(partition, shards.All, cancellationToken);
                var free = limit - shards.All.Sum(s => s.Count);
                if (free <= 0)
                {
                    return false;
                }

                var shares = Share(free - (free + 1) / 2, Shards);
                shares[dry] += (free + 1) / 2;
                var rewritten = shards.All.Select(s => new CounterEntity { RowKey = ShardKey(s.Index), Count = s.Count, Quota = s.Count + shares[s.Index], Cap = limit }).ToList();
                try
                {
                    var response = await partition.SubmitTransactionAsync(
                        [.. Enumerable.Range(0, Shards).Select(i => new TableTransactionAction(TableTransactionActionType.UpdateReplace, rewritten[i], shards.All[i].ETag))], cancellationToken);
                    for (var i = 0; i < Shards; i++)
                    {
                        shards.All[i].Remember(rewritten[i], response.Value[i].Headers.ETag);
                    }

                    return true;
                }
                catch (TableTransactionFailedException ex) when (ex.Status == 412)
                {
                    // A shard moved on another instance: read all again.
                }
            }

            throw new InvalidOperationException("The tenant's count shards kept changing while they were being rebalanced.");
        }
        finally
        {
            foreach (var shard in held)
            {
                shard.Gate.Release();
            }

            shards.Rebalancing.Release();
        }
    }

    /// <summary><paramref name="total"/> split into <paramref name="parts"/> shares that differ by at most one.</summary>
    private static long[] Share(long total, int parts) =>
        [.. Enumerable.Range(0, parts).Select(i => total / parts + (i < total % parts ? 1 : 0))];

    /// <summary>
    /// The first free shard from this instance's own start, so one writer at a time keeps to one shard; when all are
    /// busy, the turn at one of them, taken round-robin.
    /// </summary>
    private async Task<Shard> TakeShardAsync(Shard[] shards, CancellationToken cancellationToken)
    {
        for (var i = 0; i < shards.Length; i++)
        {
            var shard = shards[(_firstShard + i) % shards.Length];
            if (shard.Gate.Wait(0, CancellationToken.None))
            {
                return shard;
            }
        }

        var busy = shards[(int)((uint)Interlocked.Increment(ref _nextBusyShard) % (uint)shards.Length)];
        await busy.Gate.WaitAsync(cancellationToken);
        return busy;
    }

    /// <summary>One tenant's shards as this instance knows them, and its turn at rebalancing them.</summary>
    private sealed class TenantShards
    {
        public Shard[] All { get; } = [.. Enumerable.Range(0, TenantCounter.Shards).Select(i => new Shard(i))];
        public SemaphoreSlim Rebalancing { get; } = new(1, 1);
    }

    private sealed class Shard(int index)
    {
        public int Index { get; } = index;
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public bool Known { get; set; }
        public long Count { get; private set; }
        public long Quota { get; private set; }
        public long Cap { get; private set; }
        public ETag ETag { get; private set; }

        public void Remember(CounterEntity row, ETag? etag)
        {
            (Count, Quota, Cap) = (row.Count, row.Quota, row.Cap);
            ETag = etag ?? default;
            Known = etag is not null;
        }
    }

    private sealed class CounterEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public long Count { get; set; }
        public long Quota { get; set; }
        public long Cap { get; set; }
    }
}
