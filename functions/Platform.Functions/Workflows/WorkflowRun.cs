using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;

namespace Platform.Functions.Workflows;

/// <summary>
/// A run is one orchestration instance, <c>workflow:{tenant}:{workflowId}:{runId}</c>: like a job's, its id carries the
/// tenant, so a run id of another tenant names an instance the caller's tenant cannot form, and the workflow id lets
/// one workflow's runs be listed by prefix.
/// </summary>
public static class WorkflowRunIds
{
    private const string Prefix = "workflow:";

    public static string InstanceId(TenantId tenant, string workflowId, string runId) => $"{Prefix}{tenant.Value}:{workflowId}:{runId}";

    /// <summary>Every run of one workflow of a tenant (workflow ids hold no ':', so no workflow's prefix is another's).</summary>
    public static string WorkflowPrefix(TenantId tenant, string workflowId) => $"{Prefix}{tenant.Value}:{workflowId}:";

    /// <summary>Every run of a tenant.</summary>
    public static string TenantPrefix(TenantId tenant) => $"{Prefix}{tenant.Value}:";

    public static bool TryParse(string instanceId, out TenantId tenant, [NotNullWhen(true)] out string? workflowId, [NotNullWhen(true)] out string? runId)
    {
        tenant = default;
        workflowId = null;
        runId = null;
        if (!instanceId.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var parts = instanceId[Prefix.Length..].Split(':');
        if (parts.Length != 3 || !TenantId.TryParse(parts[0], out tenant))
        {
            return false;
        }

        workflowId = parts[1];
        runId = parts[2];
        return true;
    }

    /// <summary>Run ids are the app's ids (or ones derived like them by a schedule): letters and digits.</summary>
    public static bool IsWellFormed(string? runId) => JobIds.IsWellFormed(runId);
}

/// <summary>What a run's orchestration starts with: the workflow as it was when the run started, and the run's input.</summary>
public sealed record WorkflowRunInput(
    string TenantId, string WorkflowId, string RunId, string Name, JobActor Actor, DateTimeOffset CreatedAt, IReadOnlyList<WorkflowStep> Steps, JsonElement? Input)
{
    [JsonIgnore]
    public TenantId Tenant => new(TenantId);
}

public static class RunStatuses
{
    public const string Running = "running";
    public const string Waiting = "waiting";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}

public static class StepStatuses
{
    public const string Pending = "pending";
    public const string Running = "running";
    public const string Waiting = "waiting";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Skipped = "skipped";
}

/// <summary>One step as the run shows it; a parallel group holds its steps' states.</summary>
public sealed class StepState
{
    public string Id { get; set; } = "";

    public string Kind { get; set; } = "";

    public string Status { get; set; } = StepStatuses.Pending;

    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }

    public JsonElement? Output { get; set; }

    public string? Error { get; set; }

    public List<StepState>? Steps { get; set; }

    public static StepState For(WorkflowStep step) => new()
    {
        Id = step.Id,
        Kind = step.Kind,
        Steps = step.Steps is { } children ? [.. children.Select(For)] : null,
    };
}

/// <summary>The orchestration's custom status while it runs, and its output when it ends.</summary>
public sealed record WorkflowRunState(string Status, IReadOnlyList<StepState> Steps, string? Error = null, bool OutputsOmitted = false);

/// <summary>What an approval step waits for: the event sent to the run, and who sent it.</summary>
public sealed record WorkflowEvent(JsonElement? Data, string? By);
