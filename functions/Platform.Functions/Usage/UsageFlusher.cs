using System.Globalization;
using System.Security.Cryptography;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Usage;

/// <summary>
/// Writes what the <see cref="UsageMeter"/> gathered every <see cref="UsageOptions.FlushInterval"/> (a minute) and once
/// more when the app stops gracefully, so a stop loses nothing: per tenant and minute, one row of this instance (more
/// only past 700 KB), a hundred rows to a transaction. Rows whose write failed are kept and written first at the next
/// flush (at most <see cref="MaxPendingRows"/>; older ones are dropped and logged). A crash loses what was gathered
/// since the last flush: at most one interval of this instance's usage. Usage is a statistic, not a bill.
/// </summary>
public sealed partial class UsageFlusher(UsageMeter meter, UsageStore store, IOptions<UsageOptions> options, ILogger<UsageFlusher> logger)
    : BackgroundService, IHostedLifecycleService
{
    private const int MaxPendingRows = 10_000;
    private static readonly TimeSpan FinalFlushTimeout = TimeSpan.FromSeconds(10);

    // Rows of different instances (and of each flush of one) never share a key, so no write needs a read first.
    private readonly string _instance = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(5));
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly LinkedList<(TenantId Tenant, List<TableEntity> Rows)> _pending = new();
    private long _sequence;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Real time, not the app's TimeProvider: a test's fake clock must not stop the flushes. The rows are stamped
        // with the app's clock (the minute each request ended in), so a fake clock still places usage in time.
        using var timer = new PeriodicTimer(options.Value.FlushInterval);
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

    // The last flush runs after every hosted service's StopAsync, the web server's included: the requests it drained
    // while stopping are in it too.
    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(FinalFlushTimeout);
        await FlushAsync(timeout.Token);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Writes everything gathered so far (and what earlier flushes could not write); never throws.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _gate.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            try
            {
                foreach (var tenant in Collect(meter.Take()))
                {
                    _pending.AddLast(tenant);
                }
            }
#pragma warning disable CA1031 // A window that cannot be encoded is lost, but the flusher (and the host) must go on.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LogCollectFailed(logger, ex);
            }

            TrimPending();
            for (var node = _pending.First; node is not null;)
            {
                var next = node.Next;
                try
                {
                    await store.WriteAsync(node.Value.Tenant, node.Value.Rows, cancellationToken);
                    _pending.Remove(node);
                }
#pragma warning disable CA1031 // One tenant's failed write (storage down, shutdown) must neither stop the others nor lose its rows.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    if (!cancellationToken.IsCancellationRequested)
                    {
                        LogWriteFailed(logger, ex, node.Value.Rows.Count, node.Value.Tenant.Value);
                    }
                }

                node = next;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The taken counters as rows: one set per tenant, slices merged per minute, caller and endpoint name.</summary>
    private List<(TenantId, List<TableEntity>)> Collect(IReadOnlyCollection<KeyValuePair<UsageKey, UsageCounter>> taken)
    {
        var result = new List<(TenantId, List<TableEntity>)>();
        foreach (var tenant in taken.GroupBy(e => e.Key.Tenant))
        {
            var rows = new List<TableEntity>();
            foreach (var minute in tenant.GroupBy(e => e.Key.Minute))
            {
                var slices = new Dictionary<(string, string), UsageSlice>();
                foreach (var (key, counter) in minute)
                {
                    var caller = UsageMeter.CallerName(key);
                    var endpoint = UsageMeter.EndpointName(key.Endpoint, key.Method);
                    if (!slices.TryGetValue((caller, endpoint), out var slice))
                    {
                        slices[(caller, endpoint)] = slice = new UsageSlice(caller, endpoint);
                    }

                    slice.Add(counter);
                }

                var sequence = Interlocked.Increment(ref _sequence);
                var minuteKey = UsageRows.MinuteKey(DateTimeOffset.FromUnixTimeSeconds(minute.Key * 60));
                rows.AddRange(UsageRows.Pack(slices.Values, part =>
                    string.Create(CultureInfo.InvariantCulture, $"{minuteKey}:{_instance}:{sequence:x8}:{part}")));
            }

            result.Add((tenant.Key, rows));
        }

        return result;
    }

    private void TrimPending()
    {
        var rows = _pending.Sum(p => p.Rows.Count);
        while (rows > MaxPendingRows && _pending.First is { } oldest)
        {
            rows -= oldest.Value.Rows.Count;
            _pending.RemoveFirst();
            LogDropped(logger, oldest.Value.Rows.Count, oldest.Value.Tenant.Value);
        }
    }

    /// <summary>The minute a request ending now is metered under (whole minutes since the epoch, by the app's clock).</summary>
    internal static long MinuteOf(DateTimeOffset at) => at.ToUnixTimeSeconds() / 60;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write {Rows} usage rows of tenant {Tenant}; they are kept for the next flush")]
    private static partial void LogWriteFailed(ILogger logger, Exception exception, int rows, string tenant);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not encode the usage gathered since the last flush; it is lost")]
    private static partial void LogCollectFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Dropped {Rows} unwritten usage rows of tenant {Tenant}: too many rows were waiting for storage")]
    private static partial void LogDropped(ILogger logger, int rows, string tenant);
}
