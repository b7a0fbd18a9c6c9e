using System.Text.Json;
using System.Text.RegularExpressions;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Query;
using Platform.Functions.Webhooks;

namespace Platform.Functions.Workflows;

/// <summary>
/// Reads a workflow's steps from the request body and checks them as they are saved: every mistake is a field error
/// named after the step (<c>steps[2].timeout</c>, <c>steps[3].steps[0].job.type</c>). Jumps (<c>onTimeout</c>,
/// <c>else</c>) may only name a later step of the top-level list, so no definition can loop: a run visits each step
/// at most once, which is what bounds its history.
/// </summary>
public sealed partial class WorkflowValidator(JobTypes jobTypes)
{
    public const int MaxSteps = 25;
    public const int MaxParallelSteps = 10;
    public const int MaxDefinitionChars = 32_000;
    public const int MaxNameLength = 100;
    public const int MaxDataChars = 8_000;
    public const int MaxRecipients = 50;

    public IReadOnlyList<WorkflowStep>? Read(JsonElement? steps, Validation validation)
    {
        if (steps is not { ValueKind: JsonValueKind.Array } list)
        {
            validation.Add("steps", "is required: a list of steps");
            return null;
        }

        if (list.GetRawText().Length > MaxDefinitionChars)
        {
            validation.Add("steps", $"must be at most {MaxDefinitionChars} characters as JSON");
            return null;
        }

        var count = list.GetArrayLength();
        if (count == 0)
        {
            validation.Add("steps", "must hold at least one step");
            return null;
        }

        var all = new List<WorkflowStep>();
        var parsed = new List<WorkflowStep>();
        var index = 0;
        foreach (var element in list.EnumerateArray())
        {
            parsed.Add(ReadStep(element, $"steps[{index}]", validation, nested: false));
            index++;
        }

        foreach (var step in parsed)
        {
            all.Add(step);
            all.AddRange(step.Steps ?? []);
        }

        if (all.Count > MaxSteps)
        {
            validation.Add("steps", $"must hold at most {MaxSteps} steps, counting those inside parallel groups");
        }

        // Ids are unique across the whole workflow (an approval's event is named like its step).
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < parsed.Count; i++)
        {
            var children = parsed[i].Steps ?? [];
            if (parsed[i].Id.Length > 0 && !seen.Add(parsed[i].Id))
            {
                validation.Add($"steps[{i}].id", $"'{parsed[i].Id}' is used by an earlier step");
            }

            for (var j = 0; j < children.Count; j++)
            {
                if (children[j].Id.Length > 0 && !seen.Add(children[j].Id))
                {
                    validation.Add($"steps[{i}].steps[{j}].id", $"'{children[j].Id}' is used by an earlier step");
                }
            }
        }

        for (var i = 0; i < parsed.Count; i++)
        {
            CheckJumps(parsed, i, validation);
            CheckReferences(parsed, i, validation);
        }

