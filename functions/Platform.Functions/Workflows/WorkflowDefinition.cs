using System.Text.Json;
using System.Text.Json.Serialization;

namespace Platform.Functions.Workflows;

/// <summary>
/// One step of a workflow as it is stored and as the run's orchestration gets it (a copy taken when the run starts,
/// so editing the workflow never changes a run in flight). Which members are set depends on <see cref="Kind"/>.
/// </summary>
public sealed record WorkflowStep
{
    public string Id { get; init; } = "";

    public string Kind { get; init; } = "";

    /// <summary>job: the job type and its parameters.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JobStepSpec? Job { get; init; }

    /// <summary>webhook: the event type published; mail: not used.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Event { get; init; }

    /// <summary>webhook: the event's data (references to earlier outputs resolved when the step runs).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? Data { get; init; }

    /// <summary>mail: the template (<c>workflow</c>), who gets it, its subject and text.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Template { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public MailRecipients? To { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Subject { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Message { get; init; }

    /// <summary>approval: how long to wait (ISO-8601), and what a timeout does: <c>fail</c>, <c>continue</c> or a later step's id.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Timeout { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? OnTimeout { get; init; }

    /// <summary>approval: who may answer it, <c>role:&lt;name&gt;</c>; null: anyone holding <c>workflows.manage</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Approvers { get; init; }

    /// <summary>wait: the durable timer's length (ISO-8601).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Duration { get; init; }

    /// <summary>condition: the filter over the previous step's output, and where to go when it does not hold.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Filter { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Else { get; init; }

    /// <summary>parallel: the steps that run at once.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<WorkflowStep>? Steps { get; init; }

    [JsonIgnore]
    public TimeSpan TimeoutSpan => WorkflowDurations.Parse(Timeout) ?? TimeSpan.Zero;

    [JsonIgnore]
    public TimeSpan DurationSpan => WorkflowDurations.Parse(Duration) ?? TimeSpan.Zero;
}

public sealed record JobStepSpec(string Type, JsonElement? Parameters);

/// <summary>A mail step's recipients: the active users of a role, or listed users.</summary>
public sealed record MailRecipients(string? Role, IReadOnlyList<string>? UserIds);

public static class WorkflowJson
{
    /// <summary>How deep the JSON a run takes in (its input, an event's data) may nest: the run's view wraps it a few levels deeper still.</summary>
    public const int MaxDepth = 16;

    public static bool IsShallow(JsonElement json, int depth = 0) => json.ValueKind switch
    {
        JsonValueKind.Object => depth < MaxDepth && json.EnumerateObject().All(p => IsShallow(p.Value, depth + 1)),
        JsonValueKind.Array => depth < MaxDepth && json.EnumerateArray().All(i => IsShallow(i, depth + 1)),
        _ => true,
    };
}

public static class StepKinds
{
    public const string Job = "job";
    public const string Webhook = "webhook";
    public const string Mail = "mail";
    public const string Approval = "approval";
    public const string Wait = "wait";
    public const string Condition = "condition";
    public const string Parallel = "parallel";

    public static readonly IReadOnlyList<string> All = [Job, Webhook, Mail, Approval, Wait, Condition, Parallel];
}

/// <summary>ISO-8601 durations (<c>PT24H</c>, <c>P2D</c>, <c>PT90S</c>) as approval timeouts and waits use them.</summary>
public static class WorkflowDurations
{
    public static readonly TimeSpan Min = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Max = TimeSpan.FromDays(30);

    public static TimeSpan? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Length > 40 || text[0] != 'P')
        {
            return null;
        }

        try
        {
            return System.Xml.XmlConvert.ToTimeSpan(text);
        }
        catch (FormatException)
        {
            return null;
        }
        catch (OverflowException)
        {
            return null;
        }
    }
}
