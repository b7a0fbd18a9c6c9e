using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Roles;

namespace Platform.Functions.Schedules;

/// <summary>A schedule as the API shows it.</summary>
public sealed record ScheduleView(
    string Id,
    string Name,
    string? Cron,
    string? TimeZone,
    DateTimeOffset? RunAt,
    ScheduleTargetView Target,
    bool Enabled,
    DateTimeOffset? NextRunAt,
    DateTimeOffset? LastRunAt,
    string CreatedBy,
    string RunsAs,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public static ScheduleView From(ScheduleEntity s) => new(
        s.Id, s.Name, s.Cron, s.TimeZone, s.RunAt,
        s.TargetKind == TargetInput.Workflow
            ? new ScheduleTargetView(null, new ScheduleWorkflowView(s.WorkflowId!, s.PayloadJson))
            : new ScheduleTargetView(new ScheduleJobView(s.JobType!, s.PayloadJson), null),
        s.Enabled, s.NextRunAt, s.LastRunAt, s.CreatedBy, s.RunsAs, s.CreatedAt, s.UpdatedAt);
}

/// <summary>The same shape as the request's <c>target</c>: exactly one member.</summary>
public sealed record ScheduleTargetView(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ScheduleJobView? Job,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ScheduleWorkflowView? Workflow);

public sealed record ScheduleJobView(string Type, JsonElement? Parameters);

public sealed record ScheduleWorkflowView(string Id, JsonElement? Input);

/// <summary>
/// One occurrence: <c>status</c> is <c>pending</c> while it is being started, <c>failed</c> when it could not start
/// (<c>error</c> says why), else its job's status (<c>queued</c> ... <c>succeeded</c>) or its workflow run's (<c>running</c> ... <c>succeeded</c>).
/// </summary>
public sealed record ScheduleRunView(string Id, DateTimeOffset DueAt, DateTimeOffset? StartedAt, string Status, string? JobId, string? RunId, string? Error)
{
    public static ScheduleRunView From(ScheduleRunEntity r) => new(r.Id, r.DueAt, r.StartedAt, r.Status, r.JobId, r.RunId, r.Error);
}

/// <summary><c>/api/v1/schedules</c>: recurring and one-off runs of a job or workflow.</summary>
public static class SchedulesEndpoints
{
    public const string Path = "/api/v1/schedules";
    private const string RunsQuery = "schedule-runs:";

    public static RouteGroupBuilder Map(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Schedules");
        group.MapGet("/", List).RequirePermission(Permissions.JobsRead).WithName("ListSchedules").WithSummary("The tenant's schedules, oldest first.");
        group.MapPost("/", Create).RequirePermission(Permissions.JobsWrite).WithIdempotency().Accepts<CreateScheduleRequest>("application/json")
            .WithName("CreateSchedule")
            .WithSummary("Creates a schedule: { name, cron, timeZone, target } (5- or 6-field cron, at most one run a minute, IANA zone) or { name, runAt, target } once; target is { job: { type, parameters } } or { workflow: { id, input } }. At most 100 per tenant (409 schedule_limit_reached).");
        group.MapGet("/{id}", Get).RequirePermission(Permissions.JobsRead).WithName("GetSchedule").WithSummary("One schedule, with nextRunAt.");
        group.MapPatch("/{id}", Update).RequirePermission(Permissions.JobsWrite).Accepts<CreateScheduleRequest>("application/json").WithName("UpdateSchedule")
            .WithSummary("Changes name, enabled, cron, timeZone, runAt or target; nextRunAt is planned again from now. Setting the target makes the schedule act as you.");
        group.MapDelete("/{id}", Delete).RequirePermission(Permissions.JobsWrite).WithName("DeleteSchedule").WithSummary("Deletes a schedule and its runs.");
        group.MapGet("/{id}/runs", Runs).RequirePermission(Permissions.JobsRead).WithName("ListScheduleRuns")
            .WithSummary("The schedule's runs, newest first (the newest 100 are kept): due time, start, status, job or workflow run id, error.");
        return group;
    }

