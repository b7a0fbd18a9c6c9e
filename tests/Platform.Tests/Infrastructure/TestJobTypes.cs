using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Jobs;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// Job types the tests plug into the real job engine through its one registration seam, to drive it into success,
/// failure and shutdown. They record what happened to them in a per-app <see cref="JobLog"/>.
/// </summary>
public static class TestJobTypes
{
    public const string Succeeds = "test.succeeds";
    public const string AlwaysFails = "test.always-fails";
    public const string BlocksOnFirstAttempt = "test.blocks-first-attempt";
    public const string FailureMessage = "the supplier's server said no";

    public static IServiceCollection AddTestJobTypes(this IServiceCollection services)
    {
        services.AddSingleton<JobLog>();
        services.AddJobType<SucceedingJob>(Succeeds);
        services.AddJobType<FailingJob>(AlwaysFails);
        services.AddJobType<BlockingJob>(BlocksOnFirstAttempt);
        return services;
    }

    public sealed class JobLog
    {
        public ConcurrentQueue<JobContext> Runs { get; } = new();
        public TaskCompletionSource FirstBlockingRunStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource FirstBlockingRunCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int RunsOf(string jobId) => Runs.Count(r => r.JobId == jobId);
    }

    private sealed class SucceedingJob(JobLog log) : IJobType
    {
        public Task RunAsync(JobContext job, CancellationToken cancellationToken)
        {
            log.Runs.Enqueue(job);
            return Task.CompletedTask;
        }
    }

    private sealed class FailingJob(JobLog log) : IJobType
    {
        public Task RunAsync(JobContext job, CancellationToken cancellationToken)
        {
            log.Runs.Enqueue(job);
            throw new HttpRequestException(FailureMessage);
        }
    }

    private sealed class BlockingJob(JobLog log) : IJobType
    {
        public async Task RunAsync(JobContext job, CancellationToken cancellationToken)
        {
            log.Runs.Enqueue(job);
            if (job.Attempt == 1)
            {
                log.FirstBlockingRunStarted.TrySetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    log.FirstBlockingRunCancelled.TrySetResult();
                    throw;
                }
            }
        }
    }
}
