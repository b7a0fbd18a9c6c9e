using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// A table whose partitions are tenants. Every operation goes through <see cref="For"/>, which pins the
/// partition key to one tenant, so no code path can read or write another tenant's rows by mistake.
/// ETags, batches and row-key ranges stay visible: this is the SDK with the tenant made mandatory, not a
/// repository.
/// </summary>
public sealed class TenantTable(TableClient table)
{
    public string Name => table.Name;

    public TenantPartition For(TenantId tenant) => new(table, tenant.Value);
}

public readonly struct TenantPartition
{
    private readonly TableClient _table;
    private readonly string _partitionKey;

    internal TenantPartition(TableClient table, string partitionKey)
    {
        _table = table;
        _partitionKey = partitionKey;
    }

    public async Task<T?> GetAsync<T>(string rowKey, CancellationToken cancellationToken = default)
        where T : class, ITableEntity
    {
        var response = await _table.GetEntityIfExistsAsync<T>(_partitionKey, rowKey, cancellationToken: cancellationToken);
        return response.HasValue ? response.Value : null;
    }

    /// <summary>Inserts; a row with the same key is a <see cref="RequestFailedException"/> with status 409.</summary>
    /// <remarks>Writes leave the entity holding its new ETag, ready for the next conditional update.</remarks>
    public async Task AddAsync(ITableEntity entity, CancellationToken cancellationToken = default) =>
        entity.ETag = (await _table.AddEntityAsync(Pin(entity), cancellationToken)).Headers.ETag ?? default;

    public async Task UpsertAsync(ITableEntity entity, CancellationToken cancellationToken = default) =>
        entity.ETag = (await _table.UpsertEntityAsync(Pin(entity), TableUpdateMode.Replace, cancellationToken)).Headers.ETag ?? default;

    /// <summary>Replaces the row only if it still has <paramref name="ifMatch"/>; otherwise status 412.</summary>
    public async Task UpdateAsync(ITableEntity entity, ETag ifMatch, CancellationToken cancellationToken = default) =>
        entity.ETag = (await _table.UpdateEntityAsync(Pin(entity), ifMatch, TableUpdateMode.Replace, cancellationToken)).Headers.ETag ?? default;

    public Task<Response> DeleteAsync(string rowKey, ETag ifMatch = default, CancellationToken cancellationToken = default) =>
        _table.DeleteEntityAsync(_partitionKey, rowKey, ifMatch == default ? ETag.All : ifMatch, cancellationToken);

    /// <summary>Rows of this tenant whose row key starts with <paramref name="rowKeyPrefix"/> (all rows when empty).</summary>
    public AsyncPageable<T> QueryAsync<T>(string rowKeyPrefix = "", int? maxPerPage = null, CancellationToken cancellationToken = default)
        where T : class, ITableEntity, new()
    {
        var filter = rowKeyPrefix.Length == 0
            ? TableClient.CreateQueryFilter($"PartitionKey eq {_partitionKey}")
            : TableClient.CreateQueryFilter(
                $"PartitionKey eq {_partitionKey} and RowKey ge {rowKeyPrefix} and RowKey lt {rowKeyPrefix + char.MaxValue}");
        return _table.QueryAsync<T>(filter, maxPerPage, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Rows of this tenant matching a further condition on their properties. The condition is a
    /// <see cref="FormattableString"/> whose arguments are escaped by the SDK, so user text never becomes OData.
    /// </summary>
    public AsyncPageable<T> QueryWhereAsync<T>(FormattableString condition, int? maxPerPage = null, CancellationToken cancellationToken = default)
        where T : class, ITableEntity, new() =>
        _table.QueryAsync<T>($"PartitionKey eq '{_partitionKey}' and ({TableClient.CreateQueryFilter(condition)})", maxPerPage, cancellationToken: cancellationToken);

    /// <summary>
    /// One entity-group transaction (at most 100 actions, all in this tenant's partition): all succeed or none.
    /// </summary>
    public Task<Response<IReadOnlyList<Response>>> SubmitTransactionAsync(
        IReadOnlyCollection<TableTransactionAction> actions, CancellationToken cancellationToken = default)
    {
        foreach (var action in actions)
        {
            Pin(action.Entity);
        }

        return _table.SubmitTransactionAsync(actions, cancellationToken);
    }

    private T Pin<T>(T entity) where T : ITableEntity
    {
        if (entity.PartitionKey is { Length: > 0 } given && given != _partitionKey)
        {
            throw new InvalidOperationException("An entity of another tenant was handed to this tenant's partition.");
        }

        entity.PartitionKey = _partitionKey;
        return entity;
    }
}
