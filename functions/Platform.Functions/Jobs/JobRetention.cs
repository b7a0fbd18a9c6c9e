using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Triggers;

namespace Platform.Functions.Jobs;

/// <summary>
/// The <c>JobRetention</c> timer: purges finished jobs older than <see cref="JobOptions.Retention"/>, their files
/// first, then the instance and its history, so nothing of a job outlives it. Safe to run on several instances at
/// once: a purge of what another instance already purged finds nothing.
/// </summary>
public sealed partial class JobRetention(
    TaskHubClient client, JobFiles files, JobFailures failures, IOptions<JobOptions> options, TimeProvider time, ILogger<JobRetention> logger) : ITimerHandler
{
    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken) =>
        await PurgeAsync(time.GetUtcNow() - options.Value.Retention, cancellationToken);

    /// <summary>Purges every finished job created before <paramref name="cutoff"/>; returns how many.</summary>
    public async Task<int> PurgeAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        var purged = 0;
        string? continuation = null;
        do
        {
            var page = await client.QueryPageAsync(new OrchestrationQuery(
                CreatedTo: cutoff,
                Statuses: [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated],
                InstanceIdPrefix: "job:",
                PageSize: 100,
                ContinuationToken: continuation), cancellationToken);
            foreach (var instance in page.Values)
            {
                if (JobIds.TryParse(instance.InstanceId, out var tenant, out var jobId))
                {
                    await files.DeleteAllAsync(tenant, jobId, "", cancellationToken);
                    await failures.DeleteAsync(tenant, jobId, cancellationToken);
                    purged += (await client.PurgeInstanceAsync(instance.InstanceId, cancellation: cancellationToken)).PurgedInstanceCount;
                }
            }

            continuation = page.ContinuationToken;
        }
        while (continuation is not null);

        purged += await PurgePoisonedAsync(cutoff, cancellationToken);
        if (purged > 0)
        {
            LogPurged(logger, purged, cutoff);
        }

        return purged;
    }

    /// <summary>
    /// Jobs the engine gave up on never reach a final runtime status (their poisoned message blocks even a
    /// terminate): past the retention they go too, files and verdict first.
    /// </summary>
    private async Task<int> PurgePoisonedAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        var purged = 0;
        string? continuation = null;
        do
        {
            var page = await client.QueryPageAsync(new OrchestrationQuery(
                CreatedTo: cutoff,
                Statuses: [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended],
                InstanceIdPrefix: "job:",
                PageSize: 100,
                ContinuationToken: continuation), cancellationToken);
            foreach (var instance in page.Values)
            {
                if (JobIds.TryParse(instance.InstanceId, out var tenant, out var jobId) && await failures.GetAsync(tenant, jobId, cancellationToken) is not null)
                {
                    await files.DeleteAllAsync(tenant, jobId, "", cancellationToken);
                    purged += (await client.PurgeInstanceAsync(instance.InstanceId, cancellation: cancellationToken)).PurgedInstanceCount;
                    await failures.DeleteAsync(tenant, jobId, cancellationToken);
                }
            }

            continuation = page.ContinuationToken;
        }
        while (continuation is not null);

        return purged;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Purged {Count} finished jobs created before {Cutoff}")]
    private static partial void LogPurged(ILogger logger, int count, DateTimeOffset cutoff);
}
