using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Usage;

/// <summary>Writes and reads the <c>usage</c> table (layout in <see cref="UsageRows"/>).</summary>
public sealed class UsageStore(StorageAccount storage)
{
    public const string TableName = "usage";

    private const int MaxReadAttempts = 10;
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    // Azurite leaves the ETag out of a projected row; the Timestamp moves with every write just the same.
    private static readonly string[] KeysOnly = ["RowKey", "Timestamp"];

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
    /// <paramref name="to"/>) to <paramref name="visit"/>, with the period's start, and returns the state it visited
    /// into: two row-key ranges, never a scan.
    /// </summary>
    /// <remarks>
    /// The hour rows are read before the minute rows, so a rollup that merged minutes into their hour between the two
    /// reads would leave those minutes out (the hour was read without them, the minutes were gone). The hour rows' write
    /// times are read again after the minutes: if any changed, a rollup ran in between and the whole read starts over with
    /// fresh state from <paramref name="fresh"/>, after a short pause (a rollup is a few transactions a tenant and
    /// hour, so a retry is rare and a reader outlasts it).
    /// </remarks>
    public async Task<T> ReadAsync<T>(TenantId tenant, DateTimeOffset from, DateTimeOffset to, Func<T> fresh, Action<T, DateTimeOffset, UsageSlice> visit, CancellationToken cancellationToken)
    {
        var partition = Rows(tenant);
        var hourLow = UsageRows.HourKey(Ceiling(from, Hour));
        var hourHigh = UsageRows.HourKey(Ceiling(to, Hour));
        var minuteLow = UsageRows.MinuteKey(Ceiling(from, Minute));
        var minuteHigh = UsageRows.MinuteKey(Ceiling(to, Minute));
        for (var attempt = 1; ; attempt++)
        {
            var state = fresh();
            var hours = new Dictionary<string, DateTimeOffset?>(StringComparer.Ordinal);
            await foreach (var row in partition.QueryWhereAsync<TableEntity>($"RowKey ge {hourLow} and RowKey lt {hourHigh}", 1000, cancellationToken))
            {
                hours[row.RowKey] = row.Timestamp;
                Visit(row, state, visit);
            }

            await foreach (var row in partition.QueryWhereAsync<TableEntity>($"RowKey ge {minuteLow} and RowKey lt {minuteHigh}", 1000, cancellationToken))
            {
                Visit(row, state, visit);
            }

            var unchanged = 0;
            var changed = false;
            await foreach (var row in partition.QueryWhereAsync<TableEntity>($"RowKey ge {hourLow} and RowKey lt {hourHigh}", 1000, KeysOnly, cancellationToken))
            {
                if (!hours.TryGetValue(row.RowKey, out var written) || written != row.Timestamp)
                {
                    changed = true;
                    break;
                }

                unchanged++;
            }

            if ((!changed && unchanged == hours.Count) || attempt == MaxReadAttempts)
            {
                // Past the last attempt the read stands as it is: usage is a statistic, and rollups are hourly.
                return state;
            }

            // A rollup is merging this range: give its few transactions a moment to finish.
            await Task.Delay(TimeSpan.FromMilliseconds(25 * attempt), cancellationToken);
        }
    }

    private static void Visit<T>(TableEntity row, T state, Action<T, DateTimeOffset, UsageSlice> visit)
    {
        if (UsageRows.PeriodOf(row.RowKey) is not { } period)
        {
            return;
        }

        foreach (var slice in UsageRows.Unpack(row))
        {
            visit(state, period, slice);
        }
    }

    internal static DateTimeOffset Floor(DateTimeOffset at, TimeSpan unit) => new(at.UtcTicks - (at.UtcTicks % unit.Ticks), TimeSpan.Zero);

    private static DateTimeOffset Ceiling(DateTimeOffset at, TimeSpan unit)
    {
        var floor = Floor(at, unit);
        return floor == at || floor > DateTimeOffset.MaxValue - unit ? floor : floor + unit;
    }
}
