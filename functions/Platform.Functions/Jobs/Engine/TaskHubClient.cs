using DurableTask.Core;
using DurableTask.Core.History;
using DurableTask.Core.Query;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using CoreQuery = DurableTask.Core.Query.OrchestrationQuery;
using CoreStatus = DurableTask.Core.OrchestrationStatus;
using OrchestrationQuery = Microsoft.DurableTask.Client.OrchestrationQuery;
using PurgeResult = Microsoft.DurableTask.Client.PurgeResult;

namespace Platform.Functions.Jobs.Engine;

/// <summary>
/// The app's client of its task hub: the Durable Task SDK's <see cref="DurableTaskClient"/> surface (what a Durable
/// Functions app gets injected), implemented directly over the Azure Storage orchestration service's client
/// interfaces. It uses the worker's <see cref="DataConverter"/>, so inputs, outputs, custom status and event payloads
/// read back exactly as the orchestrations wrote them.
/// </summary>
public sealed class TaskHubClient(TaskHub hub) : DurableTaskClient("platform")
{
    private static readonly TimeSpan StartPollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long after its creation a queued instance's start may still be handed back to the queue by the backend.</summary>
    private static readonly TimeSpan StartHoldBack = TimeSpan.FromSeconds(8);

    public DataConverter Converter => hub.Converter;

    public override async Task<string> ScheduleNewOrchestrationInstanceAsync(
        TaskName orchestratorName, object? input = null, StartOrchestrationOptions? options = null, CancellationToken cancellation = default)
    {
        var instance = new OrchestrationInstance
        {
            InstanceId = options?.InstanceId ?? Guid.NewGuid().ToString("N"),
            ExecutionId = Guid.NewGuid().ToString("N"),
        };
        var started = new ExecutionStartedEvent(-1, hub.Converter.Serialize(input))
        {
            Name = orchestratorName.Name,
            OrchestrationInstance = instance,
            ScheduledStartTime = options?.StartAt?.UtcDateTime,
        };

        // Only a finished instance may be replaced: starting an id that is queued or running is refused by the
        // service (OrchestrationAlreadyExistsException), which is what makes a start with a known id idempotent.
        CoreStatus[] dedupe = [CoreStatus.Pending, CoreStatus.Running, CoreStatus.Suspended, CoreStatus.ContinuedAsNew];
        var service = await hub.ServiceAsync(cancellation);
        await service.CreateTaskOrchestrationAsync(new TaskMessage { OrchestrationInstance = instance, Event = started }, dedupe);
        return instance.InstanceId;
    }

    public override async Task RaiseEventAsync(string instanceId, string eventName, object? eventPayload = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        ArgumentException.ThrowIfNullOrEmpty(eventName);
        await SendAsync(instanceId, new EventRaisedEvent(-1, hub.Converter.Serialize(eventPayload)) { Name = eventName }, cancellation);
    }

    public override async Task TerminateInstanceAsync(string instanceId, TerminateInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        var service = await hub.ServiceAsync(cancellation);
        await service.ForceTerminateTaskOrchestrationAsync(instanceId, hub.Converter.Serialize(options?.Output));
    }

    public override Task SuspendInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        SendAsync(instanceId, new ExecutionSuspendedEvent(-1, reason), cancellation);

    public override Task ResumeInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        SendAsync(instanceId, new ExecutionResumedEvent(-1, reason), cancellation);

    public override async Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
    {
        var service = await hub.ServiceAsync(cancellation);
        var states = await service.GetOrchestrationStateAsync(instanceId, allExecutions: false);
        return states is { Count: > 0 } && states[0] is { } state ? ToMetadata(state, getInputsAndOutputs) : null;
    }

    public override AsyncPageable<OrchestrationMetadata> GetAllInstancesAsync(OrchestrationQuery? filter = null) =>
        Pageable.Create((string? continuation, CancellationToken cancellation) =>
            QueryPageAsync((filter ?? new OrchestrationQuery()) with { ContinuationToken = continuation }, cancellation));

    /// <summary>One page of a query, with the service's continuation token (null on the last page).</summary>
    public async Task<Page<OrchestrationMetadata>> QueryPageAsync(OrchestrationQuery query, CancellationToken cancellation)
    {
        var service = await hub.ServiceAsync(cancellation);
        var result = await service.GetOrchestrationWithQueryAsync(
            new CoreQuery
            {
                CreatedTimeFrom = query.CreatedFrom?.UtcDateTime,
                CreatedTimeTo = query.CreatedTo?.UtcDateTime,
                RuntimeStatus = query.Statuses?.Select(s => (CoreStatus)s).ToList(),
                InstanceIdPrefix = query.InstanceIdPrefix,
                PageSize = query.PageSize,
                ContinuationToken = query.ContinuationToken,
                FetchInputsAndOutputs = query.FetchInputsAndOutputs,
            },
            cancellation);
        return new Page<OrchestrationMetadata>(
            result.OrchestrationState.Select(s => ToMetadata(s, query.FetchInputsAndOutputs)).ToList(),
            string.IsNullOrEmpty(result.ContinuationToken) ? null : result.ContinuationToken);
    }

