using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Usage;

/// <summary>Writes and reads the <c>usage</c> table (layout in <see cref="UsageRows"/>).</summary>
public sealed class UsageStore(StorageAccount storage)
{
    public const string TableName = "usage";

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>
    /// Writes rows of one tenant, up to a hundred (and <see cref="UsageRows.MaxTransactionBytes"/>) to a transaction;
    /// the same rows written again replace themselves.
    /// </summary>
    public async Task WriteAsync(TenantId tenant, IReadOnlyList<TableEntity> rows, CancellationToken cancellationToken)
    {
        var partition = Rows(tenant);
        var batch = new List<TableTransactionAction>();
        long bytes = 0;
        foreach (var row in rows)
        {
            var size = UsageRows.SizeOf(row);
            if (batch.Count == 100 || (batch.Count > 0 && bytes + size > UsageRows.MaxTransactionBytes))
            {
                await partition.SubmitTransactionAsync(batch, cancellationToken);
                batch = [];
                bytes = 0;
            }

            batch.Add(new TableTransactionAction(TableTransactionActionType.UpsertReplace, row));
            bytes += size;
        }

        if (batch.Count > 0)
        {
            await partition.SubmitTransactionAsync(batch, cancellationToken);
        }
    }

    /// <summary>
    /// Hands every stored slice of the tenant whose period (hour or minute) starts in [<paramref name="from"/>,
    /// <paramref name="to"/>) to <paramref name="visit"/>, with the period's start: two row-key ranges, never a scan.
    /// </summary>
    public async Task ReadAsync(TenantId tenant, DateTimeOffset from, DateTimeOffset to, Action<DateTimeOffset, UsageSlice> visit, CancellationToken cancellationToken)
    {
        var partition = Rows(tenant);
        foreach (var (unit, keyOf) in new (TimeSpan, Func<DateTimeOffset, string>)[] { (TimeSpan.FromHours(1), UsageRows.HourKey), (TimeSpan.FromMinutes(1), UsageRows.MinuteKey) })
        {
            var low = keyOf(Ceiling(from, unit));
            var high = keyOf(Ceiling(to, unit));
            await foreach (var row in partition.QueryWhereAsync<TableEntity>($"RowKey ge {low} and RowKey lt {high}", 1000, cancellationToken))
            {
                if (UsageRows.PeriodOf(row.RowKey) is not { } period)
                {
                    continue;
                }

                foreach (var slice in UsageRows.Unpack(row))
                {
                    visit(period, slice);
                }
            }
        }
    }

    internal static DateTimeOffset Floor(DateTimeOffset at, TimeSpan unit) => new(at.UtcTicks - (at.UtcTicks % unit.Ticks), TimeSpan.Zero);

    private static DateTimeOffset Ceiling(DateTimeOffset at, TimeSpan unit)
    {
        var floor = Floor(at, unit);
        return floor == at || floor > DateTimeOffset.MaxValue - unit ? floor : floor + unit;
    }
}
