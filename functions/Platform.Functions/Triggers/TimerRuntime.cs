using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Cronos;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Triggers;

/// <summary>
/// Fires timer functions when no Functions host does. Any number of instances may run this against one storage
/// account; per timer:
/// <list type="bullet">
/// <item>a blob lease on <c>triggers/timers/{name}.lock</c> elects one scheduler; the others wait to take over;</item>
/// <item>a status blob <c>timers/{name}.json</c> holds the last and next occurrence. The scheduler claims an
/// occurrence by advancing the status with an ETag condition <em>before</em> running it, so even two schedulers
/// (a lease lost mid-run) cannot run the same occurrence twice;</item>
/// <item>an occurrence missed while every instance was down runs once on start with <c>IsPastDue</c>, like the
/// Functions host's schedule monitor; further missed occurrences are skipped, not replayed.</item>
/// </list>
/// </summary>
internal sealed partial class TimerRuntime(
    FunctionCatalog catalog,
    StorageAccount storage,
    StorageInitializer initializer,
    FunctionInvoker invoker,
    IOptions<TriggerOptions> options,
    TimeProvider time,
    ILogger<TimerRuntime> logger) : BackgroundService
{
    private static readonly JsonSerializerOptions StatusJson = new(JsonSerializerDefaults.Web);

    // async, so that a settings error (read here) faults the task as before instead of throwing out of StartAsync.
    protected override async Task ExecuteAsync(CancellationToken stoppingToken) =>
        await StandaloneTriggers.RunEachAsync(options.Value.Standalone == true, initializer, catalog.Timers, ScheduleAsync, stoppingToken);

    private async Task ScheduleAsync(TimerFunction timer, CancellationToken stoppingToken)
    {
        var schedule = CronExpression.Parse(timer.Schedule, CronFormat.IncludeSeconds);
        var container = storage.Container(TriggerExtensions.StateContainer);
        var lockBlob = container.GetBlobClient($"timers/{timer.Name}.lock");
        var statusBlob = container.GetBlobClient($"timers/{timer.Name}.json");
        var lease = lockBlob.GetBlobLeaseClient(Guid.NewGuid().ToString());

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!await TryAcquireAsync(lockBlob, lease, stoppingToken))
                {
                    await Task.Delay(options.Value.TimerLease / 3, time, stoppingToken);
                    continue;
                }

                LogLeaseAcquired(logger, timer.Name);
                using var holding = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                var renewal = RenewAsync(timer, lease, holding);
                try
                {
                    await RunWhileLeasedAsync(timer, schedule, statusBlob, holding.Token);
                }
                finally
                {
                    await holding.CancelAsync();
                    await renewal;
                    await ReleaseAsync(lease);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                // The lease was lost: compete for it again.
            }
            catch (Exception ex)
            {
                LogSchedulerFault(logger, ex, timer.Name);
                await Task.Delay(TimeSpan.FromSeconds(2), time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task RunWhileLeasedAsync(TimerFunction timer, CronExpression schedule, BlobClient statusBlob, CancellationToken leased)
    {
        while (true)
        {
            leased.ThrowIfCancellationRequested();
            var (status, etag) = await ReadStatusAsync(statusBlob, leased);
            var now = time.GetUtcNow();

            // A stored occurrence that the current schedule would not produce (the schedule was changed) is dropped.
            if (status?.Next == DateTimeOffset.MaxValue)
            {
                // The schedule has no further occurrence: nothing to do but hold the lease.
                await Task.Delay(TimeSpan.FromDays(1), time, leased);
                continue;
            }

            if (status?.Next is not { } occurrence || schedule.GetNextOccurrence(occurrence.UtcDateTime, inclusive: true) != occurrence.UtcDateTime)
            {
                var first = Next(schedule, now);
                await TryWriteStatusAsync(statusBlob, new TimerStatus(status?.Last, first, now), etag, leased);
                continue;
            }

            if (occurrence > now)
            {
                // Task.Delay takes at most ~49 days; a yearly schedule waits in steps and looks again.
                await Task.Delay(TimeSpan.FromTicks(Math.Min((occurrence - now).Ticks, TimeSpan.FromDays(1).Ticks)), time, leased);
                continue;
            }

            // Due. Claim it first; if another scheduler advanced the status meanwhile, it owns this occurrence.
            var following = Next(schedule, now);
            if (await TryWriteStatusAsync(statusBlob, new TimerStatus(occurrence, following, now), etag, leased) is not { } claim)
            {
                continue;
            }

            var invocation = new TimerInvocation(now - occurrence > options.Value.PastDueAfter, status.Last, following);
            try
            {
                await invoker.RunTimerAsync(timer, invocation, leased);
            }
            catch (OperationCanceledException) when (leased.IsCancellationRequested)
            {
                // Cut off (shutdown, or the scheduling lease lost): the occurrence did not complete, so hand the claim
                // back - the status as it was, conditioned on our claim being the last write - and whoever schedules
                // next runs it (past due if late). If another scheduler has moved the status on, it owns it already.
                // Not cancellable: the token that would cancel it is the one that just fired.
                try
                {
                    if (await TryWriteStatusAsync(statusBlob, new TimerStatus(status.Last, occurrence, time.GetUtcNow()), claim, CancellationToken.None) is not null)
                    {
                        LogClaimReleased(logger, timer.Name, occurrence);
                    }
                }
                catch (RequestFailedException)
                {
                    // Storage refused: the occurrence stays claimed and is skipped, as before there was a hand-back.
                }

                throw;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Already logged by the invoker. A failed occurrence is not retried (as under the Functions host): a
                // handler that fails every time would otherwise run in a loop; the next one comes on schedule.
            }
        }
    }

    private static DateTimeOffset Next(CronExpression schedule, DateTimeOffset after) =>
        schedule.GetNextOccurrence(after, TimeZoneInfo.Utc) ?? DateTimeOffset.MaxValue;

    private async Task<bool> TryAcquireAsync(BlobClient lockBlob, BlobLeaseClient lease, CancellationToken cancellationToken)
    {
        try
        {
            await lockBlob.UploadAsync(BinaryData.Empty, new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            // Exists already (and may be leased): fine.
        }

        try
        {
            await lease.AcquireAsync(options.Value.TimerLease, cancellationToken: cancellationToken);
            return true;
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
            return false;
        }
    }

    private async Task RenewAsync(TimerFunction timer, BlobLeaseClient lease, CancellationTokenSource holding)
    {
        try
        {
            while (true)
            {
                await Task.Delay(options.Value.TimerLease / 3, time, holding.Token);
                await lease.RenewAsync(cancellationToken: holding.Token);
            }
        }
        catch (OperationCanceledException) when (holding.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogLeaseLost(logger, timer.Name, ex.Message);
            await holding.CancelAsync();
        }
    }

    private static async Task ReleaseAsync(BlobLeaseClient lease)
    {
        try
        {
            // Released on a clean stop so another instance takes over at once instead of after the lease expires.
            await lease.ReleaseAsync();
        }
        catch (RequestFailedException)
        {
        }
    }

    private static async Task<(TimerStatus? Status, ETag? ETag)> ReadStatusAsync(BlobClient statusBlob, CancellationToken cancellationToken)
    {
        try
        {
            var content = await statusBlob.DownloadContentAsync(cancellationToken);
            return (content.Value.Content.ToObjectFromJson<TimerStatus>(StatusJson), content.Value.Details.ETag);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return (null, null);
        }
    }

    /// <summary>Writes the status if it is still at <paramref name="etag"/>; the new ETag, or null when someone else wrote first.</summary>
    private static async Task<ETag?> TryWriteStatusAsync(BlobClient statusBlob, TimerStatus status, ETag? etag, CancellationToken cancellationToken)
    {
        var conditions = etag is { } current ? new BlobRequestConditions { IfMatch = current } : new BlobRequestConditions { IfNoneMatch = ETag.All };
        try
        {
            var written = await statusBlob.UploadAsync(BinaryData.FromObjectAsJson(status, StatusJson), new BlobUploadOptions { Conditions = conditions }, cancellationToken);
            return written.Value.ETag;
        }
        catch (RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            return null;
        }
    }

    internal sealed record TimerStatus(DateTimeOffset? Last, DateTimeOffset? Next, DateTimeOffset LastUpdated);

    [LoggerMessage(Level = LogLevel.Information, Message = "This instance now schedules timer {Function}")]
    private static partial void LogLeaseAcquired(ILogger logger, string function);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the scheduling lease of timer {Function}: {Reason}")]
    private static partial void LogLeaseLost(ILogger logger, string function, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Timer {Function} was cut off mid-run; occurrence {Occurrence} is handed back to run again")]
    private static partial void LogClaimReleased(ILogger logger, string function, DateTimeOffset occurrence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Timer {Function} could not be scheduled; retrying")]
    private static partial void LogSchedulerFault(ILogger logger, Exception exception, string function);
}
