using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Platform.Functions.Http;

namespace Platform.Functions.Schedules;

/// <summary>The body of <c>POST /api/v1/schedules</c> as documented (the handler reads it member by member, to name the bad field).</summary>
public sealed record CreateScheduleRequest(string? Name, string? Cron, string? TimeZone, DateTimeOffset? RunAt, ScheduleTargetRequest? Target, bool? Enabled);

/// <summary>Exactly one of <c>job</c> and <c>workflow</c>.</summary>
public sealed record ScheduleTargetRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ScheduleJobRequest? Job,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ScheduleWorkflowRequest? Workflow);

public sealed record ScheduleJobRequest(string Type, JsonElement? Parameters);

public sealed record ScheduleWorkflowRequest(string Id, JsonElement? Input);

/// <summary>A target as read from a body: <see cref="Field"/> is where errors about it are reported.</summary>
public sealed record TargetInput(string Field, string Kind, string? JobType, JsonElement? Payload, string? WorkflowId)
{
    public const string Job = "job";
    public const string Workflow = "workflow";
}

/// <summary>
/// A create or patch body: members present are set (<c>Has*</c> tells an explicit null from an absent member), absent
/// ones stay. Wrong types are errors naming the member, so no body reaches the commands half-read.
/// </summary>
public sealed class ScheduleInput
{
    public const int MaxNameLength = 100;
    public const int MaxPayloadChars = 16 * 1024;
    public const int MaxWorkflowIdLength = 100;

    public string? Name { get; private set; }
    public bool HasCron { get; private set; }
    public string? Cron { get; private set; }
    public bool HasTimeZone { get; private set; }
    public string? TimeZone { get; private set; }
    public bool HasRunAt { get; private set; }
    public DateTimeOffset? RunAt { get; private set; }
    public TargetInput? Target { get; private set; }
    public bool? Enabled { get; private set; }

    public static ScheduleInput Read(JsonElement body, Validation validation)
    {
        var input = new ScheduleInput();
        if (body.ValueKind != JsonValueKind.Object)
        {
            validation.Add("body", "must be a JSON object");
            return input;
        }

        JsonElement? target = null, job = null;
        foreach (var property in body.EnumerateObject())
        {
            var value = property.Value;
            switch (property.Name)
            {
                case "name" when value.ValueKind == JsonValueKind.String:
                    input.Name = value.GetString();
                    break;
                case "cron" when value.ValueKind is JsonValueKind.String or JsonValueKind.Null:
                    input.HasCron = true;
                    input.Cron = value.GetString();
                    break;
                case "timeZone" when value.ValueKind is JsonValueKind.String or JsonValueKind.Null:
                    input.HasTimeZone = true;
                    input.TimeZone = value.GetString();
                    break;
                case "runAt" when value.ValueKind == JsonValueKind.Null:
                    input.HasRunAt = true;
                    break;
                case "runAt" when value.ValueKind == JsonValueKind.String:
                    input.HasRunAt = true;
                    if (DateTimeOffset.TryParse(value.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var runAt))
                    {
                        // Whole seconds, like cron occurrences: the due time is part of the run's key.
                        input.RunAt = new DateTimeOffset(runAt.UtcTicks - (runAt.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
                    }
                    else
                    {
                        validation.Add("runAt", "must be an ISO 8601 time such as 2026-12-01T06:00:00Z");
                    }

                    break;
                case "enabled" when value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    input.Enabled = value.GetBoolean();
                    break;
                case "target":
                    target = value;
                    break;
                case "job":
                    job = value;
                    break;
                case "name" or "cron" or "timeZone" or "runAt" or "enabled":
                    validation.Add(property.Name, "has the wrong type");
                    break;
                default:
                    // Read-only or unknown members (id, nextRunAt ...) are ignored, so a GET body can be sent back.
                    break;
            }
        }

        if (target is { } t && job is { ValueKind: not JsonValueKind.Null })
        {
            validation.Add("target", "give target, or the older job member, not both");
        }
        else if (target is { } givenTarget)
        {
            input.Target = ReadTarget(givenTarget, validation);
        }
        else if (job is { } givenJob)
        {
            input.Target = ReadJob(givenJob, "job", validation);
        }

        return input;
    }

    private static TargetInput? ReadTarget(JsonElement target, Validation validation)
    {
        if (target.ValueKind != JsonValueKind.Object)
        {
            validation.Add("target", "must be { \"job\": { type, parameters } } or { \"workflow\": { id, input } }");
            return null;
        }

        var hasJob = target.TryGetProperty("job", out var job) && job.ValueKind != JsonValueKind.Null;
        var hasWorkflow = target.TryGetProperty("workflow", out var workflow) && workflow.ValueKind != JsonValueKind.Null;
        if (hasJob == hasWorkflow)
        {
            validation.Add("target", "must have exactly one of job ({ type, parameters }) and workflow ({ id, input })");
            return null;
        }

        return hasJob ? ReadJob(job, "target.job", validation) : ReadWorkflow(workflow, "target.workflow", validation);
    }

    private static TargetInput? ReadJob(JsonElement job, string field, Validation validation)
    {
        if (job.ValueKind != JsonValueKind.Object)
        {
            validation.Add(field, "must be an object { type, parameters }");
            return null;
        }

        string? type = null;
        if (job.TryGetProperty("type", out var t) && t.ValueKind != JsonValueKind.Null)
        {
            if (t.ValueKind != JsonValueKind.String)
            {
                validation.Add(field + ".type", "must be a string");
                return null;
            }

            type = t.GetString();
        }

        JsonElement? parameters = job.TryGetProperty("parameters", out var p) && p.ValueKind != JsonValueKind.Null ? p.Clone() : null;
        return Payload(parameters, field + ".parameters", validation) ? new TargetInput(field, TargetInput.Job, type, parameters, null) : null;
    }

    private static TargetInput? ReadWorkflow(JsonElement workflow, string field, Validation validation)
    {
        if (workflow.ValueKind != JsonValueKind.Object)
        {
            validation.Add(field, "must be an object { id, input }");
            return null;
        }

        // `id` is the contract's name; the issue text called it workflowId, so both are read.
        var id = workflow.TryGetProperty("id", out var i) ? i : workflow.TryGetProperty("workflowId", out var w) ? w : default;
        if (id.ValueKind != JsonValueKind.String || id.GetString() is not { Length: > 0 and <= MaxWorkflowIdLength } workflowId)
        {
            validation.Add(field + ".id", $"is required: the workflow's id (at most {MaxWorkflowIdLength} characters)");
            return null;
        }

        JsonElement? input = workflow.TryGetProperty("input", out var given) && given.ValueKind != JsonValueKind.Null ? given.Clone() : null;
        return Payload(input, field + ".input", validation) ? new TargetInput(field, TargetInput.Workflow, null, input, workflowId) : null;
    }

    private static bool Payload(JsonElement? payload, string field, Validation validation)
    {
        if (payload is { } json && json.GetRawText().Length > MaxPayloadChars)
        {
            validation.Add(field, $"must be at most {MaxPayloadChars} characters as JSON");
            return false;
        }

        return true;
    }
}
