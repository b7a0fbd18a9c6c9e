using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask;
using Platform.Functions.Events;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;

namespace Platform.Functions.Workflows;

public sealed record JobStepStart(string TenantId, JobActor Actor, string Type, JsonElement? Parameters, string JobId);

public sealed record JobStepQuery(string TenantId, JobActor Actor, string JobId);

/// <summary>A job step's job as the run sees it; <see cref="Started"/> false with an error: the job was refused.</summary>
public sealed record JobStepResult(string JobId, bool Started, bool Finished, string Status, string? ResultUrl, string? Error, IReadOnlyDictionary<string, double>? Figures)
{
    /// <summary>The step's output: <c>{ jobId, status, resultUrl?, ...figures }</c>.</summary>
    public JsonElement? Output()
    {
        if (!Started)
        {
            return null;
        }

        var output = new JsonObject { ["jobId"] = JobId, ["status"] = Status };
        if (ResultUrl is not null)
        {
            output["resultUrl"] = ResultUrl;
        }

        foreach (var (name, value) in Figures ?? new Dictionary<string, double>())
        {
            if (name is not ("jobId" or "status" or "resultUrl") && double.IsFinite(value))
            {
                output[name] = value;
            }
        }

        return JsonSerializer.SerializeToElement(output, JsonSerializerOptions.Web);
    }
}

/// <summary>
/// Starts a job step's job under the id the run derived for the step: a second run of this activity (a retry, a
/// replay after a crash) finds that job instead of starting another. The job is checked and started as the run's
/// starter, with that caller's permissions now.
/// </summary>
public sealed class WorkflowJobStart(JobTypes jobTypes, JobCommands jobs) : TaskActivity<JobStepStart, JobStepResult>
{
    public const string Name = "WorkflowJobStart";

    public override async Task<JobStepResult> RunAsync(TaskActivityContext context, JobStepStart input)
    {
        var tenant = new TenantId(input.TenantId);
        var started = await jobTypes.StartAsync(input.Actor.ToCaller(tenant), input.Type, input.Parameters, input.JobId, CancellationToken.None);
        if (started.Failed(out var error, out _))
        {
            var fields = error.Fields is { IsValid: false } invalid
                ? " " + string.Join("; ", invalid.Errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}"))
                : "";
            return new JobStepResult(input.JobId, false, true, JobOutcome.Failed, null, error.Message + fields, null);
        }

        return await WorkflowJobStatus.ReadAsync(jobs, tenant, input.JobId);
    }
}

/// <summary>Where a job step's job is: its status, result link and headline figures once finished.</summary>
public sealed class WorkflowJobStatus(JobCommands jobs) : TaskActivity<JobStepQuery, JobStepResult>
{
    public const string Name = "WorkflowJobStatus";

    public override Task<JobStepResult> RunAsync(TaskActivityContext context, JobStepQuery input) =>
        ReadAsync(jobs, new TenantId(input.TenantId), input.JobId);

    public static async Task<JobStepResult> ReadAsync(JobCommands jobs, TenantId tenant, string jobId)
    {
        if (await jobs.InstanceAsync(tenant, jobId, CancellationToken.None) is not { } instance)
        {
            // Scheduled but not yet visible: still starting.
            return new JobStepResult(jobId, true, false, JobView.Queued, null, null, null);
        }

        var view = await jobs.ViewAsync(tenant, instance, jobId, CancellationToken.None);
        JobOutcome? outcome = null;
        if (instance.IsCompleted)
        {
            try
            {
                outcome = instance.ReadOutputAs<JobOutcome>();
            }
            catch (JsonException)
            {
                outcome = null;
            }
        }

        return new JobStepResult(jobId, true, view.IsFinished, view.Status, view.ResultUrl, view.Error, outcome?.Figures);
    }
}

/// <summary>Asks a cancelled run's running job to stop too (it may have finished meanwhile: nothing to do then).</summary>
public sealed class WorkflowJobCancel(JobCommands jobs) : TaskActivity<JobStepQuery, bool>
{
    public const string Name = "WorkflowJobCancel";

    public override async Task<bool> RunAsync(TaskActivityContext context, JobStepQuery input)
    {
        var outcome = await jobs.CancelAsync(input.Actor.ToCaller(new TenantId(input.TenantId)), input.JobId, CancellationToken.None);
        return outcome.Succeeded;
    }
}

public sealed record WebhookStepInput(
    string TenantId, string WorkflowId, string RunId, string StepId, JobActor Actor, string Event, JsonElement? Data, DateTime At);

/// <summary>
/// Publishes a webhook step's event on the event path: the tenant's endpoints subscribed to its type (or <c>*</c>)
/// get <c>{ type, timestamp, data: { id: runId, object: "workflow_run", actor, changes: data } }</c>; the audit trail
/// records it. Its id derives from the run and step, so a repeat after a crash is the same event, delivered once.
/// </summary>
public sealed class WorkflowWebhook(EventPublisher events) : TaskActivity<WebhookStepInput, string>
{
    public const string Name = "WorkflowWebhook";

    public override async Task<string> RunAsync(TaskActivityContext context, WebhookStepInput input)
    {
        var tenant = new TenantId(input.TenantId);
        var at = new DateTimeOffset(DateTime.SpecifyKind(input.At, DateTimeKind.Utc));
        var id = Ids.Derived(at, $"workflow.webhook\n{input.TenantId}\n{input.RunId}\n{input.StepId}");
        var changes = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (input.Data is { ValueKind: JsonValueKind.Object } data)
        {
            foreach (var property in data.EnumerateObject())
            {
                changes[property.Name] = property.Value.Clone();
            }
        }
        else if (input.Data is { } value)
        {
            changes["value"] = value.Clone();
        }

        await events.PublishAsync(tenant, new PlatformEvent(input.Event, input.Actor.ToCaller(tenant).Actor, "workflow_run", input.RunId, changes)
        {
            StableId = id,
        },
            CancellationToken.None);
        return id;
    }
}

public sealed record WorkflowFinishedInput(string TenantId, string WorkflowId, string RunId, JobActor Actor, string Status, string? Error, DateTime At);

/// <summary>Announces how a run ended: <c>workflow.run.succeeded</c>, <c>workflow.run.failed</c> or <c>workflow.run.cancelled</c>.</summary>
public sealed class WorkflowFinished(EventPublisher events) : TaskActivity<WorkflowFinishedInput, bool>
{
    public const string Name = "WorkflowFinished";

    public static string EventType(string status) => status switch
    {
        RunStatuses.Succeeded => "workflow.run.succeeded",
        RunStatuses.Cancelled => "workflow.run.cancelled",
        _ => "workflow.run.failed",
    };

    public override async Task<bool> RunAsync(TaskActivityContext context, WorkflowFinishedInput input)
    {
        var tenant = new TenantId(input.TenantId);
        var at = new DateTimeOffset(DateTime.SpecifyKind(input.At, DateTimeKind.Utc));
        await events.PublishAsync(tenant, new PlatformEvent(EventType(input.Status), input.Actor.ToCaller(tenant).Actor, "workflow_run", input.RunId,
            new Dictionary<string, object?> { ["workflowId"] = input.WorkflowId, ["status"] = input.Status, ["error"] = input.Error })
        {
            StableId = Ids.Derived(at, $"workflow.finished\n{input.TenantId}\n{input.RunId}"),
        },
            CancellationToken.None);
        return true;
    }
}
