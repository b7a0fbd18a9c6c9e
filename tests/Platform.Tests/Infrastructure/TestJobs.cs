using System.Collections.Concurrent;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// Job orchestrations the tests plug into the real durable engine through its registration seam, to drive it into
/// success, failure, cancellation and abrupt stops. Activities record what happened in a per-app <see cref="StepLog"/>.
/// </summary>
public static class TestJobs
{
    public const string NoOp = "test.noop";
    public const string AlwaysFails = "test.always-fails";
    public const string Steps = "test.steps";
    public const string FailureMessage = "the supplier's server said no";

    public static IServiceCollection AddTestJobs(this IServiceCollection services)
    {
        services.AddSingleton<StepLog>();
        services.AddOrchestrator<NoOpJob>(NoOp);
        services.AddOrchestrator<FailingJob>(AlwaysFails);
        services.AddOrchestrator<StepsJob>(Steps);
        services.AddActivity<ThrowingActivity>("test.throw");
        services.AddActivity<StepActivity>("test.step");
        return services;
    }

    /// <param name="Steps">How many step activities a <see cref="Steps"/> job runs.</param>
    public sealed record Parameters(int Steps = 0);

    public sealed class StepLog
    {
        public ConcurrentQueue<string> Runs { get; } = new();

        /// <summary>While unset, step activities wait here (an open gate lets them through).</summary>
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource FirstStepStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int RunsOf(string what) => Runs.Count(r => r == what);
    }

    public sealed class NoOpJob : JobOrchestrator<Parameters>
    {
        protected override Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<Parameters> input, JobRun run) =>
            Task.FromResult(run.Finish(JobOutcome.Succeeded));
    }

    public sealed class FailingJob : JobOrchestrator<Parameters>
    {
        protected override async Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<Parameters> input, JobRun run)
        {
            await context.CallActivityAsync<bool>("test.throw", input.JobId, Retried);
            return run.Finish(JobOutcome.Succeeded);
        }
    }

    public sealed class StepsJob : JobOrchestrator<Parameters>
    {
        protected override async Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<Parameters> input, JobRun run)
        {
            run.Total = input.Parameters.Steps;
            for (var step = 0; step < input.Parameters.Steps; step++)
            {
                if (run.CancelRequested)
                {
                    return run.Finish(JobOutcome.Cancelled) with { Note = $"Cancelled after {run.Processed} of {run.Total} steps." };
                }

                await context.CallActivityAsync<bool>("test.step", $"{input.JobId}/{step}", Retried);
                run.Count(1, 0);
                run.Report("stepping");
            }

            return run.Finish(JobOutcome.Succeeded);
        }
    }

    public sealed class ThrowingActivity(StepLog log) : TaskActivity<string, bool>
    {
        public override Task<bool> RunAsync(TaskActivityContext context, string input)
        {
            log.Runs.Enqueue(input);
            throw new HttpRequestException(FailureMessage);
        }
    }

    public sealed class StepActivity(StepLog log) : TaskActivity<string, bool>
    {
        public override async Task<bool> RunAsync(TaskActivityContext context, string input)
        {
            log.Runs.Enqueue(input);
            log.FirstStepStarted.TrySetResult();
            await log.Gate.Task;
            return true;
        }
    }
}
