using DurableTask.Core;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;

namespace Platform.Functions.Jobs.Engine;

/// <summary>
/// Runs the durable worker in-process. It starts once Kestrel is listening (the Functions host gives a custom
/// handler 30-60 s to answer, and creating the hub's queues and tables and taking partition leases must not delay
/// that), retries the start while storage is unreachable, and stops gracefully: in-flight work items finish or
/// their messages are handed back for another instance.
/// </summary>
internal sealed partial class DurableWorkerHost(
    TaskHub hub,
    DurableObjects objects,
    DurableLogging logging,
    TaskHubClient client,
    JobFailures failures,
    Events.EventPublisher events,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    IOptions<JobOptions> options,
    ILogger<DurableWorkerHost> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private int _disposed;
    private Task _running = Task.CompletedTask;
    private TaskHubWorker? _worker;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.RunWorker)
        {
            lifetime.ApplicationStarted.Register(() => _running = Task.Run(() => RunAsync(_stopping.Token)));
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // A stop after the container disposed this service finds nothing left to stop (it threw on the disposed token
        // once in a full test run, when a test host stopped its app: the order was not found).
        if (Volatile.Read(ref _disposed) == 1)
        {
            return;
        }

        await _stopping.CancelAsync();
        try
        {
            await _running.WaitAsync(options.Value.StopTimeout, cancellationToken);
        }
        catch (Exception ex) when (ex is OperationCanceledException or TimeoutException)
        {
        }

        if (_worker is { } worker)
        {
            // DTFx's forced stop waits behind a graceful one, so the bound is ours: past it the process goes on
            // stopping, and the work items still in flight come back to another instance after the visibility timeout.
            var graceful = worker.StopAsync(isForced: false);
            if (await Task.WhenAny(graceful, Task.Delay(options.Value.StopTimeout, cancellationToken)) != graceful)
            {
                LogForcedStop(logger, options.Value.StopTimeout);
            }
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // Disposed without a stop, the start loop still ends.
            _stopping.Cancel();
            _stopping.Dispose();
        }
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var delay = TimeSpan.FromSeconds(1);
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var service = await hub.ServiceAsync(stopping);
                var worker = new TaskHubWorker(service, objects.Orchestrations(), objects.Activities(), logging.Factory)
                {
                    // Failures carry type and message as data (what the jobs API shows), not serialized exceptions.
                    ErrorPropagationMode = ErrorPropagationMode.UseFailureDetails,
                };
                await worker.StartAsync();
                _worker = worker;
                LogStarted(logger, hub.Name, hub.Settings.WorkerId);
                break;
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                LogStartFailed(logger, ex, delay);
                await Task.Delay(delay, stopping);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMinutes(1).Ticks));
            }
        }

        // Poisoned jobs are failed with the reason rather than left "running" behind a message nobody can process.
        await foreach (var poisoned in logging.PoisonedInstances.ReadAllAsync(stopping))
        {
            try
            {
                if (!JobIds.TryParse(poisoned.InstanceId, out var tenant, out var jobId))
                {
                    continue;
                }

                var reason = $"The engine gave up on this job: one of its messages was delivered {poisoned.DequeueCount} times without being processed.";
                // The verdict first (so a job whose failure is announced already reads as poisoned), then the event -
                // also when another instance recorded the verdict: under an id of the job's own, so a crash between
                // the two publishes it when the message comes back, and subscribers act on that id once.
                var recorded = await failures.RecordAsync(tenant, jobId, reason, time.GetUtcNow(), stopping);
                Storage.Ids.TryReadTime(jobId, out var createdAt);
                await events.PublishAsync(tenant, new Events.PlatformEvent("job.failed", Events.Actor.System, "job", jobId,
                    new Dictionary<string, object?> { ["error"] = reason }) { StableId = Storage.Ids.Derived(createdAt, $"job.poisoned\n{tenant.Value}\n{jobId}") }, stopping);
                if (!recorded)
                {
                    // Another instance gave the verdict and terminates the instance.
                    continue;
                }

                LogPoisoned(logger, poisoned.InstanceId, poisoned.DequeueCount);

                // Best effort: a terminate queues behind the poisoned message, so it ends the instance only when the
                // poison was an activity's; the recorded verdict is what the job shows either way.
                await client.TerminateInstanceAsync(poisoned.InstanceId, new TerminateInstanceOptions(JobOutcome.Poisoned(reason)), stopping);
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                LogPoisonTerminateFailed(logger, ex, poisoned.InstanceId);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Durable worker started on task hub {TaskHub} as {WorkerId}")]
    private static partial void LogStarted(ILogger logger, string taskHub, string workerId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Durable worker could not start; retrying in {Delay}")]
    private static partial void LogStartFailed(ILogger logger, Exception exception, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Durable worker did not stop within {Timeout}; its work in flight is handed back through the queues")]
    private static partial void LogForcedStop(ILogger logger, TimeSpan timeout);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job instance {InstanceId} failed: a message was dequeued {DequeueCount} times (poison)")]
    private static partial void LogPoisoned(ILogger logger, string instanceId, long dequeueCount);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not fail poisoned job instance {InstanceId}")]
    private static partial void LogPoisonTerminateFailed(ILogger logger, Exception exception, string instanceId);
}