        return validation.IsValid ? parsed : null;
    }

    private WorkflowStep ReadStep(JsonElement element, string at, Validation validation, bool nested)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            validation.Add(at, "must be an object with id and kind");
            return new WorkflowStep();
        }

        var fields = new StepFields(element, at, validation);
        var id = fields.Text("id");
        if (id is null)
        {
            validation.Add(at + ".id", "is required");
        }
        else if (!StepId().IsMatch(id) || id.Equals(WorkflowOrchestrator.CancelEvent, StringComparison.OrdinalIgnoreCase))
        {
            validation.Add(at + ".id", "must be 1-40 letters, digits, '-' or '_' (and not 'cancel')");
        }

        var kind = fields.Text("kind");
        var step = new WorkflowStep { Id = id ?? "", Kind = kind ?? "" };
        switch (kind)
        {
            case StepKinds.Job:
                fields.Allow("job");
                if (!element.TryGetProperty("job", out var job) || job.ValueKind != JsonValueKind.Object)
                {
                    validation.Add(at + ".job", "is required: { type, parameters }");
                    return step;
                }

                var type = job.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                JsonElement? parameters = job.TryGetProperty("parameters", out var p) && p.ValueKind != JsonValueKind.Null ? p.Clone() : null;
                jobTypes.Check(type, parameters, at + ".job", validation);
                return step with { Job = new JobStepSpec(type ?? "", parameters) };

            case StepKinds.Webhook:
                fields.Allow("event", "data");
                var name = fields.Text("event");
                if (name is null)
                {
                    validation.Add(at + ".event", "is required: the event type the tenant's endpoints subscribe to, e.g. inventory.reorder");
                }
                else if (!EventCatalogue.IsTenantEventType(name))
                {
                    validation.Add(at + ".event", "must be a dotted lowercase name (e.g. inventory.reorder) that is not one of the product's own event types or families (auth, user, apikey, role, tenant, schema, job, webhook, workflow)");
                }

                var data = fields.Json("data");
                if (data is { } d && (d.GetRawText().Length > MaxDataChars || !WorkflowJson.IsShallow(d)))
                {
                    validation.Add(at + ".data", $"must be at most {MaxDataChars} characters as JSON, nested at most {WorkflowJson.MaxDepth} levels");
                }

                return step with { Event = name, Data = data };

            case StepKinds.Mail:
                fields.Allow("template", "to", "subject", "message");
                var template = fields.Text("template");
                if (template != WorkflowMail.Template)
                {
                    validation.Add(at + ".template", $"must be {WorkflowMail.Template}");
                }

                var subject = fields.Text("subject") ?? "";
                if (subject.Length is 0 or > 200)
                {
                    validation.Add(at + ".subject", "is required, at most 200 characters");
                }

                var message = fields.Text("message") ?? "";
                if (message.Length > 4000)
                {
                    validation.Add(at + ".message", "must be at most 4000 characters");
                }

                return step with { Template = template, To = ReadRecipients(element, at + ".to", validation), Subject = subject, Message = message };

            case StepKinds.Approval:
                fields.Allow("timeout", "onTimeout", "approvers");
                var approvers = fields.Text("approvers");
                if (approvers is not null && !(approvers.StartsWith("role:", StringComparison.Ordinal) && approvers.Length is > 5 and <= 69))
                {
                    validation.Add(at + ".approvers", "must be \"role:<name>\": only users with that role may answer the approval");
                }

                var timeout = fields.Text("timeout");
                CheckDuration(timeout, at + ".timeout", validation);
                var onTimeout = fields.Text("onTimeout");
                if (nested && onTimeout is not (null or "fail" or "continue"))
                {
                    validation.Add(at + ".onTimeout", "inside a parallel group must be fail or continue");
                }

                return step with { Timeout = timeout, OnTimeout = onTimeout, Approvers = approvers };

            case StepKinds.Wait:
                fields.Allow("duration");
                var duration = fields.Text("duration");
                CheckDuration(duration, at + ".duration", validation);
                return step with { Duration = duration };

            case StepKinds.Condition:
                fields.Allow("filter", "else");
                if (nested)
                {
                    validation.Add(at + ".kind", "a condition cannot be inside a parallel group (it decides where the workflow goes next)");
                }

                var filter = fields.Text("filter");
                if (filter is null)
                {
                    validation.Add(at + ".filter", "is required: an expression over the previous step's output, e.g. lowStockCount gt 0");
                }

                return step with { Filter = filter, Else = fields.Text("else") };

            case StepKinds.Parallel:
                fields.Allow("steps");
                if (nested)
                {
                    validation.Add(at + ".kind", "a parallel group cannot hold another one (groups nest one level deep)");
                    return step;
                }

                if (!element.TryGetProperty("steps", out var children) || children.ValueKind != JsonValueKind.Array ||
                    children.GetArrayLength() is < 2 or > MaxParallelSteps)
                {
                    validation.Add(at + ".steps", $"must list 2 to {MaxParallelSteps} steps");
                    return step;
                }

                var list = new List<WorkflowStep>();
                var index = 0;
                foreach (var child in children.EnumerateArray())
                {
                    list.Add(ReadStep(child, $"{at}.steps[{index}]", validation, nested: true));
                    index++;
                }

                return step with { Steps = list };

            default:
                validation.Add(at + ".kind", $"must be one of: {string.Join(", ", StepKinds.All)}");
                return step;
        }
    }

    private static MailRecipients? ReadRecipients(JsonElement element, string at, Validation validation)
    {
        if (!element.TryGetProperty("to", out var to))
        {
            validation.Add(at, "is required: \"role:<name>\" or a list of user ids");
            return null;
        }

        if (to.ValueKind == JsonValueKind.String && to.GetString() is { } text && text.StartsWith("role:", StringComparison.Ordinal) && text.Length is > 5 and <= 69)
        {
            return new MailRecipients(text[5..], null);
        }

        if (to.ValueKind == JsonValueKind.Array && to.GetArrayLength() is > 0 and <= MaxRecipients &&
            to.EnumerateArray().All(u => u.ValueKind == JsonValueKind.String && u.GetString() is { Length: > 0 and <= 64 }))
        {
            return new MailRecipients(null, [.. to.EnumerateArray().Select(u => u.GetString()!).Distinct(StringComparer.Ordinal)]);
        }

        validation.Add(at, $"must be \"role:<name>\" or a list of 1 to {MaxRecipients} user ids");
        return null;
    }

    private static void CheckDuration(string? text, string at, Validation validation)
    {
        if (text is null)
        {
            validation.Add(at, "is required: an ISO-8601 duration such as PT24H");
        }
        else if (WorkflowDurations.Parse(text) is not { } span || span < WorkflowDurations.Min || span > WorkflowDurations.Max)
        {
            validation.Add(at, "must be an ISO-8601 duration (e.g. PT2S, PT24H, P2D) from 1 second to 30 days");
        }
    }

    /// <summary>onTimeout and else name a later top-level step (or end/fail/continue); a condition's filter fits the step before it.</summary>
    private static void CheckJumps(List<WorkflowStep> steps, int index, Validation validation)
    {
        var step = steps[index];
        var at = $"steps[{index}]";
        string? target = step.Kind switch
        {
            StepKinds.Approval when step.OnTimeout is not (null or "fail" or "continue") => step.OnTimeout,
            StepKinds.Condition when step.Else is not (null or "end") => step.Else,
            _ => null,
        };
        if (target is not null)
        {
            var field = step.Kind == StepKinds.Approval ? "onTimeout" : "else";
            var found = IndexOf(steps, target);
            if (found < 0)
            {
                validation.Add($"{at}.{field}", step.Kind == StepKinds.Approval
                    ? $"must be fail, continue or the id of a later step; no top-level step is '{target}'"
                    : $"must be end or the id of a later step; no top-level step is '{target}'");
            }
            else if (found <= index)
            {
                validation.Add($"{at}.{field}", $"'{target}' is not after this step: jumps go forward only, so a workflow cannot loop");
            }
        }

        if (step.Kind == StepKinds.Condition && step.Filter is { } filter)
        {
            if (index == 0)
            {
                validation.Add($"{at}.kind", "a condition tests the previous step's output, so it cannot be the first step");
            }
            else if (OutputSchema(steps[index - 1]) is not { } schema)
            {
                validation.Add($"{at}.kind", $"a condition cannot follow a {steps[index - 1].Kind} step: that step's output has no fields to test");
            }
            else
            {
                try
                {
                    FilterParser.Parse(filter, schema);
                }
                catch (FilterException ex)
                {
                    validation.Add($"{at}.filter", ex.Message);
                }
            }
        }
    }

    /// <summary>References (<c>${steps.report.resultUrl}</c>) in job parameters and webhook data name earlier steps.</summary>
    private static void CheckReferences(List<WorkflowStep> steps, int index, Validation validation)
    {
        var earlier = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < index; i++)
        {
            earlier.Add(steps[i].Id);
            foreach (var child in steps[i].Steps ?? [])
            {
                earlier.Add(child.Id);
            }
        }

        void Check(WorkflowStep step, string at)
        {
            var (field, json) = step.Kind switch
            {
                StepKinds.Job => ($"{StepKinds.Job}.parameters", step.Job?.Parameters),
                StepKinds.Webhook => ("data", step.Data),
                _ => ("", null),
            };
            if (json is null)
            {
                return;
            }

            foreach (var reference in WorkflowReferences.In(json.Value))
            {
                if (reference.StepId is { } id && !earlier.Contains(id))
                {
                    validation.Add($"{at}.{field}", $"${{{reference.Text}}} names no earlier step: a step may use the outputs of steps before it");
                }
            }
        }

        Check(steps[index], $"steps[{index}]");
        for (var j = 0; j < (steps[index].Steps?.Count ?? 0); j++)
        {
            Check(steps[index].Steps![j], $"steps[{index}].steps[{j}]");
        }
    }

    private static int IndexOf(List<WorkflowStep> steps, string id)
    {
        for (var i = 0; i < steps.Count; i++)
        {
            if (string.Equals(steps[i].Id, id, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// The fields a condition may test after a step of this kind. A job's output has its id, status and result link,
    /// and the job's headline figures (<see cref="JobOutcome.Figures"/>, known only when it ran): any other name is
    /// taken for a figure, a number.
    /// </summary>
    public static FilterSchema? OutputSchema(WorkflowStep step) => step.Kind switch
    {
        StepKinds.Job => new FilterSchema(
            new Dictionary<string, FieldType> { ["jobId"] = FieldType.String, ["status"] = FieldType.String, ["resultUrl"] = FieldType.String },
            otherFieldType: name => FilterParser.IsIdentifier(name) ? FieldType.Number : null),
        StepKinds.Approval => new FilterSchema(new Dictionary<string, FieldType>
        {
            ["approved"] = FieldType.Boolean, ["timedOut"] = FieldType.Boolean, ["by"] = FieldType.String,
        }),
        StepKinds.Webhook => new FilterSchema(new Dictionary<string, FieldType> { ["event"] = FieldType.String, ["eventId"] = FieldType.String }),
        StepKinds.Mail => new FilterSchema(new Dictionary<string, FieldType> { ["recipients"] = FieldType.Number }),
        StepKinds.Wait => new FilterSchema(new Dictionary<string, FieldType> { ["until"] = FieldType.Timestamp }),
        StepKinds.Condition => new FilterSchema(new Dictionary<string, FieldType> { ["matched"] = FieldType.Boolean }),
        _ => null,
    };

    [GeneratedRegex("^[A-Za-z0-9_-]{1,40}$")]
    private static partial Regex StepId();

    /// <summary>Reads a step's members and refuses members its kind does not have (a typo such as onTimout).</summary>
    private sealed class StepFields
    {
        private readonly JsonElement _element;
        private readonly string _at;
        private readonly Validation _validation;

        public StepFields(JsonElement element, string at, Validation validation)
        {
            _element = element;
            _at = at;
            _validation = validation;
        }

        public string? Text(string name)
        {
            if (!_element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (value.ValueKind != JsonValueKind.String)
            {
                _validation.Add($"{_at}.{name}", "must be a string");
                return null;
            }

            var text = value.GetString()!.Trim();
            return text.Length == 0 ? null : text;
        }

        public JsonElement? Json(string name) =>
            _element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value.Clone() : null;

        public void Allow(params string[] names)
        {
            foreach (var property in _element.EnumerateObject())
            {
                if (property.Name is not ("id" or "kind") && !names.Contains(property.Name, StringComparer.Ordinal))
                {
                    _validation.Add($"{_at}.{property.Name}", "is not a field of this kind of step");
                }
            }
        }
    }
}
