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
    TaskHubClient client, JobFiles files, JobFailures failures, IOptions<JobOptions> options, TimeProvider time, ILogger<JobRetention> logger,
    IEnumerable<IJobPurgeListener> listeners) : ITimerHandler
{
    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken) =>
        await PurgeAsync(time.GetUtcNow() - options.Value.Retention, cancellationToken);

    /// <summary>
    /// Purges every finished job created before <paramref name="cutoff"/>, and every job the engine gave up on (its
    /// poisoned message keeps it from ever reaching a final runtime status, even by terminate); returns how many.
    /// </summary>
    public async Task<int> PurgeAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        var purged = await PurgeWhereAsync(cutoff, Finished, (_, _) => Task.FromResult(true), cancellationToken);
        purged += await PurgeWhereAsync(cutoff, Unfinished,
            async (tenant, jobId) => await failures.GetAsync(tenant, jobId, cancellationToken) is not null, cancellationToken);
        if (purged > 0)
        {
            LogPurged(logger, purged, cutoff);
        }

        return purged;
    }

    private static readonly OrchestrationRuntimeStatus[] Finished =
        [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated];

    private static readonly OrchestrationRuntimeStatus[] Unfinished =
        [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended];

    /// <summary>Purges the job instances of these statuses created before the cutoff that <paramref name="due"/> picks: files, the instance, then the verdict.</summary>
    private async Task<int> PurgeWhereAsync(
        DateTimeOffset cutoff, OrchestrationRuntimeStatus[] statuses, Func<Storage.TenantId, string, Task<bool>> due, CancellationToken cancellationToken)
    {
        var purged = 0;
        string? continuation = null;
        do
        {
            var page = await client.QueryPageAsync(new OrchestrationQuery(
                CreatedTo: cutoff, Statuses: statuses, InstanceIdPrefix: "job:", PageSize: 100, ContinuationToken: continuation), cancellationToken);
            foreach (var instance in page.Values)
            {
                if (JobIds.TryParse(instance.InstanceId, out var tenant, out var jobId) && await due(tenant, jobId))
                {
                    // The verdict goes last: a purge cut off part-way is found again by the next run.
                    await files.DeleteAllAsync(tenant, jobId, "", cancellationToken);
                    foreach (var listener in listeners)
                    {
                        await listener.PurgingAsync(tenant, jobId, cancellationToken);
                    }

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

/// <summary>
/// What a capability keeps about a job outside it (a report's row in the reports list): told when retention purges
/// the job, after its files and before its instance, so nothing points at files that are gone.
/// </summary>
public interface IJobPurgeListener
{
    Task PurgingAsync(Storage.TenantId tenant, string jobId, CancellationToken cancellationToken);
}
