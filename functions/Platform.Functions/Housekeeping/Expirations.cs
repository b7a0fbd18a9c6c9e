using System.Globalization;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Housekeeping;

/// <summary>
/// Time-to-live for table rows, which Table storage lacks. A capability that writes a row meant to disappear
/// (a finished job, a spent token, an idempotency record) schedules its deletion here; the
/// <see cref="StorageHousekeeping"/> timer deletes what is due. The index is partitioned by the UTC hour of expiry,
/// so finding due rows is a range over a few partitions, never a scan of the data tables.
/// </summary>
/// <remarks>
/// A row whose end moves after it was scheduled (a session kept alive by refreshes, a lockout that locks again, an
/// alert that is closed later than planned) has an <see cref="IRowExpiry"/> registered for its table: when its entry
/// is due, the row is read and its owner says when it is really due. A row not yet due is scheduled again for then,
/// and a due one is deleted under the ETag it was judged by, so a write racing the deletion keeps the row. The owner
/// schedules such a row once (at its creation, or when it starts to expire), never on every write.
/// </remarks>
public sealed class Expirations(StorageAccount storage, TimeProvider time, IEnumerable<IRowExpiry> rowExpiries)
{
    public const string TableName = "expirations";

    private readonly Dictionary<string, IRowExpiry> _expiries = rowExpiries.ToDictionary(e => e.Table, StringComparer.Ordinal);

    private TableClient Index => storage.Table(TableName);

    /// <summary>Schedules the deletion of one tenant row. Write this before the row becomes deletable.</summary>
    /// <param name="tag">
    /// For a row key that can be deleted and written again (an account's lockout row): the entry concerns only the row
    /// whose <see cref="IRowExpiry"/> recognises this tag, so an entry of an earlier row does not adopt a later one.
    /// </param>
    public Task ScheduleAsync(string table, TenantId tenant, string rowKey, DateTimeOffset at, CancellationToken cancellationToken, string? tag = null) =>
        Index.AddEntityAsync(new ExpirationEntity
        {
            PartitionKey = Bucket(at),
            RowKey = Ids.New(time),
            Table = table,
            TargetPartition = tenant.Value,
            TargetRow = rowKey,
            ExpiresAt = at,
            Tag = tag,
        }, cancellationToken);

    /// <summary>
    /// Schedules the deletion of many rows of one tenant table at one time: the entries share a bucket (a partition of
    /// the index), so they go a hundred to a transaction rather than one write each.
    /// </summary>
    public async Task ScheduleManyAsync(string table, TenantId tenant, IReadOnlyCollection<string> rowKeys, DateTimeOffset at, CancellationToken cancellationToken)
    {
        foreach (var chunk in rowKeys.Chunk(100))
        {
            await Index.SubmitTransactionAsync(chunk.Select(rowKey => new TableTransactionAction(TableTransactionActionType.Add, new ExpirationEntity
            {
                PartitionKey = Bucket(at),
                RowKey = Ids.New(time),
                Table = table,
                TargetPartition = tenant.Value,
                TargetRow = rowKey,
                ExpiresAt = at,
            })), cancellationToken);
        }
    }

    /// <summary>
    /// Handles up to <paramref name="limit"/> due entries (deleting their rows, or scheduling them again when their
    /// owner says they are not due yet); returns how many.
    /// </summary>
    public async Task<int> DeleteDueAsync(int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var handled = 0;
        var due = Index.QueryAsync<ExpirationEntity>(TableClient.CreateQueryFilter($"PartitionKey le {Bucket(now)}"), maxPerPage: 1000, cancellationToken: cancellationToken);
        await foreach (var entry in due)
        {
            if (handled >= limit)
            {
                break;
            }

            if (entry.ExpiresAt > now)
            {
                continue;
            }

            handled++;
            var partition = storage.TenantTable(entry.Table).For(new TenantId(entry.TargetPartition));
            var ifMatch = ETag.All;
            if (_expiries.TryGetValue(entry.Table, out var expiry))
            {
                var row = await partition.GetAsync<TableEntity>(entry.TargetRow, cancellationToken);
                var dueAt = row is null ? null : expiry.DueAt(row, entry.Tag);
                if (dueAt is null)
                {
                    // Gone, or no longer expiring (whoever makes it expire again schedules it then).
                    await Index.DeleteEntityAsync(entry.PartitionKey, entry.RowKey, ETag.All, cancellationToken);
                    continue;
                }

                if (dueAt > now)
                {
                    await ScheduleAsync(entry.Table, new TenantId(entry.TargetPartition), entry.TargetRow, dueAt.Value, cancellationToken, entry.Tag);
                    await Index.DeleteEntityAsync(entry.PartitionKey, entry.RowKey, ETag.All, cancellationToken);
                    continue;
                }

                ifMatch = row!.ETag;

                // What lives outside the table with the row (a blob) goes first: if we stop before the row is deleted,
                // the entry stays and the next run does both again.
                await expiry.DeletingAsync(new TenantId(entry.TargetPartition), row, cancellationToken);
            }

            try
            {
                // Through the tenant table, so a row whose changes are logged leaves with its change-log entry.
                await partition.DeleteAsync(entry.TargetRow, ifMatch, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                // Already gone (deleted by its owner, or a repeated run): the entry is done too.
            }
            catch (RequestFailedException ex) when (ex.Status == 412)
            {
                // Written since it was judged due: the entry stays, and the next run judges the row as it is then.
                continue;
            }

            await Index.DeleteEntityAsync(entry.PartitionKey, entry.RowKey, ETag.All, cancellationToken);
        }

        return handled;
    }

    private static string Bucket(DateTimeOffset at) => at.UtcDateTime.ToString("yyyyMMddHH", CultureInfo.InvariantCulture);

    internal sealed class ExpirationEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public string Table { get; set; } = "";
        public string TargetPartition { get; set; } = "";
        public string TargetRow { get; set; } = "";
        public DateTimeOffset ExpiresAt { get; set; }
        public string? Tag { get; set; }
    }
}

/// <summary>
/// The owner of a table whose rows' time of expiry moves: decides, from the row as it is when its entry comes due,
/// when it is really due. Register it as a singleton <see cref="IRowExpiry"/>.
/// </summary>
public interface IRowExpiry
{
    /// <summary>The table (its name without the storage prefix) whose entries this decides.</summary>
    string Table { get; }

    /// <summary>
    /// When <paramref name="row"/> is due for deletion (now or earlier deletes it, later schedules it again); null when
    /// it does not expire as it stands, or is not the row the entry's <paramref name="tag"/> was scheduled for.
    /// </summary>
    DateTimeOffset? DueAt(TableEntity row, string? tag);

    /// <summary>
    /// Called for a due row just before it is deleted, to remove what belongs to it outside the table (a blob). It may
    /// run again for the same row (a crash, or a write that kept the row), so it must be idempotent.
    /// </summary>
    Task DeletingAsync(TenantId tenant, TableEntity row, CancellationToken cancellationToken) => Task.CompletedTask;
}
