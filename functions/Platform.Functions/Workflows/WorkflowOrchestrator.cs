using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask;
using Platform.Functions.Jobs;
using Platform.Functions.Query;

namespace Platform.Functions.Workflows;

/// <summary>
/// One workflow run: its steps in order, each a few history events (an activity, a timer, an external event), jumps
/// only forward, so a run's history is bounded by its definition (see docs/architecture.md "Workflows"). Step states
/// are the custom status, so <c>GET .../runs/{runId}</c> shows progress; the output is the final state. A cancel
/// request is the external event <see cref="CancelEvent"/>, raced against every wait.
/// </summary>
public sealed class WorkflowOrchestrator : TaskOrchestrator<WorkflowRunInput, WorkflowRunState>
{
    public const string Name = "workflow";
    public const string CancelEvent = "cancel";

    /// <summary>A storage hiccup costs an activity a retry, not the run.</summary>
    public static readonly TaskOptions Retried = TaskOptions.FromRetryPolicy(new RetryPolicy(
        maxNumberOfAttempts: 4, firstRetryInterval: TimeSpan.FromSeconds(1), backoffCoefficient: 2));

    /// <summary>Custom status is kept in a table column: past this, step outputs are left out of it until the run ends.</summary>
    private const int MaxStatusChars = 12_000;

    public override async Task<WorkflowRunState> RunAsync(TaskOrchestrationContext context, WorkflowRunInput input)
    {
        var run = new Run(context, input);
        var (status, error) = await run.RunAsync();
        var final = new WorkflowRunState(status, run.States, error);
        context.SetCustomStatus(null);
        try
        {
            await context.CallActivityAsync<bool>(WorkflowFinished.Name,
                new WorkflowFinishedInput(input.TenantId, input.WorkflowId, input.RunId, input.Actor, status, error, context.CurrentUtcDateTime), Retried);
        }
        catch (TaskFailedException)
        {
            // The run is over either way: an event that could not be published does not change how it ended.
        }

        return final;
    }

    private enum Flow
    {
        Next,
        End,
        Jump,
        Fail,
        Cancelled,
    }

    private sealed record StepEnd(Flow Flow, string? Target = null);

    private sealed class Run(TaskOrchestrationContext context, WorkflowRunInput input)
    {
        private readonly Task<bool> _cancel = context.WaitForExternalEvent<bool>(CancelEvent);
        private readonly Dictionary<string, JsonElement?> _outputs = new(StringComparer.Ordinal);

        public List<StepState> States { get; } = [.. input.Steps.Select(StepState.For)];

        private DateTimeOffset Now => new(context.CurrentUtcDateTime, TimeSpan.Zero);

        public async Task<(string Status, string? Error)> RunAsync()
        {
            Report();
            var steps = input.Steps;
            var status = RunStatuses.Succeeded;
            string? error = null;
            var i = 0;
            while (i < steps.Count)
            {
                if (_cancel.IsCompleted)
                {
                    status = RunStatuses.Cancelled;
                    break;
                }

                var end = await RunStepAsync(steps[i], States[i], i == 0 ? null : steps[i - 1]);
                switch (end.Flow)
                {
                    case Flow.Next:
                        i++;
                        break;
                    case Flow.Jump:
                        var target = IndexOf(end.Target!);
                        for (var k = i + 1; k < target; k++)
                        {
                            Skip(States[k]);
                        }

                        i = target;
                        break;
                    case Flow.End:
                        i = steps.Count;
                        break;
                    case Flow.Fail:
                        status = RunStatuses.Failed;
                        error = $"Step {steps[i].Id} failed: {States[i].Error}";
                        i = steps.Count;
                        break;
                    case Flow.Cancelled:
                        status = RunStatuses.Cancelled;
                        i = steps.Count;
                        break;
                }
            }

            States.ForEach(Skip);
            return (status, error);
        }

        private async Task<StepEnd> RunStepAsync(WorkflowStep step, StepState state, WorkflowStep? previous)
        {
            state.Status = StepStatuses.Running;
            state.StartedAt = Now;
            Report();
            StepEnd end;
            try
            {
                end = step.Kind switch
                {
                    StepKinds.Job => await JobAsync(step, state),
                    StepKinds.Webhook => await WebhookAsync(step, state),
                    StepKinds.Mail => await MailAsync(step, state),
                    StepKinds.Approval => await ApprovalAsync(step, state),
                    StepKinds.Wait => await WaitAsync(step, state),
                    StepKinds.Condition => Condition(step, state, previous!),
                    StepKinds.Parallel => await ParallelAsync(step, state),
                    _ => Failed(state, $"Unknown step kind {step.Kind}."),
                };
            }
            catch (TaskFailedException failed)
            {
                end = Failed(state, Describe(failed.FailureDetails));
            }

            if (state.Status is StepStatuses.Running or StepStatuses.Waiting)
            {
                state.Status = end.Flow is Flow.Fail or Flow.Cancelled ? StepStatuses.Failed : StepStatuses.Succeeded;
            }

            state.FinishedAt = Now;
            _outputs[step.Id] = state.Output;
            Report();
            return end;
        }

