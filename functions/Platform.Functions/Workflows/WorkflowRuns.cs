using System.Text.Json;
using DurableTask.Core.Exceptions;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Storage;

namespace Platform.Functions.Workflows;

/// <summary>A run as the API shows it.</summary>
public sealed record WorkflowRunView(
    string RunId, string WorkflowId, string Name, string Status, DateTimeOffset CreatedAt, DateTimeOffset? FinishedAt, JsonElement? Input,
    IReadOnlyList<StepState> Steps, string? Error)
{
    public static string UrlOf(string workflowId, string runId) => $"{WorkflowsEndpoints.Path}/{workflowId}/runs/{runId}";

    public static WorkflowRunView From(OrchestrationMetadata instance, WorkflowRunInput input)
    {
        var finished = instance.IsCompleted ? instance.LastUpdatedAt : (DateTimeOffset?)null;
        var fresh = input.Steps.Select(StepState.For).ToList();
        switch (instance.RuntimeStatus)
        {
            case OrchestrationRuntimeStatus.Completed when Read(instance.SerializedOutput) is { } done:
                return new(input.RunId, input.WorkflowId, input.Name, done.Status, instance.CreatedAt, finished, input.Input, done.Steps, done.Error);
            case OrchestrationRuntimeStatus.Terminated:
                return new(input.RunId, input.WorkflowId, input.Name, RunStatuses.Cancelled, instance.CreatedAt, finished, input.Input,
                    Read(instance.SerializedCustomStatus)?.Steps ?? fresh, "The run was stopped.");
            case OrchestrationRuntimeStatus.Failed:
                return new(input.RunId, input.WorkflowId, input.Name, RunStatuses.Failed, instance.CreatedAt, finished, input.Input,
                    Read(instance.SerializedCustomStatus)?.Steps ?? fresh, instance.FailureDetails?.ErrorMessage ?? "The run failed.");
            default:
                var state = Read(instance.SerializedCustomStatus);
                return new(input.RunId, input.WorkflowId, input.Name, state?.Status ?? RunStatuses.Running, instance.CreatedAt, null, input.Input,
                    state?.Steps ?? fresh, null);
        }
    }

    private static WorkflowRunState? Read(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<WorkflowRunState>(json, JsonSerializerOptions.Web);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>Starts, reads, lists and cancels the runs of the caller's tenant's workflows, and sends events into them.</summary>
public sealed class WorkflowRuns(TaskHubClient client, WorkflowStore workflows, SessionGuard sessions, IOptions<WorkflowOptions> options, TimeProvider time) : IWorkflowRunStarter
{
    public const int MaxInputChars = 16_000;
    public const int MaxEventDataChars = 4_000;

    public async Task<CommandError?> CheckAsync(Caller caller, string workflowId, CancellationToken cancellationToken) =>
        await workflows.GetAsync(caller.Tenant, workflowId, cancellationToken) is null ? CommandError.NotFound("workflow") : null;

    public async Task<Outcome<string>> StartAsync(Caller caller, string workflowId, JsonElement? input, string runId, CancellationToken cancellationToken)
    {
        var started = await StartRunAsync(caller, workflowId, input, runId, cancellationToken);
        return started.Failed(out var error, out var view) ? error : view.RunId;
    }

    /// <summary>Starts a run of the workflow as it is now, under <paramref name="runId"/> (a new id when null).</summary>
    public async Task<Outcome<WorkflowRunView>> StartRunAsync(Caller caller, string workflowId, JsonElement? input, string? runId, CancellationToken cancellationToken)
    {
        if (await workflows.GetAsync(caller.Tenant, workflowId, cancellationToken) is not { } workflow)
        {
            return CommandError.NotFound("workflow");
        }

        if (input is { } given && (given.GetRawText().Length > MaxInputChars || !WorkflowJson.IsShallow(given)))
        {
            return CommandError.Invalid(new Validation().Add("input", $"must be at most {MaxInputChars} characters as JSON, nested at most {WorkflowJson.MaxDepth} levels"));
        }

        runId ??= Ids.New(time);
        if (!WorkflowRunIds.IsWellFormed(runId))
        {
            return CommandError.Invalid(new Validation().Add("runId", "must be 1-32 letters and digits"));
        }

        var instanceId = WorkflowRunIds.InstanceId(caller.Tenant, workflowId, runId);
        if (await ViewAsync(instanceId, cancellationToken) is { } existing)
        {
            return existing;
        }

        var limit = options.Value.MaxRunsInFlightPerTenant;
        if (await InFlightAsync(caller.Tenant, limit, cancellationToken) >= limit)
        {
            return new CommandError(429, "workflow_runs_limit_reached", $"A tenant has at most {limit} workflow runs in flight; wait for some to finish or cancel them.");
        }

        var runInput = new WorkflowRunInput(caller.Tenant.Value, workflowId, runId, workflow.Name, JobActor.From(caller), time.GetUtcNow(), workflow.StepList(),
            input is { ValueKind: not JsonValueKind.Null } value ? value.Clone() : null);
        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(WorkflowOrchestrator.Name, runInput, new StartOrchestrationOptions(instanceId), cancellationToken);
        }
        catch (OrchestrationAlreadyExistsException)
        {
            // A second start of the same run id (a schedule's occurrence taken twice): the first run is the run.
            return await ViewAsync(instanceId, cancellationToken) is { } first ? first : CommandError.Conflict("run_starting", "The run is already starting.");
        }

        return new WorkflowRunView(runId, workflowId, workflow.Name, RunStatuses.Running, runInput.CreatedAt, null, runInput.Input,
            [.. runInput.Steps.Select(StepState.For)], null);
    }

    public async Task<WorkflowRunView?> GetAsync(TenantId tenant, string workflowId, string runId, CancellationToken cancellationToken) =>
        WorkflowStore.IsValidId(workflowId) && WorkflowRunIds.IsWellFormed(runId)
            ? await ViewAsync(WorkflowRunIds.InstanceId(tenant, workflowId, runId), cancellationToken)
            : null;

    public async Task<WorkflowRunStatus?> StatusAsync(TenantId tenant, string workflowId, string runId, CancellationToken cancellationToken) =>
        await GetAsync(tenant, workflowId, runId, cancellationToken) is { } run ? new WorkflowRunStatus(run.Status, run.FinishedAt is not null, run.Error) : null;

    /// <summary>A page of one workflow's runs (in run id order, so oldest first), by the task hub's instance-id prefix.</summary>
    public async Task<(List<WorkflowRunView> Items, string? Next)> ListAsync(TenantId tenant, string workflowId, int pageSize, string? position, CancellationToken cancellationToken)
    {
        var page = await client.QueryPageAsync(new OrchestrationQuery(
            InstanceIdPrefix: WorkflowRunIds.WorkflowPrefix(tenant, workflowId), PageSize: pageSize, FetchInputsAndOutputs: true, ContinuationToken: position),
            cancellationToken);
        var items = new List<WorkflowRunView>();
        foreach (var instance in page.Values)
        {
            if (WorkflowRunIds.TryParse(instance.InstanceId, out var owner, out var id, out _) && owner == tenant && id == workflowId &&
                ReadInput(instance) is { } input)
            {
                items.Add(WorkflowRunView.From(instance, input));
            }
        }

        return (items, page.ContinuationToken);
    }

    public async Task<Outcome<WorkflowRunView>> CancelAsync(Caller caller, string workflowId, string runId, CancellationToken cancellationToken)
    {
        if (await GetAsync(caller.Tenant, workflowId, runId, cancellationToken) is not { } run)
        {
            return CommandError.NotFound("workflow run");
        }

        if (run.FinishedAt is not null)
        {
            return CommandError.Conflict("run_finished", $"The run has finished ({run.Status}); there is nothing to cancel.");
        }

        await client.RaiseEventAsync(WorkflowRunIds.InstanceId(caller.Tenant, workflowId, runId), WorkflowOrchestrator.CancelEvent, true, cancellationToken);
        return run;
    }

    /// <summary>
    /// Sends the event an approval step named <paramref name="name"/> waits for. One sent before the step starts is kept
    /// by the run and answers the step when it comes; a second one for the same step changes nothing (each step waits
    /// once, and jumps only go forward).
    /// </summary>
    public async Task<Outcome<WorkflowRunView>> RaiseAsync(Caller caller, string workflowId, string runId, string name, JsonElement? data, CancellationToken cancellationToken)
    {
        var instance = WorkflowStore.IsValidId(workflowId) && WorkflowRunIds.IsWellFormed(runId)
            ? await client.GetInstanceAsync(WorkflowRunIds.InstanceId(caller.Tenant, workflowId, runId), getInputsAndOutputs: true, cancellationToken)
            : null;
        if (instance is null || ReadInput(instance) is not { } input)
        {
            return CommandError.NotFound("workflow run");
        }

        var run = WorkflowRunView.From(instance, input);

        if (data is { } given && (given.GetRawText().Length > MaxEventDataChars || !WorkflowJson.IsShallow(given)))
        {
            return CommandError.Invalid(new Validation().Add("data", $"must be at most {MaxEventDataChars} characters as JSON, nested at most {WorkflowJson.MaxDepth} levels"));
        }

        if (run.FinishedAt is not null)
        {
            return CommandError.Conflict("run_finished", $"The run has finished ({run.Status}); it takes no more events.");
        }

        var step = Flatten(run.Steps).FirstOrDefault(s => string.Equals(s.Id, name, StringComparison.OrdinalIgnoreCase));
        if (step is null || step.Kind != StepKinds.Approval)
        {
            return CommandError.Conflict("event_not_expected", $"The run has no approval step '{(name.Length <= 40 ? name : name[..40])}' to send this event to.");
        }

        if (step.Status is not (StepStatuses.Pending or StepStatuses.Running or StepStatuses.Waiting))
        {
            return CommandError.Conflict("event_not_expected", $"The approval step '{step.Id}' is {step.Status}; it takes no more events.");
        }

        // An approval for a role is answered by its members only (an API key or receiver acts with its user's roles).
        var definition = input.Steps.SelectMany(s => (IEnumerable<WorkflowStep>)[s, .. s.Steps ?? []]).First(s => s.Id == step.Id);
        if (definition.Approvers is { } approvers && approvers.StartsWith("role:", StringComparison.Ordinal) &&
            !(await sessions.GetStandingAsync(caller, cancellationToken)).Roles.Contains(approvers[5..], StringComparer.Ordinal))
        {
            return CommandError.Forbidden($"Only users with the role {approvers[5..]} may answer the approval '{step.Id}'.");
        }

        await client.RaiseEventAsync(WorkflowRunIds.InstanceId(caller.Tenant, workflowId, runId), step.Id,
            new WorkflowEvent(data is { ValueKind: not JsonValueKind.Null } value ? value.Clone() : null, caller.UserId), cancellationToken);
        return run;
    }

    private static IEnumerable<StepState> Flatten(IEnumerable<StepState> steps) =>
        steps.SelectMany(s => (IEnumerable<StepState>)[s, .. Flatten(s.Steps ?? [])]);

    private async Task<WorkflowRunView?> ViewAsync(string instanceId, CancellationToken cancellationToken) =>
        await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, cancellationToken) is { } instance && ReadInput(instance) is { } input
            ? WorkflowRunView.From(instance, input)
            : null;

    private static WorkflowRunInput? ReadInput(OrchestrationMetadata instance)
    {
        try
        {
            return instance.ReadInputAs<WorkflowRunInput>();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Runs of the tenant not yet finished, counted up to <paramref name="limit"/>.</summary>
    private async Task<int> InFlightAsync(TenantId tenant, int limit, CancellationToken cancellationToken)
    {
        var count = 0;
        string? position = null;
        do
        {
            var page = await client.QueryPageAsync(new OrchestrationQuery(
                InstanceIdPrefix: WorkflowRunIds.TenantPrefix(tenant), PageSize: 500, ContinuationToken: position,
                Statuses: [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended]), cancellationToken);
            count += page.Values.Count;
            position = page.ContinuationToken;
        }
        while (position is not null && count < limit);

        return count;
    }
}
