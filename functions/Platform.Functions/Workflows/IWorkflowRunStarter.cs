using System.Text.Json;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Workflows;

/// <summary>
/// Starts a run of a tenant's workflow: what a schedule with a workflow target calls. <paramref name="runId"/> is
/// derived from the occurrence by the caller, so a second start of one occurrence finds the first run; the caller
/// follows the run by <see cref="StatusAsync"/> until it finishes.
/// </summary>
public interface IWorkflowRunStarter
{
    /// <summary>Null when the tenant has a workflow of this id, else the error (404 <c>not_found</c>).</summary>
    Task<CommandError?> CheckAsync(Caller caller, string workflowId, CancellationToken cancellationToken);

    /// <summary>The run id (the existing one when this run id was started already).</summary>
    Task<Outcome<string>> StartAsync(Caller caller, string workflowId, JsonElement? input, string runId, CancellationToken cancellationToken);

    /// <summary>The run's status as <c>GET .../runs/{runId}</c> shows it; null when there is no such run (never started, or purged by retention).</summary>
    Task<WorkflowRunStatus?> StatusAsync(TenantId tenant, string workflowId, string runId, CancellationToken cancellationToken);
}

/// <summary>A run's <c>status</c> (<c>running|waiting|succeeded|failed|cancelled</c>), whether that is final, and its error.</summary>
public sealed record WorkflowRunStatus(string Status, bool IsFinished, string? Error);