        private async Task<StepEnd> JobAsync(WorkflowStep step, StepState state)
        {
            var spec = step.Job!;
            var parameters = spec.Parameters is { } given ? WorkflowReferences.Resolve(given, input.Input, _outputs) : (JsonElement?)null;
            // The job's id derives from the run and the step: a start repeated after a crash finds the job it started.
            var jobId = Storage.Ids.Derived(input.CreatedAt, $"workflow\n{input.TenantId}\n{input.RunId}\n{step.Id}");
            var job = await context.CallActivityAsync<JobStepResult>(WorkflowJobStart.Name,
                new JobStepStart(input.TenantId, input.Actor, spec.Type, parameters, jobId), Retried);
            state.Output = job.Output();
            if (job.Error is not null && !job.Started)
            {
                return Failed(state, job.Error);
            }

            Report();
            var began = context.CurrentUtcDateTime;
            while (!job.Finished)
            {
                // Polls come sparser as the job runs longer (a quarter of its age, 1 s to 5 min): a long job costs a
                // few hundred timers at most.
                var age = context.CurrentUtcDateTime - began;
                var delay = TimeSpan.FromTicks(Math.Clamp(age.Ticks / 4, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(5).Ticks));
                if (!await DelayAsync(delay))
                {
                    try
                    {
                        await context.CallActivityAsync<bool>(WorkflowJobCancel.Name, new JobStepQuery(input.TenantId, input.Actor, jobId), Retried);
                    }
                    catch (TaskFailedException)
                    {
                        // The job may have finished meanwhile; the run is cancelled either way.
                    }

                    return Cancelled(state);
                }

                job = await context.CallActivityAsync<JobStepResult>(WorkflowJobStatus.Name, new JobStepQuery(input.TenantId, input.Actor, jobId), Retried);
                state.Output = job.Output();
            }

            return job.Status is JobOutcome.Succeeded or JobOutcome.CompletedWithErrors
                ? Succeeded(state, state.Output)
                : Failed(state, job.Error ?? $"The job ended {job.Status}.");
        }

        private async Task<StepEnd> WebhookAsync(WorkflowStep step, StepState state)
        {
            var data = step.Data is { } given ? WorkflowReferences.Resolve(given, input.Input, _outputs) : (JsonElement?)null;
            var eventId = await context.CallActivityAsync<string>(WorkflowWebhook.Name,
                new WebhookStepInput(input.TenantId, input.WorkflowId, input.RunId, step.Id, input.Actor, step.Event!, data, context.CurrentUtcDateTime), Retried);
            return Succeeded(state, Json(new JsonObject { ["event"] = step.Event, ["eventId"] = eventId }));
        }

        private async Task<StepEnd> MailAsync(WorkflowStep step, StepState state)
        {
            var sent = await context.CallActivityAsync<int>(WorkflowMailStep.Name,
                new MailStepInput(input.TenantId, input.WorkflowId, input.Name, input.RunId, step.Subject!, step.Message ?? "", step.To!), Retried);
            return Succeeded(state, Json(new JsonObject { ["recipients"] = sent }));
        }

        private async Task<StepEnd> ApprovalAsync(WorkflowStep step, StepState state)
        {
            state.Status = StepStatuses.Waiting;
            Report();
            using var waiting = new CancellationTokenSource();
            using var timing = new CancellationTokenSource();
            var approval = context.WaitForExternalEvent<WorkflowEvent>(step.Id, waiting.Token);
            var timeout = context.CreateTimer(context.CurrentUtcDateTime + step.TimeoutSpan, timing.Token);
            var first = await Task.WhenAny(approval, timeout, _cancel);
            if (first == approval)
            {
                timing.Cancel();
                var decision = approval.Result;
                var rejected = decision.Data is { ValueKind: JsonValueKind.Object } data &&
                    data.TryGetProperty("approved", out var approved) && approved.ValueKind == JsonValueKind.False;
                var output = new JsonObject { ["approved"] = !rejected, ["timedOut"] = false, ["by"] = decision.By };
                if (decision.Data is { } given)
                {
                    output["data"] = JsonNode.Parse(given.GetRawText());
                }

                state.Output = Json(output);
                return rejected ? Failed(state, $"Rejected by {decision.By ?? "someone"}.") : Succeeded(state, state.Output);
            }

            waiting.Cancel();
            if (first == _cancel)
            {
                timing.Cancel();
                return Cancelled(state);
            }

            state.Output = Json(new JsonObject { ["approved"] = false, ["timedOut"] = true, ["by"] = null });
            return step.OnTimeout switch
            {
                null or "fail" => Failed(state, $"No approval came within {step.Timeout}."),
                "continue" => Succeeded(state, state.Output),
                var target => Jump(state, target),
            };
        }

        private async Task<StepEnd> WaitAsync(WorkflowStep step, StepState state)
        {
            state.Status = StepStatuses.Waiting;
            var until = context.CurrentUtcDateTime + step.DurationSpan;
            Report();
            return await DelayAsync(step.DurationSpan)
                ? Succeeded(state, Json(new JsonObject { ["until"] = new DateTimeOffset(until, TimeSpan.Zero) }))
                : Cancelled(state);
        }

