using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Query;

/// <summary>
/// How lists stay fast for a tenant with 100,000 rows when Table storage has no secondary index or text search: each
/// instance keeps the rows of one kind (one row-key prefix of one table) of a tenant in memory, turned into what lists
/// read. It is loaded once with a scan of the tenant's rows, then kept current two ways - writes made on this instance
/// are applied at once (a caller sees their own change), and before serving a list an instance reads the tenant's
/// <see cref="ChangeLog"/> after the last entry it saw (at most every <see cref="RefreshEvery"/>) and re-reads only the
/// rows named there, so other instances' writes show within seconds and a refresh costs what changed, not the partition.
/// Filtering, search, sort and aggregates then run over memory, in milliseconds; the cost is memory and the first
/// list after a cold start, which pays the scan. What all projections of the instance hold is bounded by one
/// <see cref="ProjectionMemory"/> budget, by an estimate of each tenant's rows; the least recently used tenants are
/// dropped first.
/// </summary>
/// <param name="project">The row as lists see it; null when the row should not be listed at all (a tombstone).</param>
/// <param name="sizeOf">
/// An estimate of the bytes one projected row keeps alive (its strings, objects and dictionary entry). It is summed as
/// rows come and go, so it must be cheap: string lengths and fixed overheads, no serialization.
/// </param>
/// <param name="snapshots">
/// Where a large tenant's rows are saved so that a cold instance loads them instead of scanning (see
/// <see cref="ProjectionSnapshots"/>); null for a projection whose rows must not be copied.
/// </param>
/// <param name="entityOf">The stored row an item was projected from, for the snapshot; required with <paramref name="snapshots"/>.</param>
public sealed class ListProjection<TEntity, TItem>(
    StorageAccount storage, string table, string keyPrefix, Func<TEntity, TItem?> project, Func<TItem, long> sizeOf, ProjectionMemory memory, TimeProvider time,
    ProjectionSnapshots? snapshots = null, Func<TItem, TEntity>? entityOf = null) : ISnapshottedProjection
    where TEntity : class, ITableEntity, new()
    where TItem : class
{
    public static readonly TimeSpan RefreshEvery = TimeSpan.FromSeconds(2);

    /// <summary>What a held row costs beyond its item: the dictionary node and its row-key string, roughly.</summary>
    private const long EntryOverhead = 48 + 24;

    /// <summary>More changed rows than this since the last look: reloading is cheaper than reading them one by one.</summary>
    public const int MaxPointReads = 2000;

    private const int PointReadsAtOnce = 16;

    /// <summary>
    /// Rows re-read through the log since the last snapshot before a new one is saved: half of what a catch-up reads
    /// one by one, so an instance loading the latest snapshot is always well inside that bound.
    /// </summary>
    public const int SnapshotAfterChanges = MaxPointReads / 2;

    private readonly ConcurrentDictionary<string, TenantRows> _tenants = new(StringComparer.Ordinal);
    private long _loads;
    private long _snapshotLoads;

    /// <summary>Partition scans made since the instance started: a tenant listed again after it was dropped scans again.</summary>
    public long Loads => Interlocked.Read(ref _loads);

    /// <summary>Tenants this instance loaded from a snapshot (and the log after it) instead of a scan.</summary>
    public long SnapshotLoads => Interlocked.Read(ref _snapshotLoads);

    public string Table => table;

    public string KeyPrefix => keyPrefix;

    /// <summary>The tenant's rows, caught up first. Not a copy: a request reads them in place (see <see cref="HeldRows{TItem}"/>).</summary>
    public async Task<HeldRows<TItem>> RowsAsync(TenantId tenant, CancellationToken cancellationToken) =>
        new((await CurrentAsync(tenant, cancellationToken)).Items);

    /// <summary>One row by its key, as current as a list would show it.</summary>
    public async Task<TItem?> FindAsync(TenantId tenant, string rowKey, CancellationToken cancellationToken) =>
        (await CurrentAsync(tenant, cancellationToken)).Items.TryGetValue(rowKey, out var item) ? item : null;

    /// <summary>
    /// Applies a write made on this instance, so the writer's next read shows it. It takes no gate and may land late -
    /// after a catch-up already read a newer write of the same row by another instance - so its key is re-read at the
    /// next catch-up, and no snapshot is saved while it is pending (see <see cref="TenantRows.Applied"/>).
    /// </summary>
    public void Apply(TenantId tenant, TEntity entity)
    {
        if (_tenants.TryGetValue(tenant.Value, out var rows) && rows.LoadedAt is not null)
        {
            Interlocked.Increment(ref rows.Applying);
            try
            {
                Set(rows, entity);
                rows.Applied[entity.RowKey] = 0;
            }
            finally
            {
                Interlocked.Decrement(ref rows.Applying);
            }

            memory.Report(rows.Held, rows.Bytes);
        }
    }

    public void Remove(TenantId tenant, string rowKey)
    {
        if (_tenants.TryGetValue(tenant.Value, out var rows))
        {
            Interlocked.Increment(ref rows.Applying);
            try
            {
                Drop(rows, rowKey);
                rows.Applied[rowKey] = 0;
            }
            finally
            {
                Interlocked.Decrement(ref rows.Applying);
            }

            memory.Report(rows.Held, rows.Bytes);
        }
    }

    public async Task<bool> RefreshSnapshotAsync(TenantId tenant, long storedTotal, CancellationToken cancellationToken)
    {
        var rows = await CurrentAsync(tenant, cancellationToken);
        await rows.Gate.WaitAsync(cancellationToken);
        try
        {
            if (rows.Position.Total <= storedTotal || TakeSave(rows) is not { } save)
            {
                return false;
            }

            try
            {
                return await snapshots!.SaveAsync(tenant, table, keyPrefix, save.Position, save.Entities, cancellationToken);
            }
            finally
            {
                Interlocked.Exchange(ref rows.Saving, 0);
            }
        }
        finally
        {
            rows.Gate.Release();
        }
    }

    private async Task<TenantRows> CurrentAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var rows = _tenants.GetOrAdd(tenant.Value, NewRows);
        memory.Use(rows.Held);
        await rows.Gate.WaitAsync(cancellationToken);
        try
        {
            var now = time.GetUtcNow();
            if (rows.LoadedAt is null || now - rows.RefreshedAt >= RefreshEvery)
            {
                var partition = storage.TenantTable(table).For(tenant);
                if (rows.LoadedAt is null)
                {
                    if (!await RestoreAsync(tenant, partition, rows, now, cancellationToken))
                    {
                        await LoadAsync(tenant, partition, rows, now, cancellationToken);
                    }
                }
                // A look older than the log's retention may have missed entries already trimmed: start over.
                else if (now - rows.RefreshedAt >= ChangeLog.Retention - ChangeLog.TrimEvery || await CatchUpAsync(partition, rows, cancellationToken) is not { } changed)
                {
                    await LoadAsync(tenant, partition, rows, now, cancellationToken);
                }
                else
                {
                    rows.ChangedSinceSnapshot += changed;
                    rows.SaveDue |= rows.ChangedSinceSnapshot >= SnapshotAfterChanges;
                }

                if (rows.SaveDue)
                {
                    Save(tenant, rows);
                }

                rows.RefreshedAt = now;

                // May drop other tenants to make room - or, when another request's report dropped this one meanwhile,
                // nothing: this request still serves the rows it read, and they go with it.
                memory.Report(rows.Held, rows.Bytes);
            }

            return rows;
        }
        finally
        {
            rows.Gate.Release();
        }
    }

    /// <summary>
    /// Scans the rows. The change-log entries numbered up to each lane's last number when the scan starts describe
    /// writes committed before it, which the scan sees: the first catch-up reads only entries after that number, where
    /// it would otherwise re-read every row of a bulk import that just ended.
    /// </summary>
    private async Task LoadAsync(TenantId tenant, TenantPartition partition, TenantRows rows, DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _loads);
        Clear(rows);

        // Local writes applied before the scan are in it; one landing after the scan read its row re-marks its key.
        rows.Applied.Clear();
        rows.Position = await ChangeLog.PositionAsync(partition, cancellationToken);
        await foreach (var entity in partition.QueryAsync<TEntity>(keyPrefix, maxPerPage: 1000, cancellationToken))
        {
            Set(rows, entity);
        }

        rows.LoadedAt = startedAt;
        rows.ChangedSinceSnapshot = 0;
        rows.SaveDue = snapshots is not null && rows.Items.Count >= snapshots.MinRows;
    }

    /// <summary>
    /// Loads the tenant's snapshot and catches up from its position as a held projection would. False, with nothing
    /// held, when there is no usable snapshot or the log after it cannot be read one row at a time: then scan.
    /// </summary>
    private async Task<bool> RestoreAsync(TenantId tenant, TenantPartition partition, TenantRows rows, DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        if (snapshots is null)
        {
            return false;
        }

        Clear(rows);
        if (await snapshots.TryLoadAsync<TEntity>(tenant, table, keyPrefix, entity => Set(rows, entity), cancellationToken) is not { } loaded)
        {
            Clear(rows);
            return false;
        }

        var (position, version) = loaded;

        rows.Position = position;
        if (await CatchUpAsync(partition, rows, cancellationToken) is not { } changed)
        {
            // Trimmed entries or too many changes (a scan replaces it anyway), or a log that no longer matches it.
            snapshots.Forget(tenant, table, keyPrefix, version, "the change log after it cannot be followed row by row");
            Clear(rows);
            return false;
        }

        Interlocked.Increment(ref _snapshotLoads);
        rows.LoadedAt = startedAt;
        rows.ChangedSinceSnapshot = changed;
        if (rows.Items.Count < snapshots.MinRows)
        {
            // The tenant shrank: scanning it is cheap again, and every cold load would download the blob first.
            _ = snapshots.DeleteAsync(tenant, table, keyPrefix, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        return true;
    }

    /// <summary>
    /// Saves the tenant's rows in the background when it is large enough, one save at a time per tenant. Called under
    /// the tenant's gate right after a load or catch-up, so the rows listed are all at least as new as the position
    /// saved with them - unless a local write is being applied or waits to be re-read (a late one may have put an
    /// older row back): then it is left for the next refresh.
    /// </summary>
    private void Save(TenantId tenant, TenantRows rows)
    {
        if (TakeSave(rows) is not { } save)
        {
            return;
        }

        _ = snapshots!.SaveInBackground(tenant, table, keyPrefix, save.Position, save.Entities)
            .ContinueWith(_ => Interlocked.Exchange(ref rows.Saving, 0), TaskScheduler.Default);
    }

    /// <summary>The rows and position to save, with the tenant's save turn taken; null when none is to be made now.</summary>
    private (LogPosition Position, TEntity[] Entities)? TakeSave(TenantRows rows)
    {
        if (snapshots is null || entityOf is null || rows.Items.Count < snapshots.MinRows || Interlocked.CompareExchange(ref rows.Saving, 1, 0) != 0)
        {
            return null;
        }

        TEntity[] entities = [.. rows.Items.Values.Select(entityOf)];
        if (Volatile.Read(ref rows.Applying) > 0 || !rows.Applied.IsEmpty)
        {
            Interlocked.Exchange(ref rows.Saving, 0);
            rows.SaveDue = true;
            return null;
        }

        rows.SaveDue = false;
        rows.ChangedSinceSnapshot = 0;
        return (rows.Position, entities);
    }

    private static void Clear(TenantRows rows)
    {
        rows.Items.Clear();
        Interlocked.Exchange(ref rows.Bytes, 0);
    }

    /// <summary>
    /// Reads the entries after the last one seen and re-reads the rows they name; how many. Null when there are too
    /// many to read one by one, or when entries were trimmed before this instance read them: both mean reload.
    /// </summary>
    private async Task<int?> CatchUpAsync(TenantPartition partition, TenantRows rows, CancellationToken cancellationToken)
    {
        // Keys of local writes applied since the last look, taken before reading: each is read again below.
        var applied = new List<string>();
        foreach (var key in rows.Applied.Keys)
        {
            if (rows.Applied.TryRemove(key, out _))
            {
                applied.Add(key);
            }
        }

        if (await ChangeLog.Read(partition, rows.Position, keyPrefix, MaxPointReads, cancellationToken) is not { } read)
        {
            return null;
        }

        var (changed, last) = read;
        var logged = changed.Count;
        changed.UnionWith(applied);

        await Parallel.ForEachAsync(changed, new ParallelOptions { MaxDegreeOfParallelism = PointReadsAtOnce, CancellationToken = cancellationToken },
            async (key, ct) =>
            {
                if (await partition.GetAsync<TEntity>(key, ct) is { } entity)
                {
                    Set(rows, entity);
                }
                else
                {
                    Drop(rows, key);
                }
            });

        // Only once every named row is read: a refresh cut short reads the same entries again.
        rows.Position = last;
        return logged;
    }

    private TenantRows NewRows(string tenant)
    {
        var rows = new TenantRows();
        // Removes this very entry only: a newer one for the same tenant, made after the drop, stays.
        rows.Held = memory.Track(() => _tenants.TryRemove(new KeyValuePair<string, TenantRows>(tenant, rows)));
        return rows;
    }

    private void Set(TenantRows rows, TEntity entity)
    {
        if (project(entity) is not { } item)
        {
            Drop(rows, entity.RowKey);
            return;
        }

        var added = sizeOf(item) + EntryOverhead + 2L * entity.RowKey.Length;
        long replaced = 0;
        rows.Items.AddOrUpdate(entity.RowKey, item, (key, old) =>
        {
            replaced = sizeOf(old) + EntryOverhead + 2L * key.Length;
            return item;
        });
        Interlocked.Add(ref rows.Bytes, added - replaced);
    }

    private void Drop(TenantRows rows, string rowKey)
    {
        if (rows.Items.TryRemove(rowKey, out var old))
        {
            Interlocked.Add(ref rows.Bytes, -(sizeOf(old) + EntryOverhead + 2L * rowKey.Length));
        }
    }

    private sealed class TenantRows
    {
        /// <summary>The estimated bytes of <see cref="Items"/>, kept as rows come and go.</summary>
        public long Bytes;

        /// <summary>1 while a snapshot of these rows is being saved.</summary>
        public int Saving;

        /// <summary>Local writes being applied now (<see cref="Apply"/>, <see cref="Remove"/>).</summary>
        public int Applying;

        /// <summary>Keys of local writes applied since the last catch-up, which re-reads them.</summary>
        public ConcurrentDictionary<string, byte> Applied { get; } = new(StringComparer.Ordinal);

        /// <summary>A snapshot should be saved at the next chance (after a scan, or enough rows changed).</summary>
        public bool SaveDue { get; set; }

        /// <summary>Rows re-read through the log since the snapshot was saved or loaded.</summary>
        public int ChangedSinceSnapshot { get; set; }

        public SemaphoreSlim Gate { get; } = new(1, 1);
        public ConcurrentDictionary<string, TItem> Items { get; } = new(StringComparer.Ordinal);
        public ProjectionMemory.Entry Held { get; set; } = null!;

        /// <summary>The last change-log entry of each lane whose rows are reflected here.</summary>
        public LogPosition Position { get; set; } = LogPosition.Start;
        public DateTimeOffset? LoadedAt { get; set; }
        public DateTimeOffset RefreshedAt { get; set; }
    }
}

/// <summary>
/// The rows a projection holds for one tenant, read in place: copying 100,000 references per request put each list in
/// the large-object heap and made full collections frequent. Each row object is immutable; a write applied while a
/// request enumerates replaces a row with another, so the request sees the old or the new one, never half of either.
/// </summary>
public sealed class HeldRows<TItem>(ConcurrentDictionary<string, TItem> items) : IEnumerable<TItem>
{
    /// <summary>One row by its row key.</summary>
    public bool TryGet(string rowKey, [MaybeNullWhen(false)] out TItem item) => items.TryGetValue(rowKey, out item);

    // Enumerating the dictionary itself takes no lock and copies nothing (its Values property would do both).
    public IEnumerator<TItem> GetEnumerator()
    {
        foreach (var pair in items)
        {
            yield return pair.Value;
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
