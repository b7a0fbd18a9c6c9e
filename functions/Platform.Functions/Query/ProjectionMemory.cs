using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Platform.Functions.Hosting;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Query;

/// <summary>Settings under <c>Platform:Lists</c>.</summary>
public sealed class ListsOptions
{
    public const string Section = "Platform:Lists";

    /// <summary>
    /// What the list projections of one instance may hold, all tenants and kinds together, by their estimate. The
    /// default leaves most of a Flex Consumption instance's 2048 MB to the rest of the app: the process idles near
    /// 130 MB, password hashing takes 19 MB a slot, and the garbage collector needs head room above what is live.
    /// Fractions are allowed (tests hold a few rows).
    /// </summary>
    [Range(0.01, 65536)]
    public double ProjectionMemoryMB { get; set; } = 512;

    /// <summary>
    /// A tenant's items or stock of at least this many rows is saved as a snapshot after a scan, so other instances
    /// load it with one download instead of scanning (<see cref="ProjectionSnapshots"/>).
    /// </summary>
    [Range(1, int.MaxValue)]
    public int SnapshotMinRows { get; set; } = 5000;
}

/// <summary>
/// One memory budget for every <see cref="ListProjection{TEntity, TItem}"/> of the instance (users, items, stock):
/// each tenant's rows of one kind are one entry, sized by the projection's estimate of its rows, and when the total is
/// over the budget the least recently used entries are dropped until it fits. Bounding memory rather than tenants means
/// many small tenants all stay held (a count bound let 51 tenants of one user each turn every list into a scan), and a
/// tenant larger than the whole budget is still held - alone - until another tenant's list needs the room.
/// </summary>
public sealed class ProjectionMemory(IOptions<ListsOptions> options)
{
    private readonly Lock _lock = new();
    private readonly LinkedList<Entry> _recency = new();
    private long _held;
    private long _evictions;

    public long BudgetBytes { get; } = (long)(options.Value.ProjectionMemoryMB * 1024 * 1024);

    /// <summary>The estimated bytes held now, over all entries.</summary>
    public long HeldBytes
    {
        get
        {
            lock (_lock)
            {
                return _held;
            }
        }
    }

    /// <summary>Entries dropped to stay within the budget since the instance started.</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>A new entry, counted from its first <see cref="Report"/>; <paramref name="evict"/> forgets its rows.</summary>
    public Entry Track(Action evict) => new(evict);

    /// <summary>Marks the entry as the most recently used.</summary>
    public void Use(Entry entry)
    {
        lock (_lock)
        {
            if (entry.Node is { } node && !ReferenceEquals(_recency.Last, node))
            {
                _recency.Remove(node);
                _recency.AddLast(node);
            }
        }
    }

    /// <summary>
    /// Records the entry's current size and drops the least recently used other entries while the total is over the
    /// budget. An entry dropped meanwhile stays dropped: its holder serves the rows it has and lets them go.
    /// </summary>
    public void Report(Entry entry, long bytes)
    {
        List<Entry>? dropped = null;
        lock (_lock)
        {
            if (entry.Evicted)
            {
                return;
            }

            _held += bytes - entry.Bytes;
            entry.Bytes = bytes;
            if (entry.Node is null)
            {
                entry.Node = _recency.AddLast(entry);
            }

            var candidate = _recency.First;
            while (_held > BudgetBytes && candidate is not null)
            {
                var next = candidate.Next;
                if (!ReferenceEquals(candidate.Value, entry))
                {
                    _recency.Remove(candidate);
                    candidate.Value.Node = null;
                    candidate.Value.Evicted = true;
                    _held -= candidate.Value.Bytes;
                    (dropped ??= []).Add(candidate.Value);
                }

                candidate = next;
            }
        }

        if (dropped is not null)
        {
            Interlocked.Add(ref _evictions, dropped.Count);
            foreach (var victim in dropped)
            {
                victim.Evict();
            }
        }
    }

    public sealed class Entry(Action evict)
    {
        internal Action Evict { get; } = evict;
        internal LinkedListNode<Entry>? Node { get; set; }
        internal long Bytes { get; set; }

        /// <summary>Set once, under the budget's lock: the entry is out of the budget and its rows are let go.</summary>
        internal bool Evicted { get; set; }
    }
}

public static class ProjectionMemoryExtensions
{
    /// <summary>The one budget every capability's projections share; capabilities call this, the first one registers it.</summary>
    public static IServiceCollection AddProjectionMemory(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(ProjectionMemory)))
        {
            return services;
        }

        services.AddValidatedOptions<ListsOptions>(ListsOptions.Section);
        services.TryAddSingleton<ProjectionMemory>();
        services.TryAddSingleton<ProjectionSnapshots>();
        services.AddStorageContainer(ProjectionSnapshots.SnapshotContainer);
        services.AddTimerFunction<ProjectionSnapshotRefresh>(ProjectionSnapshotRefresh.FunctionName, ProjectionSnapshotRefresh.Schedule);
        return services;
    }
}
