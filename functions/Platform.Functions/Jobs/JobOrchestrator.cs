using Microsoft.DurableTask;
using Platform.Functions.Events;

namespace Platform.Functions.Jobs;

/// <summary>
/// What every job orchestration shares: it reports progress in its custom status, notices a cancel request between
/// steps, turns a failed activity into a <c>failed</c> job with the reason, and announces how it ended through the
/// event path (<c>job.succeeded</c>, <c>job.completed_with_errors</c>, <c>job.failed</c>, <c>job.cancelled</c>).
/// </summary>
public abstract class JobOrchestrator<TParameters> : TaskOrchestrator<JobInput<TParameters>, JobOutcome>
{
    public const string CancelEvent = "cancel";

    /// <summary>
    /// Activities are retried on failure: a storage hiccup costs a retry, not the job. An activity failing every
    /// attempt fails the job.
    /// </summary>
    public static readonly TaskOptions Retried = TaskOptions.FromRetryPolicy(new RetryPolicy(
        maxNumberOfAttempts: 4, firstRetryInterval: TimeSpan.FromSeconds(1), backoffCoefficient: 2));

    public sealed override async Task<JobOutcome> RunAsync(TaskOrchestrationContext context, JobInput<TParameters> input)
    {
        var run = new JobRun(context, context.WaitForExternalEvent<bool>(CancelEvent));
        run.Report("starting");
        JobOutcome outcome;
        try
        {
            outcome = await RunJobAsync(context, input, run);
        }
        catch (TaskFailedException failed)
        {
            outcome = run.Finish(JobOutcome.Failed) with { Error = Describe(failed.FailureDetails) };
        }

        try
        {
            await context.CallActivityAsync(JobFinished.Name, new JobFinishedInput(input.TenantId, input.JobId, context.Name.Name, input.Actor, outcome, context.CurrentUtcDateTime), Retried);
        }
        catch (TaskFailedException)
        {
            // The work is done and its files are written: an event that could not be published does not undo that.
        }

        return outcome;
    }

    protected abstract Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<TParameters> input, JobRun run);

    private static string Describe(TaskFailureDetails details)
    {
        var innermost = details;
        while (innermost.InnerFailure is { } inner)
        {
            innermost = inner;
        }

        var message = innermost.ErrorMessage;
        return message.Length <= 1000 ? message : message[..1000];
    }
}

/// <summary>A running job's counts and cancel flag, reported through the orchestration's custom status.</summary>
public sealed class JobRun(TaskOrchestrationContext context, Task<bool> cancelRequest)
{
    public DateTimeOffset StartedAt { get; } = context.CurrentUtcDateTime;

    public long Total { get; set; }

    public long Succeeded { get; private set; }

    public long Failed { get; private set; }

    public long Processed => Succeeded + Failed;

    /// <summary>True once a cancel was requested; the job stops at its next step boundary.</summary>
    public bool CancelRequested => cancelRequest.IsCompleted;

    public JobProgress Progress => new(Total, Processed, Succeeded, Failed);

    public void Count(long succeeded, long failed)
    {
        Succeeded += succeeded;
        Failed += failed;
    }

    public void Report(string phase) => context.SetCustomStatus(new JobRunningStatus(Progress, StartedAt, phase));

    public JobOutcome Finish(string status) => new(status, Progress, StartedAt);
}

/// <param name="FinishedAt">The orchestration's time at the end (the same on every replay): the time of the event's stable id.</param>
public sealed record JobFinishedInput(string TenantId, string JobId, string Type, JobActor Actor, JobOutcome Outcome, DateTimeOffset? FinishedAt = null);

/// <summary>Publishes how a job ended, as the actor who started it, on the one event path (audit, webhooks).</summary>
public sealed class JobFinished(EventPublisher events) : TaskActivity<JobFinishedInput, bool>
{
    public const string Name = "job.finished";

    public override async Task<bool> RunAsync(TaskActivityContext context, JobFinishedInput input)
    {
        var tenant = new Storage.TenantId(input.TenantId);
        var outcome = input.Outcome;
        await events.PublishAsync(tenant, new PlatformEvent(
            "job." + outcome.Status,
            input.Actor.ToCaller(tenant).Actor,
            "job",
            input.JobId,
            new Dictionary<string, object?>
            {
                ["type"] = input.Type,
                ["total"] = outcome.Progress.Total,
                ["succeeded"] = outcome.Progress.Succeeded,
                ["failed"] = outcome.Progress.Failed,
                ["error"] = outcome.Error,
            })
        {
            // The activity runs at least once: a run after a crash publishes the same event, which subscribers act on once.
            StableId = Storage.Ids.Derived(input.FinishedAt ?? outcome.StartedAt ?? DateTimeOffset.UnixEpoch, $"job.finished\n{input.TenantId}\n{input.JobId}"),
        },
            CancellationToken.None);
        return true;
    }
}
