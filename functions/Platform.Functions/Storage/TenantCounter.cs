using System.Collections.Concurrent;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// How many rows of one kind a tenant holds (users, items ...), kept in a row of the tenant's partition and moved in
/// the <b>same entity-group transaction</b> as the rows it counts, conditioned on the ETag it had when it was read.
/// So a cap checked against it holds under any concurrency, across instances: of two creates that both read
/// "one slot left", the second finds the row moved and reads again. It costs one more action per counted write and
/// no read while this instance wrote the row last: the count and ETag of its own last write are remembered, and a
/// write conditioned on them fails if anyone moved the row since (then it reads and plans again). A cap refused on
/// a remembered count is read again before it is final, so another instance's deletes are never missed. It adds no
/// contention, since logged writes to a tenant's table are serialized anyway (<see cref="ChangeLog"/>).
/// <para>
/// A tenant that predates the counter has no row: the first counted write counts the rows (a scan, once) and adds
/// it. That is correct too: every counted write touches the row - adds it if absent - so a write that commits after
/// the scan makes the later add fail, and the count is taken again.
/// </para>
/// </summary>
public sealed class TenantCounter(Func<TenantId, TenantPartition> partitionOf, string rowKey, Func<TenantPartition, CancellationToken, Task<long>> countRows)
{
    private const int MaxGates = 10_000;

    /// <summary>Attempts before a write gives up (only under sustained contention from other instances).</summary>
    private const int MaxAttempts = 20;

    // Writers on this instance take turns per tenant, so they do not make each other's conditional update fail.
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);

    // The counter row as this instance's last write left it, per tenant: what the next write conditions on.
    private readonly ConcurrentDictionary<string, (long Count, ETag ETag)> _known = new(StringComparer.Ordinal);

    /// <summary>The rows a write makes and by how much it moves the count.</summary>
    public sealed record Change(IReadOnlyList<TableTransactionAction> Actions, long Delta);

    /// <summary>
    /// Asks <paramref name="plan"/> for the write given the current count, and submits it with the counter's move as
    /// its last action; when the counter moved meanwhile, reads it and asks again. Null when the plan wrote nothing
    /// (a cap reached). A failure of the plan's own actions is thrown as it is, with their indexes.
    /// </summary>
    public async Task<Response<IReadOnlyList<Response>>?> SubmitAsync(TenantId tenant, Func<long, Change?> plan, CancellationToken cancellationToken)
    {
        if (_gates.Count > MaxGates)
        {
            // Only the turn-taking and remembered rows go: a writer holding an old gate still conditions on the row.
            _gates.Clear();
            _known.Clear();
        }

        var partition = partitionOf(tenant);
        var gate = _gates.GetOrAdd(tenant.Value, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                long count;
                ETag etag;
                var remembered = _known.TryGetValue(tenant.Value, out var known);
                if (remembered)
                {
                    (count, etag) = known;
                }
                else
                {
                    var row = await partition.GetAsync<CounterEntity>(rowKey, cancellationToken);
                    (count, etag) = row is null ? (await countRows(partition, cancellationToken), default) : (row.Count, row.ETag);
                }

                if (plan(count) is not { } change)
                {
                    if (remembered)
                    {
                        // Refused on what this instance remembers: another instance may have freed slots since.
                        _known.TryRemove(tenant.Value, out _);
                        continue;
                    }

                    return null;
                }

                var moved = new CounterEntity { RowKey = rowKey, Count = Math.Max(0, count + change.Delta) };
                TableTransactionAction move = etag == default
                    ? new(TableTransactionActionType.Add, moved)
                    : new(TableTransactionActionType.UpdateReplace, moved, etag);
                try
                {
                    var response = await partition.SubmitTransactionAsync([.. change.Actions, move], cancellationToken);
                    if (response.Value[change.Actions.Count].Headers.ETag is { } written)
                    {
                        _known[tenant.Value] = (moved.Count, written);
                    }
                    else
                    {
                        _known.TryRemove(tenant.Value, out _);
                    }

                    return response;
                }
                catch (TableTransactionFailedException ex) when (ex.FailedTransactionActionIndex == change.Actions.Count && attempt < MaxAttempts)
                {
                    // Another instance moved (or added) the counter first: count again.
                    _known.TryRemove(tenant.Value, out _);
                }
                catch (RequestFailedException)
                {
                    // Whatever failed, the counter is read afresh next time rather than trusted.
                    _known.TryRemove(tenant.Value, out _);
                    throw;
                }
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// The count as it stands (the rows are counted when the tenant has no counter row yet). Only for a caller that
    /// writes nothing, such as a dry run: a write decides against the count it is conditioned on.
    /// </summary>
    public async Task<long> ReadAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var partition = partitionOf(tenant);
        return (await partition.GetAsync<CounterEntity>(rowKey, cancellationToken))?.Count ?? await countRows(partition, cancellationToken);
    }

    private sealed class CounterEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public long Count { get; set; }
    }
}
