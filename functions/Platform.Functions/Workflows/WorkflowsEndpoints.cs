using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Roles;

namespace Platform.Functions.Workflows;

/// <summary>
/// Workflows of the caller's tenant (<c>/api/v1/workflows</c>): define them, start runs, follow a run step by step,
/// cancel it, and send the events its approval steps wait for.
/// </summary>
public static class WorkflowsEndpoints
{
    public const string Path = "/api/v1/workflows";

    public sealed record StartRunRequest(JsonElement? Input);

    public sealed record EventRequest(JsonElement? Data);

    /// <summary>What a cancel or event sent before the engine has begun the run meets (docs/architecture.md, "Messages to a queued instance").</summary>
    private const string EarlyMessage = "Sent in the first seconds of a run, before the engine has begun it, it is handed over once it has (at most some 8 s later), so it is never lost.";

    public static RouteGroupBuilder MapWorkflows(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Workflows");
        group.MapGet("/", List).RequirePermission(Permissions.WorkflowsRead).WithName("ListWorkflows").WithSummary("The tenant's workflows, by id.");
        group.MapPut("/{id}", Put).RequirePermission(Permissions.WorkflowsManage).WithName("PutWorkflow")
            .WithSummary("Creates (201) or replaces (200) a workflow: its name and steps, checked as they are saved.");
        group.MapGet("/{id}", Get).RequirePermission(Permissions.WorkflowsRead).WithName("GetWorkflow").WithSummary("A workflow and its steps, with its ETag.");
        group.MapDelete("/{id}", Delete).RequirePermission(Permissions.WorkflowsManage).WithName("DeleteWorkflow")
            .WithSummary("Deletes a workflow; runs in flight finish with the steps they started with.");
        group.MapPost("/{id}/runs", StartRun).RequirePermission(Permissions.WorkflowsManage).WithIdempotency().WithName("StartWorkflowRun")
            .WithSummary("Starts a run of the workflow with an optional input; 202 with the run and its Location.");
        group.MapGet("/{id}/runs", ListRuns).RequirePermission(Permissions.WorkflowsRead).WithName("ListWorkflowRuns").WithSummary("The workflow's runs, oldest first.");
        group.MapGet("/{id}/runs/{runId}", GetRun).RequirePermission(Permissions.WorkflowsRead).WithName("GetWorkflowRun")
            .WithSummary("A run step by step: each step's status, times, output and error.");
        group.MapPost("/{id}/runs/{runId}/cancel", CancelRun).RequirePermission(Permissions.WorkflowsManage).WithName("CancelWorkflowRun")
            .WithSummary("Stops a run at its current step; steps not reached are skipped.")
            .WithDescription(EarlyMessage);
        group.MapPost("/{id}/runs/{runId}/events/{name}", SendEvent).RequirePermission(Permissions.WorkflowsManage).WithName("SendWorkflowRunEvent")
            .WithSummary("Sends the event an approval step waits for (named like the step); data.approved false rejects.")
            .WithDescription(EarlyMessage);
        return group;
    }

    internal static async Task<Results<Ok<PagedList<WorkflowView>>, ProblemHttpResult>> List(
        Caller caller, WorkflowStore store, ContinuationTokens tokens, string? pageSize, string? continuationToken, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation);
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var query = $"workflows\n{size}";
        string? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, query, out after))
        {
            return ContinuationTokens.Invalid();
        }

        var (items, last) = await store.ListAsync(caller.Tenant, size!.Value, after, cancellationToken);
        return TypedResults.Ok(new PagedList<WorkflowView>([.. items.Select(WorkflowView.From)], last is null ? null : tokens.Create(caller.Tenant, query, last)));
    }

    internal static async Task<Results<Ok<WorkflowView>, Created<WorkflowView>, ProblemHttpResult>> Put(
        string id, WorkflowRequest request, Caller caller, HttpContext http, WorkflowStore store, CancellationToken cancellationToken)
    {
        var saved = await store.PutAsync(caller, id, request, etag => ETags.IfMatchAllows(http.Request, etag), http.Request.Headers.IfMatch.Count > 0, cancellationToken);
        if (saved.Failed(out var error, out var result))
        {
            return error.ToProblem();
        }

        var view = http.Tagged(result.Workflow.ETag, WorkflowView.From(result.Workflow));
        return result.Created ? TypedResults.Created($"{Path}/{id}", view) : TypedResults.Ok(view);
    }

    internal static async Task<Results<Ok<WorkflowView>, ProblemHttpResult>> Get(string id, Caller caller, HttpContext http, WorkflowStore store, CancellationToken cancellationToken) =>
        await store.GetAsync(caller.Tenant, id, cancellationToken) is { } workflow
            ? TypedResults.Ok(http.Tagged(workflow.ETag, WorkflowView.From(workflow)))
            : CommandError.NotFound("workflow").ToProblem();

    internal static async Task<Results<NoContent, ProblemHttpResult>> Delete(string id, Caller caller, HttpContext http, WorkflowStore store, CancellationToken cancellationToken) =>
        await store.DeleteAsync(caller, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken) is { } error
            ? error.ToProblem()
            : TypedResults.NoContent();

    internal static async Task<Results<Accepted<WorkflowRunView>, ProblemHttpResult>> StartRun(
        string id, StartRunRequest? request, Caller caller, WorkflowRuns runs, CancellationToken cancellationToken) =>
        (await runs.StartRunAsync(caller, id, request?.Input, null, cancellationToken))
            .ToResult(run => TypedResults.Accepted(WorkflowRunView.UrlOf(id, run.RunId), run));

    internal static async Task<Results<Ok<PagedList<WorkflowRunView>>, ProblemHttpResult>> ListRuns(
        string id, Caller caller, WorkflowStore store, WorkflowRuns runs, ContinuationTokens tokens, string? pageSize, string? continuationToken,
        CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation);
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        if (await store.GetAsync(caller.Tenant, id, cancellationToken) is null)
        {
            return CommandError.NotFound("workflow").ToProblem();
        }

        var query = $"workflow-runs\n{id}\n{size}";
        string? position = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, query, out position))
        {
            return ContinuationTokens.Invalid();
        }

        var (items, next) = await runs.ListAsync(caller.Tenant, id, size!.Value, position, cancellationToken);
        return TypedResults.Ok(new PagedList<WorkflowRunView>(items, next is null ? null : tokens.Create(caller.Tenant, query, next)));
    }

    internal static async Task<Results<Ok<WorkflowRunView>, ProblemHttpResult>> GetRun(
        string id, string runId, Caller caller, WorkflowRuns runs, CancellationToken cancellationToken) =>
        await runs.GetAsync(caller.Tenant, id, runId, cancellationToken) is { } run
            ? TypedResults.Ok(run)
            : CommandError.NotFound("workflow run").ToProblem();

    internal static async Task<Results<Accepted<WorkflowRunView>, ProblemHttpResult>> CancelRun(
        string id, string runId, Caller caller, WorkflowRuns runs, CancellationToken cancellationToken) =>
        (await runs.CancelAsync(caller, id, runId, cancellationToken)).ToResult(run => TypedResults.Accepted(WorkflowRunView.UrlOf(id, runId), run));

    internal static async Task<Results<Accepted<WorkflowRunView>, ProblemHttpResult>> SendEvent(
        string id, string runId, string name, EventRequest? request, Caller caller, WorkflowRuns runs, CancellationToken cancellationToken) =>
        (await runs.RaiseAsync(caller, id, runId, name, request?.Data, cancellationToken)).ToResult(run => TypedResults.Accepted(WorkflowRunView.UrlOf(id, runId), run));
}
