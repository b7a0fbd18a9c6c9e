using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.ApiKeys;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;
using Platform.Functions.Workflows;

namespace Platform.Functions.Schedules;

/// <summary>
/// The <c>ScheduleSweep</c> timer: starts every due occurrence of every tenant's schedules, each exactly once.
/// </summary>
/// <remarks>
/// It reads the due index (rows of the <c>scheduledue</c> table in minute partitions up to now) and, per due row:
/// <list type="number">
/// <item>claims the occurrence: one transaction in the tenant's partition that moves the schedule's
/// <c>nextRunAt</c> on, conditioned on the ETag it was read with, and adds the run row, whose key is derived from the
/// occurrence. Of two instances (or two sweeps) only one claim commits;</item>
/// <item>starts the target under an id derived from (tenant, schedule, occurrence), as the schedule's owner: a second
/// start of that id finds the first job instead of running it again;</item>
/// <item>records the outcome on the run row, and only then drops the due row. A crash between claim and start
/// leaves the due row and a <c>pending</c> run, which the next sweep starts - under the same id.</item>
/// </list>
/// Catch-up: a schedule whose occurrences were missed (every instance down) still has the first missed one as its
/// <c>nextRunAt</c>; the claim runs that one and plans the next occurrence after now, so the missed slots make one run.
/// </remarks>
public sealed partial class ScheduleSweep(
    StorageAccount storage,
    ScheduleCommands schedules,
    JobTypes jobTypes,
    SessionGuard guard,
    CallerPermissions permissions,
    ApiKeyStore apiKeys,
    EventPublisher events,
    IServiceProvider services,
    IOptions<ScheduleOptions> options,
    TimeProvider time,
    ILogger<ScheduleSweep> logger) : ITimerHandler
{
    public const string FunctionName = "ScheduleSweep";

    private TableClient Due => storage.Table(ScheduleDueEntity.TableName);

    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken) => await RunDueAsync(cancellationToken);

    /// <summary>Handles the occurrences due now; returns how many due rows it looked at.</summary>
    public async Task<int> RunDueAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var handled = 0;
        var due = Due.QueryAsync<ScheduleDueEntity>(
            TableClient.CreateQueryFilter($"PartitionKey le {ScheduleDueEntity.Bucket(now)}"), maxPerPage: 1000, cancellationToken: cancellationToken);
        await foreach (var entry in due)
        {
            if (handled >= options.Value.MaxDuePerSweep)
            {
                break;
            }

            if (entry.DueAt > now)
            {
                continue;
            }

            handled++;
            try
            {
                await HandleAsync(entry, now, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One tenant's trouble must not hold up the others; the due row stays, so the next sweep tries again.
                LogFailed(logger, ex, entry.Tenant, entry.ScheduleId, entry.DueAt);
            }
        }

        return handled;
    }

    private async Task HandleAsync(ScheduleDueEntity entry, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var tenant = new TenantId(entry.Tenant);
        var rows = schedules.Rows(tenant);
        var schedule = await rows.GetAsync<ScheduleEntity>(ScheduleRows.Schedule(entry.ScheduleId), cancellationToken);
        var run = await rows.GetAsync<ScheduleRunEntity>(ScheduleRows.Run(entry.ScheduleId, entry.DueAt), cancellationToken);
        if (run is not null)
        {
            // Claimed already: by a sweep that crashed before it finished the start (pending), or one that finished it.
            if (run.Status == ScheduleRunEntity.Pending && !await StartAsync(tenant, schedule, run, cancellationToken))
            {
                return;
            }

            await ForgetAsync(entry);
            return;
        }

        if (schedule is not { Enabled: true, NextRunAt: { } next })
        {
            await ForgetAsync(entry);
            return;
        }

        if (next != entry.DueAt)
        {
            // The row of an earlier plan (changed since, or a claim that lost): make sure the current plan has its row.
            await schedules.PlanAsync(tenant, schedule.Id, next, cancellationToken);
            await ForgetAsync(entry);
            return;
        }

        // Catch-up: after missed occurrences the next one is the first after now, not the one after this.
        var following = Timing.Of(schedule)?.Next(next > now ? next : now);
        if (following is { } planned)
        {
            await schedules.PlanAsync(tenant, schedule.Id, planned, cancellationToken);
        }

        schedule.NextRunAt = following;
        schedule.LastRunAt = next;
        schedule.RunCount++;
        run = new ScheduleRunEntity
        {
            RowKey = ScheduleRows.Run(schedule.Id, next),
            Id = ScheduleRows.RunId(tenant, schedule.Id, next),
            ScheduleId = schedule.Id,
            DueAt = next,
            ClaimedAt = now,
        };
        try
        {
            var responses = await rows.SubmitTransactionAsync(
                [new TableTransactionAction(TableTransactionActionType.UpdateReplace, schedule, schedule.ETag), new TableTransactionAction(TableTransactionActionType.Add, run)],
                cancellationToken);
            schedule.ETag = responses.Value[0].Headers.ETag ?? default;
            run.ETag = responses.Value[1].Headers.ETag ?? default;
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412)
        {
            // Claimed by another instance, or the schedule changed meanwhile: whoever holds it now handles it.
            return;
        }

        if (await StartAsync(tenant, schedule, run, cancellationToken))
        {
            await ForgetAsync(entry);
        }

        await PruneAsync(rows, schedule, cancellationToken);
    }

    /// <summary>
    /// Starts a claimed run and records how it went; false when it could not be started for a passing reason and is
    /// to be tried again by the next sweep.
    /// </summary>
    private async Task<bool> StartAsync(TenantId tenant, ScheduleEntity? schedule, ScheduleRunEntity run, CancellationToken cancellationToken)
    {
        string? jobId = null, runId = null, error, status = ScheduleRunEntity.Failed;
        try
        {
            (status, jobId, runId, error) = await StartTargetAsync(tenant, schedule, run, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            if (time.GetUtcNow() - run.DueAt < options.Value.GiveUpAfter)
            {
                LogStartFailed(logger, ex, tenant.Value, run.ScheduleId, run.DueAt);
                return false;
            }

            error = $"The run could not be started within {options.Value.GiveUpAfter} of its due time: {ex.Message}";
        }

        run.Status = status;
        run.JobId = jobId;
        run.RunId = runId;
        run.WorkflowId = runId is null ? null : schedule?.WorkflowId;
        run.Error = error;
        run.Settled = status == ScheduleRunEntity.Failed;
        run.StartedAt = status == ScheduleRunEntity.Failed ? null : time.GetUtcNow();
        try
        {
            if (status == ScheduleRunEntity.Failed)
            {
                // A run that did not start is worth telling the tenant (webhooks, audit): the event commits with the
                // run's final status, so it is published once however many instances recorded the same failure.
                await events.CommitAsync(schedules.Rows(tenant), new TableTransactionAction(TableTransactionActionType.UpdateReplace, run, run.ETag),
                    [new PlatformEvent("schedule.run.failed", new Actor("schedule", run.ScheduleId, null) { OnBehalfOf = schedule?.RunsAs }, "schedule", run.ScheduleId,
                        new Dictionary<string, object?> { ["runId"] = run.Id, ["dueAt"] = run.DueAt, ["error"] = error })],
                    cancellationToken);
            }
            else
            {
                await schedules.Rows(tenant).UpdateAsync(run, run.ETag, cancellationToken);
            }
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
            // Recorded by another instance that started the same id, or deleted with its schedule.
        }

        return true;
    }

    private async Task<(string Status, string? JobId, string? RunId, string? Error)> StartTargetAsync(
        TenantId tenant, ScheduleEntity? schedule, ScheduleRunEntity run, CancellationToken cancellationToken)
    {
        if (schedule is null)
        {
            return Failed("The schedule was deleted before this run started.");
        }

        var caller = ScheduleCommands.CallerOf(tenant, schedule);
        if (!(await guard.GetStandingAsync(caller, cancellationToken)).UserActive)
        {
            return Failed($"The user this schedule acts for ({schedule.RunsAs}) is deleted or disabled; change its target to act for someone else.");
        }

        if (schedule.RunsAsKey is { } keyId && !await apiKeys.IsActiveAsync(tenant, keyId, time.GetUtcNow(), cancellationToken))
        {
            return Failed($"The API key that set this schedule's target ({keyId}) was revoked or has expired.");
        }

        if (schedule.TargetKind == TargetInput.Workflow)
        {
            // Workflows are a capability of their own; without it registered, a workflow target cannot run.
            if (services.GetService<IWorkflowRunStarter>() is not { } workflows)
            {
                return Failed("Workflows are not available.");
            }

            if (!(await permissions.ForAsync(caller, cancellationToken)).Contains(Permissions.WorkflowsManage))
            {
                return Failed($"The user this schedule acts for no longer holds {Permissions.WorkflowsManage}.");
            }

            var started = await workflows.StartAsync(caller, schedule.WorkflowId!, schedule.PayloadJson, run.Id, cancellationToken);
            return started.Failed(out var refused, out var workflowRunId)
                ? Failed(refused.Message)
                : (ScheduleRunEntity.Started, null, workflowRunId, null);
        }

        var outcome = await jobTypes.StartAsync(caller, schedule.JobType!, schedule.PayloadJson, run.Id, cancellationToken);
        if (outcome.Failed(out var error, out var job))
        {
            return Failed(error.Fields is { IsValid: false } fields
                ? "The job's parameters are no longer valid: " + string.Join("; ", fields.Errors.Select(e => $"{e.Key} {string.Join(", ", e.Value)}"))
                : error.Status == 403 ? $"The user this schedule acts for may no longer start it. {error.Message}" : error.Message);
        }

        return (job.Status, job.Id, null, null);
    }

    private static (string, string?, string?, string?) Failed(string reason) => (ScheduleRunEntity.Failed, null, null, reason);

    private async Task ForgetAsync(ScheduleDueEntity entry)
    {
        try
        {
            await Due.DeleteEntityAsync(entry.PartitionKey, entry.RowKey, entry.ETag, CancellationToken.None);
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
        }
    }

    /// <summary>Keeps the newest <see cref="ScheduleOptions.RunsKept"/> runs; looks every tenth run, so the read is amortised.</summary>
    private async Task PruneAsync(TenantPartition rows, ScheduleEntity schedule, CancellationToken cancellationToken)
    {
        var kept = options.Value.RunsKept;
        if (schedule.RunCount <= kept || schedule.RunCount % 10 != 0)
        {
            return;
        }

        var seen = 0;
        await foreach (var run in rows.QueryAsync<ScheduleRunEntity>(ScheduleRows.RunPrefix(schedule.Id), cancellationToken: cancellationToken))
        {
            if (++seen > kept)
            {
                try
                {
                    await rows.DeleteAsync(run.RowKey, cancellationToken: cancellationToken);
                }
                catch (RequestFailedException ex) when (ex.Status == 404)
                {
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Schedule {ScheduleId} of tenant {Tenant}, due {DueAt}: the sweep failed; the next one tries again")]
    private static partial void LogFailed(ILogger logger, Exception exception, string tenant, string scheduleId, DateTimeOffset dueAt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Schedule {ScheduleId} of tenant {Tenant}, due {DueAt}: its run could not be started; the next sweep tries again")]
    private static partial void LogStartFailed(ILogger logger, Exception exception, string tenant, string scheduleId, DateTimeOffset dueAt);
}
