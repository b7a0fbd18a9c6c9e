using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Workflows;

namespace Platform.Functions.Schedules;

/// <summary>
/// Creates, changes and deletes schedules, and plans their next occurrence in the due index. Every change commits with
/// its event; the due-index row of a new plan is written first, so a crash leaves at most a stale hint (which the
/// sweep drops), never a plan without its row.
/// </summary>
public sealed class ScheduleCommands(
    StorageAccount storage,
    JobTypes jobTypes,
    CallerPermissions permissions,
    EventPublisher events,
    IServiceProvider services,
    IOptions<ScheduleOptions> options,
    TimeProvider time)
{
    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(ScheduleRows.TableName).For(tenant);

    private TableClient Due => storage.Table(ScheduleDueEntity.TableName);

    public async Task<ScheduleEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        ScheduleRows.IsWellFormed(id) ? await Rows(tenant).GetAsync<ScheduleEntity>(ScheduleRows.Schedule(id), cancellationToken) : null;

    /// <summary>Every schedule of the tenant, oldest first (at most <see cref="ScheduleOptions.MaxSchedulesPerTenant"/>).</summary>
    public async Task<IReadOnlyList<ScheduleEntity>> ListAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var all = new List<ScheduleEntity>();
        await foreach (var schedule in Rows(tenant).QueryAsync<ScheduleEntity>(ScheduleRows.SchedulePrefix, cancellationToken: cancellationToken))
        {
            all.Add(schedule);
        }

        return all;
    }

    /// <summary>A page of a schedule's runs, newest first; the row key to continue after, when more remain.</summary>
    public async Task<(IReadOnlyList<ScheduleRunEntity> Items, string? Next)> RunsAsync(
        TenantId tenant, string scheduleId, int size, string? after, CancellationToken cancellationToken)
    {
        var prefix = ScheduleRows.RunPrefix(scheduleId);
        var from = after is not null && after.StartsWith(prefix, StringComparison.Ordinal) ? after : prefix;
        var to = prefix + char.MaxValue;
        var items = new List<ScheduleRunEntity>();
        await foreach (var run in Rows(tenant).QueryWhereAsync<ScheduleRunEntity>($"RowKey gt {from} and RowKey lt {to}", maxPerPage: Math.Min(size + 1, 1000), cancellationToken))
        {
            if (items.Count == size)
            {
                return (items, items[^1].RowKey);
            }

            items.Add(run);
        }

        return (items, null);
    }

    public Task<Outcome<ScheduleEntity>> CreateAsync(Caller caller, ScheduleInput input, CancellationToken cancellationToken) =>
        CreateAsync(caller, input, id: null, cancellationToken);

    /// <param name="id">
    /// The schedule's id when the caller has one that stays the same if it asks again (a subscriber handling an event
    /// delivered twice): a schedule that already has it is answered as it is. Null: a new id.
    /// </param>
    public async Task<Outcome<ScheduleEntity>> CreateAsync(Caller caller, ScheduleInput input, string? id, CancellationToken cancellationToken)
    {
        if (id is not null && await GetAsync(caller.Tenant, id, cancellationToken) is { } made)
        {
            return made;
        }

        var validation = new Validation();
        var name = validation.Text("name", input.Name, ScheduleInput.MaxNameLength);
        var now = time.GetUtcNow();
        Timing? timing = null;
        if (input.HasRunAt && input.Cron is not null)
        {
            validation.Add("runAt", "give cron (recurring) or runAt (once), not both");
        }
        else
        {
            timing = input.HasRunAt ? Timing.Once(input.RunAt, now, validation) : Timing.Recurring(input.Cron, input.TimeZone, now, validation);
        }

        if (input.Target is null)
        {
            validation.Add("target", "is required: { \"job\": { type, parameters } } or { \"workflow\": { id, input } }");
        }

        var permission = input.Target is { } target ? CheckTarget(target, validation) : null;
        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        if (await RefusalAsync(caller, input.Target!, permission!, cancellationToken) is { } refused)
        {
            return refused;
        }

        var given = id is not null;
        id ??= Ids.New(time);
        var enabled = input.Enabled ?? true;
        var schedule = new ScheduleEntity
        {
            RowKey = ScheduleRows.Schedule(id),
            Id = id,
            Name = name,
            Cron = timing!.Cron,
            TimeZone = timing.Cron is null ? null : timing.TimeZone,
            RunAt = timing.RunAt,
            Enabled = enabled,
            NextRunAt = enabled ? timing.Next(now) : null,
            CreatedBy = caller.UserId,
            CreatedAt = now,
            UpdatedAt = now,
        };
        SetTarget(schedule, caller, input.Target!);

        if (schedule.NextRunAt is { } next)
        {
            await PlanAsync(caller.Tenant, id, next, cancellationToken);
        }

        // The count row and the schedule in one transaction: two creates at once cannot both take the last place.
        var rows = Rows(caller.Tenant);
        var limit = options.Value.MaxSchedulesPerTenant;
        for (var attempt = 0; ; attempt++)
        {
            var count = await rows.GetAsync<ScheduleCountEntity>(ScheduleRows.CountKey, cancellationToken);
            if ((count?.Count ?? 0) >= limit)
            {
                return CommandError.Conflict("schedule_limit_reached", $"A tenant has at most {limit} schedules; delete one you no longer use.");
            }

            var counter = new ScheduleCountEntity { Count = (count?.Count ?? 0) + 1 };
            TableTransactionAction counting = count is null
                ? new(TableTransactionActionType.Add, counter)
                : new(TableTransactionActionType.UpdateReplace, counter, count.ETag);
            try
            {
                var responses = await events.CommitAsync(rows, [counting, new(TableTransactionActionType.Add, schedule)],
                    [new PlatformEvent("schedule.created", caller.Actor, "schedule", id, Described(schedule))], cancellationToken);
                schedule.ETag = responses.Value[1].Headers.ETag ?? default;
                return schedule;
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412 && attempt < 10)
            {
                // The same create, made meanwhile under the id the caller gave (a second delivery of its event).
                if (given && ex.Status == 409 && ex.FailedTransactionActionIndex == 1 && await GetAsync(caller.Tenant, id, cancellationToken) is { } racing)
                {
                    return racing;
                }
            }
        }
    }

    public async Task<Outcome<ScheduleEntity>> UpdateAsync(
        Caller caller, string id, ScheduleInput input, Func<ETag, bool> precondition, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        string? name = input.Name is null ? null : validation.Text("name", input.Name, ScheduleInput.MaxNameLength);
        if (input.HasCron && input.HasRunAt && input.Cron is not null && input.RunAt is not null)
        {
            validation.Add("runAt", "give cron (recurring) or runAt (once), not both");
        }

        var permission = input.Target is { } target ? CheckTarget(target, validation) : null;
        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        if (input.Target is { } chosen && await RefusalAsync(caller, chosen, permission!, cancellationToken) is { } refused)
        {
            return refused;
        }

        for (var attempt = 0; ; attempt++)
        {
            if (await GetAsync(caller.Tenant, id, cancellationToken) is not { } schedule)
            {
                return CommandError.NotFound("schedule");
            }

            if (!precondition(schedule.ETag))
            {
                return CommandError.Stale("schedule");
            }

            var now = time.GetUtcNow();
            var changes = new Dictionary<string, object?>();
            var timingChanged = false;
            Timing? timing;
            if (input.HasRunAt && input.RunAt is not null)
            {
                // Becomes (or stays) a one-off.
                timing = Timing.Once(input.RunAt, now, validation);
                timingChanged = true;
            }
            else if ((input.HasCron && input.Cron is not null) || input.HasTimeZone)
            {
                var cron = input.HasCron && input.Cron is not null ? input.Cron : schedule.Cron;
                if (cron is null)
                {
                    validation.Add("timeZone", "applies to a cron schedule; this one runs once at runAt (send cron too to make it recurring)");
                    return CommandError.Invalid(validation);
                }

                timing = Timing.Recurring(cron, input.HasTimeZone ? input.TimeZone : schedule.TimeZone, now, validation);
                timingChanged = true;
            }
            else
            {
                timing = Timing.Of(schedule);
            }

            if (!validation.IsValid || timing is null)
            {
                return CommandError.Invalid(validation);
            }

            var enabled = input.Enabled ?? schedule.Enabled;
            if (enabled && !schedule.Enabled && timing.Next(now) is null)
            {
                return CommandError.Invalid(validation.Add("runAt", "has passed: give a new runAt to enable this one-off schedule again"));
            }

            if (input.Target is { } newTarget)
            {
                // Whoever sets what a schedule does is who it does it as: no one can point another user's rights at a new target.
                SetTarget(schedule, caller, newTarget);
                changes["target"] = TargetSummary(schedule);
                changes["runsAs"] = schedule.RunsAs;
            }
            else if ((timingChanged || (enabled && !schedule.Enabled)) && !RunsAs(schedule, caller))
            {
                // Likewise whoever decides when it runs, or turns it back on: otherwise a user could run another's schedule,
                // with that user's rights, at times that user never chose (or after they switched it off).
                var current = CurrentTarget(schedule);
                if (CheckTarget(current, validation) is not { } needed)
                {
                    return CommandError.Invalid(validation);
                }

                if (await RefusalAsync(caller, current, needed, cancellationToken) is { } notYours)
                {
                    return notYours;
                }

                SetTarget(schedule, caller, current);
                changes["runsAs"] = schedule.RunsAs;
            }

            if (name is not null)
            {
                schedule.Name = name;
                changes["name"] = name;
            }

            if (timingChanged)
            {
                schedule.Cron = timing.Cron;
                schedule.TimeZone = timing.Cron is null ? null : timing.TimeZone;
                schedule.RunAt = timing.RunAt;
                changes["cron"] = schedule.Cron;
                changes["timeZone"] = schedule.TimeZone;
                changes["runAt"] = schedule.RunAt;
            }

            if (enabled != schedule.Enabled)
            {
                changes["enabled"] = enabled;
            }

            // A new plan whenever timing or enablement changed; a plan already due stays as it is (the sweep is on it).
            if (timingChanged || enabled != schedule.Enabled)
            {
                schedule.Enabled = enabled;
                schedule.NextRunAt = enabled ? timing.Next(now) : null;
                if (schedule.NextRunAt is { } next)
                {
                    await PlanAsync(caller.Tenant, id, next, cancellationToken);
                }
            }

            schedule.UpdatedAt = now;
            try
            {
                await events.CommitAsync(Rows(caller.Tenant), new TableTransactionAction(TableTransactionActionType.UpdateReplace, schedule, schedule.ETag),
                    [new PlatformEvent("schedule.updated", caller.Actor, "schedule", id, changes)], cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 412 && attempt < 5)
            {
                // Changed meanwhile (a sweep claimed an occurrence): read it again; an If-Match the client sent now fails.
                continue;
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                return CommandError.Stale("schedule");
            }

            return schedule;
        }
    }

    public async Task<Outcome<bool>> DeleteAsync(Caller caller, string id, Func<ETag, bool> precondition, CancellationToken cancellationToken)
    {
        if (await GetAsync(caller.Tenant, id, cancellationToken) is not { } schedule)
        {
            return CommandError.NotFound("schedule");
        }

        if (!precondition(schedule.ETag))
        {
            return CommandError.Stale("schedule");
        }

        var rows = Rows(caller.Tenant);
        for (var attempt = 0; ; attempt++)
        {
            var count = await rows.GetAsync<ScheduleCountEntity>(ScheduleRows.CountKey, cancellationToken);
            var actions = new List<TableTransactionAction> { new(TableTransactionActionType.Delete, schedule, schedule.ETag) };
            if (count is not null)
            {
                actions.Add(new(TableTransactionActionType.UpdateReplace, new ScheduleCountEntity { Count = Math.Max(0, count.Count - 1) }, count.ETag));
            }

            try
            {
                await events.CommitAsync(rows, actions, [new PlatformEvent("schedule.deleted", caller.Actor, "schedule", id)], cancellationToken);
                break;
            }
            catch (TableTransactionFailedException ex) when (ex.FailedTransactionActionIndex == 0 && attempt < 5)
            {
                // Changed meanwhile (a sweep claimed an occurrence): judge the current row; an If-Match the client sent now fails.
                if (await GetAsync(caller.Tenant, id, cancellationToken) is not { } current)
                {
                    return CommandError.NotFound("schedule");
                }

                if (!precondition(current.ETag))
                {
                    return CommandError.Stale("schedule");
                }

                schedule = current;
            }
            catch (TableTransactionFailedException ex) when (ex.FailedTransactionActionIndex == 0)
            {
                return CommandError.Stale("schedule");
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 412 && attempt < 10)
            {
                // The count row moved (another create or delete): count again.
            }
        }

        // Its runs go with it. The due-index row stays until the sweep finds no schedule for it and drops it.
        await foreach (var run in rows.QueryAsync<ScheduleRunEntity>(ScheduleRows.RunPrefix(id), cancellationToken: cancellationToken))
        {
            try
            {
                await rows.DeleteAsync(run.RowKey, cancellationToken: cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
            }
        }

        return true;
    }

    /// <summary>
    /// A workflow run shows its run's status as a job run shows its job's: read from the run while it is unfinished, and
    /// kept once it finished (or was purged by retention), so a list reads only the runs still going.
    /// </summary>
    public async Task FollowWorkflowRunAsync(TenantId tenant, ScheduleRunEntity run, CancellationToken cancellationToken)
    {
        if (run.Settled || run.RunId is not { } runId || run.WorkflowId is not { } workflowId || services.GetService<IWorkflowRunStarter>() is not { } workflows)
        {
            return;
        }

        var state = await workflows.StatusAsync(tenant, workflowId, runId, cancellationToken);
        var changed = state is null || run.Status != state.Status || run.Error != state.Error;
        if (state is null)
        {
            run.Settled = true;
        }
        else
        {
            run.Status = state.Status;
            run.Error = state.Error;
            run.Settled = state.IsFinished;
        }

        if (changed)
        {
            try
            {
                await Rows(tenant).UpdateAsync(run, run.ETag, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                // Written meanwhile; the next read sees it.
            }
        }
    }

    /// <summary>Writes the due-index row of an occurrence (idempotent: the same occurrence is the same row).</summary>
    public Task PlanAsync(TenantId tenant, string scheduleId, DateTimeOffset dueAt, CancellationToken cancellationToken) =>
        Due.UpsertEntityAsync(ScheduleDueEntity.For(tenant, scheduleId, dueAt), TableUpdateMode.Replace, cancellationToken);

    /// <summary>The caller a schedule's runs act as: its owner, without a session, within the scopes of the key that set it (if one did).</summary>
    public static Caller CallerOf(TenantId tenant, ScheduleEntity schedule) =>
        new(tenant, schedule.RunsAs, SessionGuard.SessionlessPrefix + Caller.ScheduleKeyPrefix + schedule.Id) { Scopes = schedule.ScopeSet };

    /// <summary>Checks the target as saved; returns the permission it needs besides <c>jobs.write</c>.</summary>
    private string? CheckTarget(TargetInput target, Validation validation)
    {
        if (target.Kind == TargetInput.Job)
        {
            return jobTypes.Check(target.JobType, target.Payload, target.Field, validation);
        }

        if (services.GetService<IWorkflowRunStarter>() is null)
        {
            validation.Add(target.Field, "workflows are not available");
            return null;
        }

        return Permissions.WorkflowsManage;
    }

    /// <summary>Why the caller may not set this target: a permission they lack, or a workflow that is not theirs.</summary>
    private async Task<CommandError?> RefusalAsync(Caller caller, TargetInput target, string permission, CancellationToken cancellationToken)
    {
        var held = await permissions.ForAsync(caller, cancellationToken);
        var missing = new[] { Permissions.JobsWrite, permission }.Distinct().Where(p => !held.Contains(p)).ToArray();
        if (missing.Length > 0)
        {
            return new CommandError(403, "permission_not_held",
                $"A schedule acts with the permissions of whoever sets its target; this one needs {string.Join(" and ", missing)}, which you do not hold.")
            { Title = "Permission not held" };
        }

        if (target.Kind == TargetInput.Workflow &&
            await services.GetRequiredService<IWorkflowRunStarter>().CheckAsync(caller, target.WorkflowId!, cancellationToken) is { } error)
        {
            return error.Status == 404
                ? CommandError.Invalid(new Validation().Add(target.Field + ".id", "names no workflow of this tenant"))
                : error;
        }

        return null;
    }

    private static bool RunsAs(ScheduleEntity schedule, Caller caller) =>
        schedule.RunsAs == caller.UserId && schedule.RunsAsKey == caller.ApiKeyId;

    private static TargetInput CurrentTarget(ScheduleEntity schedule) =>
        new("target", schedule.TargetKind, schedule.JobType, schedule.PayloadJson, schedule.WorkflowId);

    private static void SetTarget(ScheduleEntity schedule, Caller caller, TargetInput target)
    {
        schedule.TargetKind = target.Kind;
        schedule.JobType = target.JobType;
        schedule.WorkflowId = target.WorkflowId;
        schedule.Payload = target.Payload?.GetRawText();
        schedule.RunsAs = caller.UserId;

        // A schedule set up as itself (the daily backup made at sign-up, see CallerOf) acts for its owner through no
        // key that could be revoked: the owner's standing is what each run checks.
        schedule.RunsAsKey = caller.ApiKeyId is { } key && !key.StartsWith(Caller.ScheduleKeyPrefix, StringComparison.Ordinal) ? key : null;
        schedule.Scopes = caller.Scopes is { } scopes ? JsonSerializer.Serialize(scopes.Order(StringComparer.Ordinal)) : null;
    }

    private static Dictionary<string, object?> Described(ScheduleEntity schedule) => new()
    {
        ["name"] = schedule.Name,
        ["cron"] = schedule.Cron,
        ["timeZone"] = schedule.TimeZone,
        ["runAt"] = schedule.RunAt,
        ["target"] = TargetSummary(schedule),
    };

    private static string TargetSummary(ScheduleEntity schedule) =>
        schedule.TargetKind == TargetInput.Job ? "job:" + schedule.JobType : "workflow:" + schedule.WorkflowId;
}

/// <summary>When a schedule runs: a cron in a zone, or once at <see cref="RunAt"/>.</summary>
public sealed record Timing(string? Cron, string? TimeZone, DateTimeOffset? RunAt, ScheduleCron? Parsed)
{
    /// <summary>The greatest lead a one-off may have.</summary>
    public static readonly TimeSpan MaxRunAtAhead = TimeSpan.FromDays(5 * 366);

    /// <summary>The first occurrence after <paramref name="after"/>; null when there is none (a one-off that has passed).</summary>
    public DateTimeOffset? Next(DateTimeOffset after) =>
        Parsed is { } cron ? cron.Next(after) : RunAt > after ? RunAt : null;

    public static Timing? Of(ScheduleEntity schedule) =>
        schedule.Cron is { } cron
            ? ScheduleCron.Parse(cron, schedule.TimeZone, new Validation()) is { } parsed ? new Timing(cron, schedule.TimeZone, null, parsed) : null
            : new Timing(null, null, schedule.RunAt, null);

    /// <summary>A one-off: in the future, and not too far.</summary>
    public static Timing? Once(DateTimeOffset? runAt, DateTimeOffset now, Validation validation)
    {
        if (runAt is not { } at)
        {
            if (!validation.Errors.ContainsKey("runAt"))
            {
                validation.Add("runAt", "is required for a one-off schedule (or give cron instead)");
            }

            return null;
        }

        if (at <= now)
        {
            validation.Add("runAt", "must be in the future");
            return null;
        }

        if (at > now + MaxRunAtAhead)
        {
            validation.Add("runAt", "must be at most 5 years ahead");
            return null;
        }

        return new Timing(null, null, at, null);
    }

    /// <summary>A cron in a zone (UTC when none is given) that fires at least once more.</summary>
    public static Timing? Recurring(string? cron, string? timeZone, DateTimeOffset now, Validation validation)
    {
        timeZone = string.IsNullOrWhiteSpace(timeZone) ? "UTC" : timeZone;
        if (ScheduleCron.Parse(cron, timeZone, validation) is not { } parsed)
        {
            return null;
        }

        if (parsed.Next(now) is null)
        {
            validation.Add("cron", "never fires after now");
            return null;
        }

        return new Timing(string.Join(' ', cron!.Split(' ', '\t').Where(f => f.Length > 0)), timeZone, null, parsed);
    }
}
