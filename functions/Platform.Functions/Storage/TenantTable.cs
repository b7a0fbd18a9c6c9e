using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// A table whose partitions are tenants. Every operation goes through <see cref="For"/>, which pins the
/// partition key to one tenant, so no code path can read or write another tenant's rows by mistake.
/// ETags, batches and row-key ranges stay visible: this is the SDK with the tenant made mandatory, not a
/// repository. A table may log changes to some of its rows (<see cref="ChangeLog"/>): writes to those rows then
/// carry their log entry in the same transaction.
/// </summary>
public sealed class TenantTable(string name, TableClient table, IReadOnlyList<string> loggedPrefixes, ChangeLogWriter changeLog, EntityGroupTransactions transactions)
{
    /// <summary>The table's name in storage (with the deployment's prefix).</summary>
    public string Name => table.Name;

    public TenantPartition For(TenantId tenant) => new(name, table, tenant.Value, loggedPrefixes, changeLog, transactions);
}

public readonly struct TenantPartition
{
    private readonly string _name;
    private readonly TableClient _table;
    private readonly string _partitionKey;
    private readonly IReadOnlyList<string> _loggedPrefixes;
    private readonly ChangeLogWriter _changeLog;
    private readonly EntityGroupTransactions _transactions;

    internal TenantPartition(string name, TableClient table, string partitionKey, IReadOnlyList<string> loggedPrefixes, ChangeLogWriter changeLog, EntityGroupTransactions transactions)
    {
        _transactions = transactions;
        _name = name;
        _table = table;
        _partitionKey = partitionKey;
        _loggedPrefixes = loggedPrefixes;
        _changeLog = changeLog;
    }

    /// <summary>The table's logical name (as registered, without the deployment's prefix).</summary>
    public string Table => _name;

    public TenantId Tenant => new(_partitionKey);

    public async Task<T?> GetAsync<T>(string rowKey, CancellationToken cancellationToken = default)
        where T : class, ITableEntity
    {
        var response = await _table.GetEntityIfExistsAsync<T>(_partitionKey, rowKey, cancellationToken: cancellationToken);
        return response.HasValue ? response.Value : null;
    }

    /// <summary>Inserts; a row with the same key is a <see cref="RequestFailedException"/> with status 409.</summary>
    /// <remarks>Writes leave the entity holding its new ETag, ready for the next conditional update.</remarks>
    public async Task AddAsync(ITableEntity entity, CancellationToken cancellationToken = default) =>
        entity.ETag = IsLogged(entity)
            ? await WriteLoggedAsync(new(TableTransactionActionType.Add, entity), cancellationToken)
            : (await _table.AddEntityAsync(Pin(entity), cancellationToken)).Headers.ETag ?? default;

    public async Task UpsertAsync(ITableEntity entity, CancellationToken cancellationToken = default) =>
        entity.ETag = IsLogged(entity)
            ? await WriteLoggedAsync(new(TableTransactionActionType.UpsertReplace, entity), cancellationToken)
            : (await _table.UpsertEntityAsync(Pin(entity), TableUpdateMode.Replace, cancellationToken)).Headers.ETag ?? default;

    /// <summary>Replaces the row only if it still has <paramref name="ifMatch"/>; otherwise status 412.</summary>
    public async Task UpdateAsync(ITableEntity entity, ETag ifMatch, CancellationToken cancellationToken = default) =>
        entity.ETag = IsLogged(entity)
            ? await WriteLoggedAsync(new(TableTransactionActionType.UpdateReplace, entity, ifMatch), cancellationToken)
            : (await _table.UpdateEntityAsync(Pin(entity), ifMatch, TableUpdateMode.Replace, cancellationToken)).Headers.ETag ?? default;

    public async Task DeleteAsync(string rowKey, ETag ifMatch = default, CancellationToken cancellationToken = default)
    {
        var etag = ifMatch == default ? ETag.All : ifMatch;
        if (ChangeLog.IsLogged(rowKey, _loggedPrefixes))
        {
            await WriteLoggedAsync(new(TableTransactionActionType.Delete, new TableEntity(_partitionKey, rowKey), etag), cancellationToken);
        }
        else
        {
            await _table.DeleteEntityAsync(_partitionKey, rowKey, etag, cancellationToken);
        }
    }

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
        QueryWhereAsync<T>(condition, maxPerPage, select: null, cancellationToken);

    /// <param name="select">Only these properties (the keys and ETag always come).</param>
    public AsyncPageable<T> QueryWhereAsync<T>(FormattableString condition, int? maxPerPage, IEnumerable<string>? select, CancellationToken cancellationToken)
        where T : class, ITableEntity, new() =>
        _table.QueryAsync<T>($"PartitionKey eq '{_partitionKey}' and ({TableClient.CreateQueryFilter(condition)})", maxPerPage, select, cancellationToken);

    /// <summary>
    /// One entity-group transaction (all in this tenant's partition): all succeed or none. At most 100 actions, two
    /// fewer when it writes a logged row (its change-log entry and the move of the log's sequence row are the last two
    /// actions; responses and failed-action indexes keep the callers' order).
    /// </summary>
    public async Task<Response<IReadOnlyList<Response>>> SubmitTransactionAsync(
        IReadOnlyCollection<TableTransactionAction> actions, CancellationToken cancellationToken = default)
    {
        foreach (var action in actions)
        {
            Pin(action.Entity);
        }

        if (ChangeLog.KeysOf(actions, _loggedPrefixes) is not { } keys)
        {
            return await _transactions.SubmitAsync(_table, actions, cancellationToken);
        }

        if (actions.Count > 98)
        {
            throw new InvalidOperationException("A transaction that writes logged rows holds at most 98 actions: its change-log entry and sequence row take the last two.");
        }

        return await _changeLog.SubmitAsync(_table, _partitionKey, actions, keys, cancellationToken);
    }

    private bool IsLogged(ITableEntity entity) => ChangeLog.IsLogged(entity.RowKey, _loggedPrefixes);

    /// <summary>One write of a logged row, as a transaction with its entry; a failure keeps the status a single write would have.</summary>
    private async Task<ETag> WriteLoggedAsync(TableTransactionAction action, CancellationToken cancellationToken)
    {
        var responses = await SubmitTransactionAsync([action], cancellationToken);
        return responses.Value[0].Headers.ETag ?? default;
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
