using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.ApiKeys;

/// <summary>
/// Usage of keys on this instance since the last flush: a count and the latest use per key, in memory. A request
/// costs a dictionary update, never a storage write; <see cref="ApiKeyUsageFlusher"/> merges the totals into the
/// key rows. Bounded by the number of keys used between two flushes.
/// </summary>
public sealed class ApiKeyUsage
{
    private readonly ConcurrentDictionary<(TenantId Tenant, string KeyId), Counter> _counters = new();

    public void Record(TenantId tenant, string keyId, DateTimeOffset at) => Add(tenant, keyId, 1, at);

    /// <summary>Puts back usage whose write failed, for the next flush.</summary>
    public void Restore(ApiKeyUsageDelta usage) => Add(usage.Tenant, usage.KeyId, usage.Count, usage.LastUsedAt);

    /// <summary>Takes everything gathered so far; usage recorded from now on goes to the next flush.</summary>
    public IReadOnlyList<ApiKeyUsageDelta> Take()
    {
        var taken = new List<ApiKeyUsageDelta>();
        foreach (var (key, counter) in _counters)
        {
            lock (counter)
            {
                // A counter is closed before it leaves the dictionary, so a use that raced for it goes to a new one.
                counter.Closed = true;
                taken.Add(new ApiKeyUsageDelta(key.Tenant, key.KeyId, counter.Count, counter.LastUsedAt));
            }

            _counters.TryRemove(new KeyValuePair<(TenantId, string), Counter>(key, counter));
        }

        return taken;
    }

    private void Add(TenantId tenant, string keyId, long count, DateTimeOffset at)
    {
        while (true)
        {
            var counter = _counters.GetOrAdd((tenant, keyId), _ => new Counter());
            lock (counter)
            {
                if (counter.Closed)
                {
                    continue;
                }

                counter.Count += count;
                if (at > counter.LastUsedAt)
                {
                    counter.LastUsedAt = at;
                }

                return;
            }
        }
    }

    private sealed class Counter
    {
        public long Count;
        public DateTimeOffset LastUsedAt;
        public bool Closed;
    }
}

/// <summary>
/// Writes gathered key usage every <see cref="ApiKeyOptions.UsageFlushInterval"/> (10 s) and once more on shutdown:
/// one ETag-guarded read-merge-write per key used, retried when the row changed. A write that fails keeps its usage
/// for the next flush; usage of a revoked key is dropped. What is gathered when the process dies is lost - usage
/// is a statistic, not a bill.
/// </summary>
public sealed partial class ApiKeyUsageFlusher(ApiKeyUsage usage, ApiKeyStore keys, IOptions<ApiKeyOptions> options, ILogger<ApiKeyUsageFlusher> logger)
    : BackgroundService
{
    private static readonly TimeSpan FinalFlushTimeout = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Real time, not the app's TimeProvider: a test's fake clock must not stop the flushes.
        using var timer = new PeriodicTimer(options.Value.UsageFlushInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(FinalFlushTimeout);
        await FlushAsync(timeout.Token);
    }

    /// <summary>Writes what has been gathered; never throws.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        foreach (var delta in usage.Take())
        {
            try
            {
                if (await keys.AddUsageAsync(delta, cancellationToken) == UsageWrite.Contended)
                {
                    usage.Restore(delta);
                }
            }
#pragma warning disable CA1031 // One key's failed write (storage down, shutdown) must neither stop the loop nor lose the others.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                usage.Restore(delta);
                if (!cancellationToken.IsCancellationRequested)
                {
                    LogFlushFailed(logger, ex, delta.KeyId);
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write the usage of API key {KeyId}; it is kept for the next flush")]
    private static partial void LogFlushFailed(ILogger logger, Exception exception, string keyId);
}