        /// <summary>Tests the previous step's output (deterministic: the filter is parsed and evaluated in memory).</summary>
        private StepEnd Condition(WorkflowStep step, StepState state, WorkflowStep previous)
        {
            var output = _outputs.GetValueOrDefault(previous.Id);
            var filter = FilterParser.Parse(step.Filter!, WorkflowValidator.OutputSchema(previous)!);
            var matched = filter.Evaluate(name =>
                output is { ValueKind: JsonValueKind.Object } value && value.TryGetProperty(name, out var field) ? field : null);
            state.Output = Json(new JsonObject { ["matched"] = matched });
            state.Status = StepStatuses.Succeeded;
            if (matched)
            {
                return new StepEnd(Flow.Next);
            }

            return step.Else is null or "end" ? new StepEnd(Flow.End) : new StepEnd(Flow.Jump, step.Else);
        }

        /// <summary>Fans out: every step of the group at once; fans in when all are done. One failure fails the group.</summary>
        private async Task<StepEnd> ParallelAsync(WorkflowStep step, StepState state)
        {
            var children = step.Steps!;
            var ends = await Task.WhenAll(children.Select((child, k) => RunStepAsync(child, state.Steps![k], null)));
            var output = new JsonObject();
            foreach (var child in children)
            {
                output[child.Id] = _outputs.GetValueOrDefault(child.Id) is { } value ? JsonNode.Parse(value.GetRawText()) : null;
            }

            state.Output = Json(output);
            if (ends.Any(e => e.Flow == Flow.Cancelled))
            {
                return Cancelled(state);
            }

            var failed = children.Select((child, k) => (child, end: ends[k])).FirstOrDefault(c => c.end.Flow == Flow.Fail);
            return failed.child is { } first ? Failed(state, $"Step {first.Id} failed: {state.Steps![children.ToList().IndexOf(first)].Error}") : Succeeded(state, state.Output);
        }

        /// <summary>A durable timer raced against a cancel request: false when the run was cancelled first.</summary>
        private async Task<bool> DelayAsync(TimeSpan delay)
        {
            using var timing = new CancellationTokenSource();
            var timer = context.CreateTimer(context.CurrentUtcDateTime + delay, timing.Token);
            if (await Task.WhenAny(timer, _cancel) == timer)
            {
                return true;
            }

            timing.Cancel();
            return false;
        }

        private static StepEnd Succeeded(StepState state, JsonElement? output)
        {
            state.Output = output;
            state.Status = StepStatuses.Succeeded;
            return new StepEnd(Flow.Next);
        }

        private static StepEnd Jump(StepState state, string target)
        {
            state.Status = StepStatuses.Succeeded;
            return new StepEnd(Flow.Jump, target);
        }

        private static StepEnd Failed(StepState state, string error)
        {
            state.Status = StepStatuses.Failed;
            state.Error = error.Length <= 1000 ? error : error[..1000];
            return new StepEnd(Flow.Fail);
        }

        private static StepEnd Cancelled(StepState state)
        {
            state.Status = StepStatuses.Failed;
            state.Error = "The run was cancelled.";
            return new StepEnd(Flow.Cancelled);
        }

        private static void Skip(StepState state)
        {
            if (state.Status == StepStatuses.Pending)
            {
                state.Status = StepStatuses.Skipped;
            }

            state.Steps?.ForEach(Skip);
        }

        private int IndexOf(string id) => input.Steps.ToList().FindIndex(s => s.Id == id);

        private static bool IsWaiting(StepState state) => state.Status == StepStatuses.Waiting || (state.Steps?.Any(IsWaiting) ?? false);

        /// <summary>The step states as the custom status; outputs left out when they would not fit in its column.</summary>
        private void Report()
        {
            var status = States.Any(IsWaiting) ? RunStatuses.Waiting : RunStatuses.Running;
            var shown = new WorkflowRunState(status, States);
            if (JsonSerializer.Serialize(shown, JsonSerializerOptions.Web).Length > MaxStatusChars)
            {
                shown = new WorkflowRunState(status, [.. States.Select(WithoutOutputs)], OutputsOmitted: true);
            }

            context.SetCustomStatus(shown);
        }

        private static StepState WithoutOutputs(StepState state) => new()
        {
            Id = state.Id,
            Kind = state.Kind,
            Status = state.Status,
            StartedAt = state.StartedAt,
            FinishedAt = state.FinishedAt,
            Error = state.Error,
            Steps = state.Steps?.Select(WithoutOutputs).ToList(),
        };

        private static JsonElement Json(JsonObject value) => JsonSerializer.SerializeToElement(value, JsonSerializerOptions.Web);

        private static string Describe(TaskFailureDetails details)
        {
            var innermost = details;
            while (innermost.InnerFailure is { } inner)
            {
                innermost = inner;
            }

            return innermost.ErrorMessage;
        }
    }
}
