using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Triggers;

namespace Platform.Functions.Usage;

/// <summary>
/// The <c>UsageRollup</c> timer (hourly, at minute 5): per tenant, merges the minute rows of every hour before the
/// current one into that hour's row, and deletes hour rows older than <see cref="UsageOptions.Retention"/> (400 days).
/// So a range of days reads at most 24 rows a day, whatever the number of instances. Each merge is one entity-group
/// transaction that rewrites the hour row under its ETag and deletes the minute rows it took: a crash or a second
/// runner never counts a minute twice, and a minute row written late (a retried flush) is merged at the next run.
/// </summary>
public sealed partial class UsageRollup(TenantDirectory tenants, UsageStore store, IOptions<UsageOptions> options, TimeProvider time, ILogger<UsageRollup> logger)
    : ITimerHandler
{
    public const string FunctionName = "UsageRollup";
    public const string Schedule = "0 5 * * * *";

    // Leaves room in a transaction of 100 for the hour's parts.
    private const int MinuteRowsPerMerge = 80;
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        int merged = 0, expired = 0;
        await foreach (var tenant in tenants.AllIdsAsync(cancellationToken))
        {
            merged += await RollUpAsync(tenant, UsageStore.Floor(now, Hour), cancellationToken);
            expired += await ExpireAsync(tenant, UsageStore.Floor(now - options.Value.Retention, Hour), cancellationToken);
        }

        LogRun(logger, merged, expired);
    }

    /// <summary>Merges the tenant's minute rows of hours before <paramref name="before"/> into hour rows; returns how many it merged.</summary>
    public async Task<int> RollUpAsync(TenantId tenant, DateTimeOffset before, CancellationToken cancellationToken)
    {
        var partition = store.Rows(tenant);
        var merged = 0;
        var batch = new List<TableEntity>();
        DateTimeOffset? hour = null;
        await foreach (var row in partition.QueryWhereAsync<TableEntity>($"RowKey ge {UsageRows.MinutePrefix} and RowKey lt {UsageRows.MinuteKey(before)}", 1000, cancellationToken))
        {
            if (UsageRows.PeriodOf(row.RowKey) is not { } minute)
            {
                continue;
            }

            var rowHour = UsageStore.Floor(minute, Hour);
            if ((hour is { } current && current != rowHour) || batch.Count == MinuteRowsPerMerge)
            {
                merged += await MergeAsync(partition, hour!.Value, batch, cancellationToken);
                batch.Clear();
            }

            hour = rowHour;
            batch.Add(row);
        }

        if (batch.Count > 0)
        {
            merged += await MergeAsync(partition, hour!.Value, batch, cancellationToken);
        }

        return merged;
    }

    private async Task<int> MergeAsync(TenantPartition partition, DateTimeOffset hour, List<TableEntity> minuteRows, CancellationToken cancellationToken)
    {
        var prefix = UsageRows.HourKey(hour) + ":";
        var existing = new Dictionary<string, TableEntity>(StringComparer.Ordinal);
        await foreach (var row in partition.QueryAsync<TableEntity>(prefix, cancellationToken: cancellationToken))
        {
            existing[row.RowKey] = row;
        }

        var slices = new Dictionary<(string, string), UsageSlice>();
        foreach (var slice in existing.Values.Concat(minuteRows).SelectMany(UsageRows.Unpack))
        {
            if (slices.TryGetValue((slice.Caller, slice.Endpoint), out var total))
            {
                total.Add(slice);
            }
            else
            {
                slices[(slice.Caller, slice.Endpoint)] = slice;
            }
        }

        var parts = UsageRows.Pack(slices.Values, part => prefix + part.ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
        var actions = new List<TableTransactionAction>();
        foreach (var part in parts)
        {
            actions.Add(existing.Remove(part.RowKey, out var old)
                ? new TableTransactionAction(TableTransactionActionType.UpdateReplace, part, old.ETag)
                : new TableTransactionAction(TableTransactionActionType.Add, part));
        }

        actions.AddRange(existing.Values.Select(stale => new TableTransactionAction(TableTransactionActionType.Delete, stale, stale.ETag)));
        actions.AddRange(minuteRows.Select(row => new TableTransactionAction(TableTransactionActionType.Delete, row, row.ETag)));
        if (actions.Count > 100 || parts.Sum(UsageRows.SizeOf) > UsageRows.MaxTransactionBytes)
        {
            // An hour whose merged keys outgrow one transaction (about 2.5 MB packed, tens of thousands of keys): left
            // as minute rows, which are still read.
            LogTooLarge(logger, partition.Tenant.Value, hour, parts.Count);
            return 0;
        }

        try
        {
            await partition.SubmitTransactionAsync(actions, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
        {
            // Another runner (a timer that fired while this one ran, a test calling in) merged some of these rows
            // first: nothing was written, and whatever is left is merged at the next run.
            return 0;
        }

        return minuteRows.Count;
    }

    /// <summary>Deletes the tenant's usage rows of periods before <paramref name="cutoff"/>; returns how many.</summary>
    public async Task<int> ExpireAsync(TenantId tenant, DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        var partition = store.Rows(tenant);
        var deleted = 0;
        foreach (var (prefix, high) in new[] { (UsageRows.HourPrefix, UsageRows.HourKey(cutoff)), (UsageRows.MinutePrefix, UsageRows.MinuteKey(cutoff)) })
        {
            var expired = new List<TableTransactionAction>();
            await foreach (var row in partition.QueryWhereAsync<TableEntity>($"RowKey ge {prefix} and RowKey lt {high}", 1000, cancellationToken))
            {
                expired.Add(new TableTransactionAction(TableTransactionActionType.Delete, row, ETag.All));
                if (expired.Count == 100)
                {
                    deleted += await DeleteAsync(partition, expired, cancellationToken);
                    expired.Clear();
                }
            }

            if (expired.Count > 0)
            {
                deleted += await DeleteAsync(partition, expired, cancellationToken);
            }
        }

        return deleted;
    }

    private static async Task<int> DeleteAsync(TenantPartition partition, List<TableTransactionAction> expired, CancellationToken cancellationToken)
    {
        try
        {
            await partition.SubmitTransactionAsync(expired, cancellationToken);
            return expired.Count;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // Another runner deleted some of them first; the rest go at the next run.
            return 0;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage rollup merged {Merged} minute rows into hours and deleted {Expired} expired rows")]
    private static partial void LogRun(ILogger logger, int merged, int expired);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage of tenant {Tenant} in the hour {Hour} needs {Parts} rows; its minute rows are left unmerged")]
    private static partial void LogTooLarge(ILogger logger, string tenant, DateTimeOffset hour, int parts);
}
