using System.Collections.Concurrent;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// A per-tenant log of which rows changed, so that an in-memory projection on another instance can catch up by
/// reading only what changed instead of scanning the tenant's partition. A table registers the row-key prefixes it
/// logs (<see cref="StorageLayoutExtensions.AddStorageTable"/>); from then on every write through
/// <see cref="TenantPartition"/> that touches such a row also adds one <c>~changes:{ulid}</c> row, listing the keys
/// written, <b>in the same entity-group transaction</b>. So no code path can change a logged row without logging it,
/// and a logged change is never lost to a crash between two writes.
/// <para>
/// Readers ask for the entries since a moment (a row-key range: an index seek on Table storage, not a scan) and read
/// the rows they name, which are always at least as new as the entry. Entries are keyed by the writer's clock and
/// committed a little after that, so readers re-read <see cref="Overlap"/> before their last look. Entries older than
/// <see cref="Retention"/> are deleted by writers (each instance at most once per <see cref="TrimEvery"/> per tenant
/// and table); a reader that has not looked for longer than that reloads instead.
/// </para>
/// </summary>
public static class ChangeLog
{
    public const string KeyPrefix = "~changes:";
    private const string KeyEnd = "~changes;";

    public static readonly TimeSpan Overlap = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);
    public static readonly TimeSpan TrimEvery = TimeSpan.FromMinutes(10);

    /// <summary>Entries a trim deletes at most, so that one write never carries an unbounded cleanup.</summary>
    private const int MaxTrimmed = 1000;

    private static readonly ConcurrentDictionary<string, DateTimeOffset> LastTrim = new(StringComparer.Ordinal);

    /// <summary>The entry for a transaction, or null when it writes no logged row.</summary>
    internal static TableTransactionAction? EntryFor(IEnumerable<TableTransactionAction> actions, IReadOnlyList<string> loggedPrefixes, TimeProvider time)
    {
        if (loggedPrefixes.Count == 0)
        {
            return null;
        }

        var keys = actions.Select(a => a.Entity.RowKey).Where(k => IsLogged(k, loggedPrefixes)).Distinct(StringComparer.Ordinal).ToList();
        return keys.Count == 0
            ? null
            : new TableTransactionAction(TableTransactionActionType.Add, new ChangeEntity { RowKey = KeyPrefix + Ids.New(time), Keys = string.Join('\n', keys) });
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

    /// <summary>The entries written since <paramref name="since"/> (by the writers' clocks), oldest first.</summary>
    public static AsyncPageable<ChangeEntity> ReadSinceAsync(TenantPartition partition, DateTimeOffset since, CancellationToken cancellationToken) =>
        partition.QueryWhereAsync<ChangeEntity>($"RowKey ge {KeyPrefix + Ids.Floor(since)} and RowKey lt {KeyEnd}", maxPerPage: 1000, cancellationToken);

    /// <summary>The smallest entry key at or after <paramref name="at"/>, to compare entry keys with a moment.</summary>
    public static string KeyAt(DateTimeOffset at) => KeyPrefix + Ids.Floor(at);

    /// <summary>Deletes entries older than <see cref="Retention"/>, when this instance has not done so lately for this partition.</summary>
    internal static async Task TrimIfDueAsync(TableClient table, string partitionKey, TimeProvider time, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var slot = table.Name + "\n" + partitionKey;
        if (LastTrim.TryGetValue(slot, out var last) && now - last < TrimEvery)
        {
            return;
        }

        if (LastTrim.Count > 10_000)
        {
            LastTrim.Clear();
        }

        LastTrim[slot] = now;
        var old = table.QueryAsync<TableEntity>(
            TableClient.CreateQueryFilter($"PartitionKey eq {partitionKey} and RowKey ge {KeyPrefix} and RowKey lt {KeyAt(now - Retention)}"),
            maxPerPage: 100, select: ["RowKey"], cancellationToken: cancellationToken);
        var trimmed = 0;
        await foreach (var page in old.AsPages().WithCancellation(cancellationToken))
        {
            if (page.Values.Count == 0)
            {
                continue;
            }

            try
            {
                await table.SubmitTransactionAsync(
                    page.Values.Select(e => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(partitionKey, e.RowKey), ETag.All)),
                    cancellationToken);
            }
            catch (TableTransactionFailedException)
            {
                // Another instance trimmed the same entries first; whatever is left goes next time.
                return;
            }

            trimmed += page.Values.Count;
            if (trimmed >= MaxTrimmed)
            {
                return;
            }
        }
    }
}

/// <summary>One logged write: the row keys it changed, separated by '\n' (a character row keys cannot hold).</summary>
public sealed class ChangeEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Keys { get; set; } = "";

    public string[] ChangedKeys() => Keys.Split('\n', StringSplitOptions.RemoveEmptyEntries);
}