    public override async Task<OrchestrationMetadata> WaitForInstanceStartAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
    {
        while (true)
        {
            if (await GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation) is { RuntimeStatus: not OrchestrationRuntimeStatus.Pending } started)
            {
                return started;
            }

            await Task.Delay(StartPollInterval, cancellation);
        }
    }

    public override async Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
    {
        var service = await hub.ServiceAsync(cancellation);
        var state = await service.WaitForOrchestrationAsync(instanceId, executionId: null!, Timeout.InfiniteTimeSpan, cancellation);
        return ToMetadata(state ?? throw new InvalidOperationException($"No instance {instanceId}."), getInputsAndOutputs);
    }

    public override async Task<PurgeResult> PurgeInstanceAsync(string instanceId, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        var service = await hub.ServiceAsync(cancellation);
        var result = await ((IOrchestrationServicePurgeClient)service).PurgeInstanceStateAsync(instanceId);
        return new PurgeResult(result.DeletedInstanceCount);
    }

    public override async Task<PurgeResult> PurgeAllInstancesAsync(PurgeInstancesFilter filter, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        var service = await hub.ServiceAsync(cancellation);
        var result = await ((IOrchestrationServicePurgeClient)service).PurgeInstanceStateAsync(new PurgeInstanceFilter(
            filter.CreatedFrom?.UtcDateTime ?? DateTime.MinValue,
            filter.CreatedTo?.UtcDateTime,
            filter.Statuses?.Select(s => (CoreStatus)s)));
        return new PurgeResult(result.DeletedInstanceCount);
    }

    public override ValueTask DisposeAsync() => default;

    private async Task SendAsync(string instanceId, HistoryEvent historyEvent, CancellationToken cancellation)
    {
        var service = await hub.ServiceAsync(cancellation);
        await UntilItsStartCannotBeHeldBackAsync(instanceId, cancellation);
        await service.SendTaskOrchestrationMessageAsync(new TaskMessage
        {
            OrchestrationInstance = new OrchestrationInstance { InstanceId = instanceId },
            Event = historyEvent,
        });
    }

    /// <summary>
    /// Waits, if <paramref name="instanceId"/> is queued and new, until a message sent to it can no longer arrive before its
    /// start. The Azure Storage backend deletes a message that reaches an instance with no history and no start message
    /// beside it ("No such instance"). A new instance is in that state when the worker dequeued its start message before
    /// this client had written the instance's row: the backend's start de-duplication then hands the start back to the
    /// queue for 2 s (4 s the next time). A cancel or approval sent meanwhile was lost, and the run waited for it to its
    /// timeout. So a message for a queued instance waits until the instance runs (its history has begun: the row says
    /// running only after the history is written), or until the instance is <see cref="StartHoldBack"/> old: a start put
    /// back is visible again by then, ahead of this message in the queue. An instance queued longer (no worker up) takes
    /// the message at once, behind its start.
    /// </summary>
    private async Task UntilItsStartCannotBeHeldBackAsync(string instanceId, CancellationToken cancellation)
    {
        while (await GetInstanceAsync(instanceId, getInputsAndOutputs: false, cancellation) is { RuntimeStatus: OrchestrationRuntimeStatus.Pending } queued &&
            DateTimeOffset.UtcNow - queued.CreatedAt < StartHoldBack)
        {
            await Task.Delay(StartPollInterval, cancellation);
        }
    }

    private OrchestrationMetadata ToMetadata(OrchestrationState state, bool withData) => new(state.Name, state.OrchestrationInstance.InstanceId)
    {
        DataConverter = hub.Converter,
        RuntimeStatus = (OrchestrationRuntimeStatus)state.OrchestrationStatus,
        CreatedAt = new DateTimeOffset(DateTime.SpecifyKind(state.CreatedTime, DateTimeKind.Utc)),
        LastUpdatedAt = new DateTimeOffset(DateTime.SpecifyKind(state.LastUpdatedTime, DateTimeKind.Utc)),
        SerializedInput = withData ? state.Input : null,
        SerializedOutput = withData ? state.Output : null,
        // Progress lives in the custom status, which every read of a job needs: always fetched.
        SerializedCustomStatus = state.Status,
        FailureDetails = state.FailureDetails is { } failure
            ? new TaskFailureDetails(failure.ErrorType, failure.ErrorMessage, failure.StackTrace, null, null)
            : null,
    };
}