    internal static async Task<Results<Ok<PagedList<ScheduleView>>, ProblemHttpResult>> List(
        string? pageSize, string? continuationToken, Caller caller, ScheduleCommands schedules, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (Paging.Parse(pageSize, validation) is not { } size)
        {
            return validation.ToProblem();
        }

        string? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, "schedules", out after))
        {
            return ContinuationTokens.Invalid();
        }

        var rest = (await schedules.ListAsync(caller.Tenant, cancellationToken)).Where(s => after is null || string.CompareOrdinal(s.Id, after) > 0).ToList();
        var page = rest.Take(size).Select(ScheduleView.From).ToList();
        return TypedResults.Ok(new PagedList<ScheduleView>(page, rest.Count > size ? tokens.Create(caller.Tenant, "schedules", page[^1].Id) : null));
    }

    internal static async Task<Results<Created<ScheduleView>, ProblemHttpResult>> Create(
        JsonElement request, Caller caller, HttpContext http, ScheduleCommands schedules, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var input = ScheduleInput.Read(request, validation);
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        return (await schedules.CreateAsync(caller, input, cancellationToken))
            .ToResult(schedule => TypedResults.Created($"{Path}/{schedule.Id}", http.Tagged(schedule.ETag, ScheduleView.From(schedule))));
    }

    internal static async Task<Results<Ok<ScheduleView>, ProblemHttpResult>> Get(
        string id, Caller caller, HttpContext http, ScheduleCommands schedules, CancellationToken cancellationToken) =>
        await schedules.GetAsync(caller.Tenant, id, cancellationToken) is { } schedule
            ? TypedResults.Ok(http.Tagged(schedule.ETag, ScheduleView.From(schedule)))
            : CommandError.NotFound("schedule").ToProblem();

    internal static async Task<Results<Ok<ScheduleView>, ProblemHttpResult>> Update(
        string id, JsonElement request, Caller caller, HttpContext http, ScheduleCommands schedules, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var input = ScheduleInput.Read(request, validation);
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        return (await schedules.UpdateAsync(caller, id, input, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken))
            .ToResult(schedule => TypedResults.Ok(http.Tagged(schedule.ETag, ScheduleView.From(schedule))));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        string id, Caller caller, HttpContext http, ScheduleCommands schedules, CancellationToken cancellationToken) =>
        (await schedules.DeleteAsync(caller, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken)).ToResult(_ => TypedResults.NoContent());

    internal static async Task<Results<Ok<PagedList<ScheduleRunView>>, ProblemHttpResult>> Runs(
        string id, string? pageSize, string? continuationToken, Caller caller, ScheduleCommands schedules, JobCommands jobs, ContinuationTokens tokens,
        CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (Paging.Parse(pageSize, validation) is not { } size)
        {
            return validation.ToProblem();
        }

        string? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, RunsQuery + id, out after))
        {
            return ContinuationTokens.Invalid();
        }

        if (await schedules.GetAsync(caller.Tenant, id, cancellationToken) is null)
        {
            return CommandError.NotFound("schedule").ToProblem();
        }

        var (items, next) = await schedules.RunsAsync(caller.Tenant, id, size, after, cancellationToken);
        foreach (var run in items)
        {
            await FollowJobAsync(caller, schedules, jobs, run, cancellationToken);
            await schedules.FollowWorkflowRunAsync(caller.Tenant, run, cancellationToken);
        }

        return TypedResults.Ok(new PagedList<ScheduleRunView>([.. items.Select(ScheduleRunView.From)],
            next is null ? null : tokens.Create(caller.Tenant, RunsQuery + id, next)));
    }

    /// <summary>
    /// A run shows its job's status: read from the job while it is unfinished, and kept on the run once it finished, so
    /// a list reads only the jobs still running.
    /// </summary>
    private static async Task FollowJobAsync(Caller caller, ScheduleCommands schedules, JobCommands jobs, ScheduleRunEntity run, CancellationToken cancellationToken)
    {
        if (run.Settled || run.JobId is not { } jobId)
        {
            return;
        }

        var job = await jobs.GetAsync(caller.Tenant, jobId, cancellationToken);
        var changed = job is null || run.Status != job.Status;
        if (job is null)
        {
            // Purged by job retention: the run keeps the last status it showed.
            run.Settled = true;
        }
        else
        {
            run.Status = job.Status;
            run.Error = job.Error;
            run.Settled = job.IsFinished;
        }

        if (changed)
        {
            try
            {
                await schedules.Rows(caller.Tenant).UpdateAsync(run, run.ETag, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                // Written meanwhile; the next read sees it.
            }
        }
    }
}
