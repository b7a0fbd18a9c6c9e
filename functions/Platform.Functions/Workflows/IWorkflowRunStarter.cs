using System.Text.Json;
using Platform.Functions.Auth;
using Platform.Functions.Http;

namespace Platform.Functions.Workflows;

/// <summary>
/// Starts a run of a tenant's workflow: what a schedule with a workflow target calls. <paramref name="runId"/> is
/// derived from the occurrence by the caller, so a second start of one occurrence finds the first run.
/// </summary>
public interface IWorkflowRunStarter
{
    /// <summary>Null when the tenant has a workflow of this id, else the error (404 <c>not_found</c>).</summary>
    Task<CommandError?> CheckAsync(Caller caller, string workflowId, CancellationToken cancellationToken);

    /// <summary>The run id (the existing one when this run id was started already).</summary>
    Task<Outcome<string>> StartAsync(Caller caller, string workflowId, JsonElement? input, string runId, CancellationToken cancellationToken);
}
