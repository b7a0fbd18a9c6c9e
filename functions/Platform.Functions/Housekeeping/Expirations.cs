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
public sealed class Expirations(StorageAccount storage, TimeProvider time)
{
    public const string TableName = "expirations";

    private TableClient Index => storage.Table(TableName);

    /// <summary>Schedules the deletion of one tenant row. Write this before the row becomes deletable.</summary>
    public Task ScheduleAsync(string table, TenantId tenant, string rowKey, DateTimeOffset at, CancellationToken cancellationToken) =>
        Index.AddEntityAsync(new ExpirationEntity
        {
            PartitionKey = Bucket(at),
            RowKey = Ids.New(time),
            Table = table,
            TargetPartition = tenant.Value,
            TargetRow = rowKey,
            ExpiresAt = at,
        }, cancellationToken);

    /// <summary>Deletes up to <paramref name="limit"/> due rows and their index entries; returns how many.</summary>
    public async Task<int> DeleteDueAsync(int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var deleted = 0;
        var due = Index.QueryAsync<ExpirationEntity>(TableClient.CreateQueryFilter($"PartitionKey le {Bucket(now)}"), maxPerPage: 1000, cancellationToken: cancellationToken);
        await foreach (var entry in due)
        {
            if (deleted >= limit)
            {
                break;
            }

            if (entry.ExpiresAt > now)
            {
                continue;
            }

            try
            {
                // Through the tenant table, so a row whose changes are logged leaves with its change-log entry.
                await storage.TenantTable(entry.Table).For(new TenantId(entry.TargetPartition)).DeleteAsync(entry.TargetRow, ETag.All, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                // Already gone (deleted by its owner, or a repeated run): the entry is done too.
            }

            await Index.DeleteEntityAsync(entry.PartitionKey, entry.RowKey, ETag.All, cancellationToken);
            deleted++;
        }

        return deleted;
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
    }
}
