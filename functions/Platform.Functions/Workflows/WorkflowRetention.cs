using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Triggers;

namespace Platform.Functions.Workflows;

/// <summary>
/// The <c>WorkflowRetention</c> timer: purges finished runs (their instance and history) created before the jobs'
/// retention (<see cref="JobOptions.Retention"/>), as <see cref="JobRetention"/> does for jobs. The jobs a run started
/// are jobs, purged by that timer. Safe on several instances at once.
/// </summary>
public sealed partial class WorkflowRetention(TaskHubClient client, IOptions<JobOptions> options, TimeProvider time, ILogger<WorkflowRetention> logger) : ITimerHandler
{
    private static readonly OrchestrationRuntimeStatus[] Finished =
        [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated];

    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken) =>
        await PurgeAsync(time.GetUtcNow() - options.Value.Retention, cancellationToken);

    public async Task<int> PurgeAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        var purged = 0;
        string? continuation = null;
        do
        {
            var page = await client.QueryPageAsync(new OrchestrationQuery(
                CreatedTo: cutoff, Statuses: Finished, InstanceIdPrefix: "workflow:", PageSize: 100, ContinuationToken: continuation), cancellationToken);
            foreach (var instance in page.Values)
            {
                if (WorkflowRunIds.TryParse(instance.InstanceId, out _, out _, out _))
                {
                    purged += (await client.PurgeInstanceAsync(instance.InstanceId, cancellation: cancellationToken)).PurgedInstanceCount;
                }
            }

            continuation = page.ContinuationToken;
        }
        while (continuation is not null);

        if (purged > 0)
        {
            LogPurged(logger, purged, cutoff);
        }

        return purged;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Purged {Count} finished workflow runs created before {Cutoff}")]
    private static partial void LogPurged(ILogger logger, int count, DateTimeOffset cutoff);
}
