using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Tests.Infrastructure;
using Platform.Tests.Webhooks;
using static Platform.Tests.Webhooks.Receivers.ReceiverApi;
using static Platform.Tests.Workflows.WorkflowApi;

namespace Platform.Tests.Workflows;

/// <summary>
/// Runs through the real durable engine against Azurite: a job, a condition, an approval and a webhook delivered to a
/// real endpoint; timeouts, waits, parallel groups, else branches and cancel.
/// </summary>
public sealed class WorkflowRunTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?> { ["Platform:Jobs:RunWorker"] = "true" };

    private static readonly string[] Reorder = ["inventory.reorder", "workflow.run.succeeded"];
    private static readonly string[] WorkflowsOnly = ["workflows.read", "workflows.manage"];

    [Fact]
    public async Task A_job_condition_approval_webhook_run_completes_when_the_approval_is_sent()
    {
        var receiver = await ReceiverAsync();
        await CreateEndpointAsync(Admin, receiver.Url, Reorder);
        await Admin.DefineAsync("restock",
            new { id = "export", kind = "job", job = ExportUsers },
            new { id = "exported", kind = "condition", filter = "status eq 'succeeded'" },
            new { id = "approve", kind = "approval", timeout = "PT1H" },
            new { id = "reorder", kind = "webhook", @event = "inventory.reorder", data = new { report = "${steps.export.resultUrl}", note = "${input.note}", fixedText = "as written" } });

        var runId = await Admin.StartRunAsync("restock", new { note = "weekly" });
        var waiting = await Admin.StepWaitingAsync("restock", runId, "approve");
        Assert.Equal("waiting", waiting.GetProperty("status").GetString());
        Assert.Equal("succeeded", StatusOf(waiting, "export"));
        Assert.Equal("succeeded", StatusOf(waiting, "exported"));
        Assert.Equal("pending", StatusOf(waiting, "reorder"));
        var export = Step(waiting, "export");
        var jobId = export.GetProperty("output").GetProperty("jobId").GetString()!;
        var resultUrl = export.GetProperty("output").GetProperty("resultUrl").GetString();
        Assert.Equal($"/api/v1/jobs/{jobId}/result", resultUrl);
        Assert.True(Step(waiting, "export").TryGetProperty("startedAt", out _));

        var sent = await Admin.PostAsJsonAsync($"{WorkflowsPath}/restock/runs/{runId}/events/approve", new { data = new { comment = "go" } }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, sent.StatusCode);

        var run = await Admin.FinishedRunAsync("restock", runId);
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.All(run.GetProperty("steps").EnumerateArray(), s => Assert.Equal("succeeded", s.GetProperty("status").GetString()));
        var approval = Step(run, "approve").GetProperty("output");
        Assert.True(approval.GetProperty("approved").GetBoolean());
        Assert.Equal(Tenant.AdminId, approval.GetProperty("by").GetString());
        Assert.Equal("go", approval.GetProperty("data").GetProperty("comment").GetString());

        var hooks = await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count >= 2, "the reorder and run events to be delivered");
        var bodies = hooks.Select(h => JsonDocument.Parse(h.Body).RootElement).ToList();
        var reorder = Assert.Single(bodies, b => b.GetProperty("type").GetString() == "inventory.reorder");
        var changes = reorder.GetProperty("data").GetProperty("changes");
        Assert.Equal(resultUrl, changes.GetProperty("report").GetString());
        Assert.Equal("weekly", changes.GetProperty("note").GetString());
        Assert.Equal("as written", changes.GetProperty("fixedText").GetString());
        Assert.Equal(runId, reorder.GetProperty("data").GetProperty("id").GetString());
        Assert.Single(bodies, b => b.GetProperty("type").GetString() == "workflow.run.succeeded");

        // The run is over: a late event is refused rather than lost silently.
        (await Admin.PostAsJsonAsync($"{WorkflowsPath}/restock/runs/{runId}/events/approve", new { }, Ct)).EnsureStatus(HttpStatusCode.Conflict);
        var runs = await Admin.GetFromJsonAsync<JsonElement>($"{WorkflowsPath}/restock/runs", Ct);
        Assert.Equal(runId, Assert.Single(runs.GetProperty("items").EnumerateArray()).GetProperty("runId").GetString());

        // Past the retention, the retention timer purges the finished run (and only finished ones).
        var waitingRunId = await Admin.StartRunAsync("restock");
        await Admin.StepWaitingAsync("restock", waitingRunId, "approve");
        await using var scope = App.Services.CreateAsyncScope();
        var retention = scope.ServiceProvider.GetRequiredService<Platform.Functions.Workflows.WorkflowRetention>();
        // (The sweep covers every tenant of the app: earlier tests' runs go too.)
        Assert.True(await retention.PurgeAsync(DateTimeOffset.UtcNow.AddMinutes(1), Ct) >= 1);
        await (await Admin.GetAsync($"{WorkflowsPath}/restock/runs/{runId}", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Equal("waiting", (await Admin.RunAsync("restock", waitingRunId)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task An_approval_that_never_comes_takes_the_timeout_branch()
    {
        await Admin.DefineAsync("timeouts",
            new { id = "approve", kind = "approval", timeout = "PT2S", onTimeout = "escalate" },
            new { id = "order", kind = "webhook", @event = "inventory.reorder" },
            new { id = "escalate", kind = "webhook", @event = "inventory.escalated" });
        var runId = await Admin.StartRunAsync("timeouts");

        var run = await Admin.FinishedRunAsync("timeouts", runId);

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        var approval = Step(run, "approve");
        Assert.True(approval.GetProperty("output").GetProperty("timedOut").GetBoolean());
        Assert.False(approval.GetProperty("output").GetProperty("approved").GetBoolean());
        Assert.Equal("skipped", StatusOf(run, "order"));
        Assert.Equal("succeeded", StatusOf(run, "escalate"));

        // Without a branch, a timeout fails the run at the approval.
        await Admin.DefineAsync("strict",
            new { id = "approve", kind = "approval", timeout = "PT1S" },
            new { id = "order", kind = "webhook", @event = "inventory.reorder" });
        var strict = await Admin.FinishedRunAsync("strict", await Admin.StartRunAsync("strict"));
        Assert.Equal("failed", strict.GetProperty("status").GetString());
        Assert.Equal("failed", StatusOf(strict, "approve"));
        Assert.Contains("No approval", Step(strict, "approve").GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("skipped", StatusOf(strict, "order"));
    }

    [Fact]
    public async Task A_rejection_fails_the_run_at_the_approval()
    {
        await Admin.DefineAsync("reject",
            new { id = "approve", kind = "approval", timeout = "PT1H" },
            new { id = "order", kind = "webhook", @event = "inventory.reorder" });
        var runId = await Admin.StartRunAsync("reject");
        await Admin.StepWaitingAsync("reject", runId, "approve");
        (await Admin.PostAsJsonAsync($"{WorkflowsPath}/reject/runs/{runId}/events/approve", new { data = new { approved = false } }, Ct)).EnsureStatus(HttpStatusCode.Accepted);

        var run = await Admin.FinishedRunAsync("reject", runId);
        Assert.Equal("failed", run.GetProperty("status").GetString());
        Assert.Equal("failed", StatusOf(run, "approve"));
        Assert.Equal("skipped", StatusOf(run, "order"));
    }

    [Fact]
    public async Task A_wait_step_is_a_durable_timer_then_the_run_goes_on()
    {
        await Admin.DefineAsync("waits",
            new { id = "pause", kind = "wait", duration = "PT1S" },
            new { id = "after", kind = "webhook", @event = "inventory.checked" });
        var runId = await Admin.StartRunAsync("waits");

        var run = await Admin.FinishedRunAsync("waits", runId);

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        var pause = Step(run, "pause");
        var until = pause.GetProperty("output").GetProperty("until").GetDateTimeOffset();
        // The timer was set for the step's start plus its duration (the task hub fires it at that time, to its queue's granularity).
        Assert.Equal(TimeSpan.FromSeconds(1), until - pause.GetProperty("startedAt").GetDateTimeOffset());
        Assert.True(pause.GetProperty("finishedAt").GetDateTimeOffset() > pause.GetProperty("startedAt").GetDateTimeOffset());
        Assert.Equal("succeeded", StatusOf(run, "after"));
    }

    [Fact]
    public async Task A_parallel_group_fans_out_and_fans_in()
    {
        await Admin.DefineAsync("fan",
            new
            {
                id = "both",
                kind = "parallel",
                steps = new object[]
                {
                    new { id = "export", kind = "job", job = ExportUsers },
                    new { id = "pause", kind = "wait", duration = "PT1S" },
                    new { id = "tell", kind = "webhook", @event = "inventory.started" },
                },
            },
            new { id = "mail", kind = "mail", template = "workflow", to = "role:admin", subject = "Stock checked", message = "The export is ready." },
            new { id = "checked-mail", kind = "condition", filter = "recipients eq 1" },
            new { id = "done", kind = "webhook", @event = "inventory.finished", data = new { job = "${steps.export.jobId}" } });
        var runId = await Admin.StartRunAsync("fan");

        var run = await Admin.FinishedRunAsync("fan", runId);

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        var group = Step(run, "both");
        Assert.Equal("succeeded", group.GetProperty("status").GetString());
        Assert.All(group.GetProperty("steps").EnumerateArray(), s => Assert.Equal("succeeded", s.GetProperty("status").GetString()));
        var output = group.GetProperty("output");
        Assert.Equal(Step(run, "export").GetProperty("output").GetProperty("jobId").GetString(), output.GetProperty("export").GetProperty("jobId").GetString());
        Assert.Equal("inventory.started", output.GetProperty("tell").GetProperty("event").GetString());
        Assert.Equal(1, Step(run, "mail").GetProperty("output").GetProperty("recipients").GetInt32());
        Assert.True(Step(run, "checked-mail").GetProperty("output").GetProperty("matched").GetBoolean());
        var mails = await Eventually.Until(() => Task.FromResult(App.MailTo(Tenant.AdminEmail)), m => m.Any(x => x.Subject == "Stock checked"), "the workflow mail");
        var mail = Assert.Single(mails, m => m.Subject == "Stock checked");
        Assert.Contains("The export is ready.", mail.TextBody, StringComparison.Ordinal);
        Assert.Equal("succeeded", StatusOf(run, "done"));
    }

    [Fact]
    public async Task A_condition_that_does_not_hold_takes_its_else_branch_or_ends_the_run()
    {
        await Admin.DefineAsync("branches",
            new { id = "export", kind = "job", job = ExportUsers },
            new { id = "failed", kind = "condition", filter = "status eq 'failed' or rows gt 1000", @else = "fine" },
            new { id = "alarm", kind = "webhook", @event = "inventory.alarm" },
            new { id = "fine", kind = "webhook", @event = "inventory.fine" });
        var run = await Admin.FinishedRunAsync("branches", await Admin.StartRunAsync("branches"));
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.False(Step(run, "failed").GetProperty("output").GetProperty("matched").GetBoolean());
        Assert.Equal("skipped", StatusOf(run, "alarm"));
        Assert.Equal("succeeded", StatusOf(run, "fine"));

        await Admin.DefineAsync("ends",
            new { id = "export", kind = "job", job = ExportUsers },
            new { id = "failed", kind = "condition", filter = "status eq 'failed'" },
            new { id = "alarm", kind = "webhook", @event = "inventory.alarm" });
        var ended = await Admin.FinishedRunAsync("ends", await Admin.StartRunAsync("ends"));
        Assert.Equal("succeeded", ended.GetProperty("status").GetString());
        Assert.Equal("skipped", StatusOf(ended, "alarm"));
    }

    [Fact]
    public async Task A_cancelled_run_stops_at_its_step_and_skips_the_rest()
    {
        await Admin.DefineAsync("cancels",
            new { id = "approve", kind = "approval", timeout = "PT1H" },
            new { id = "order", kind = "webhook", @event = "inventory.reorder" });
        var runId = await Admin.StartRunAsync("cancels");
        await Admin.StepWaitingAsync("cancels", runId, "approve");

        (await Admin.PostAsync($"{WorkflowsPath}/cancels/runs/{runId}/cancel", null, Ct)).EnsureStatus(HttpStatusCode.Accepted);
        var run = await Admin.FinishedRunAsync("cancels", runId);

        Assert.Equal("cancelled", run.GetProperty("status").GetString());
        Assert.Equal("failed", StatusOf(run, "approve"));
        Assert.Equal("skipped", StatusOf(run, "order"));
        var again = await (await Admin.PostAsync($"{WorkflowsPath}/cancels/runs/{runId}/cancel", null, Ct)).ReadProblemAsync(409, "run_finished");
        Assert.Contains("cancelled", again.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_receiver_with_the_workflows_event_action_approves_a_run_once_per_message()
    {
        await Admin.DefineAsync("remote",
            new { id = "approve", kind = "approval", timeout = "PT1H" },
            new { id = "order", kind = "webhook", @event = "inventory.reorder" });
        var runId = await Admin.StartRunAsync("remote");
        await Admin.StepWaitingAsync("remote", runId, "approve");
        var receiver = await Admin.CreateReceiverAsync("workflows.event");
        var body = JsonSerializer.Serialize(new { type = "approval.given", data = new { workflowId = "remote", runId, name = "approve", data = new { po = "PO-7" } } });

        using var client = App.CreateClient();
        Assert.Equal(HttpStatusCode.Accepted, (await client.SendAsync(SignedStandard(receiver, body, id: "approval-1"), Ct)).StatusCode);
        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal("succeeded", message.GetProperty("status").GetString());
        var run = await Admin.FinishedRunAsync("remote", runId);
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal("PO-7", Step(run, "approve").GetProperty("output").GetProperty("data").GetProperty("po").GetString());

        // The same message again is not acted on twice; a message for another tenant's or a missing run fails, naming why.
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(SignedStandard(receiver, body, id: "approval-1"), Ct)).StatusCode);
        var missing = JsonSerializer.Serialize(new { workflowId = "remote", runId = "01JD3Z8M6Q0000000000000000", name = "approve" });
        Assert.Equal(HttpStatusCode.Accepted, (await client.SendAsync(SignedStandard(receiver, missing, id: "approval-2"), Ct)).StatusCode);
        var failed = await Admin.ProcessedMessageAsync(receiver.Id, count: 2);
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Contains("No workflow run", failed.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_acts_as_its_starter_so_a_job_step_needs_the_starters_permissions()
    {
        // A role that may run workflows but not start jobs: the workflow cannot start a job on its behalf.
        (await Admin.PutAsJsonAsync("/api/v1/roles/flows", new { permissions = WorkflowsOnly }, Ct)).EnsureStatus(HttpStatusCode.Created);
        await Admin.DefineAsync("exports",
            new { id = "export", kind = "job", job = ExportUsers },
            new { id = "tell", kind = "webhook", @event = "inventory.exported" });
        using var runner = await SignedInAsync("runner@example.com", "flows");

        var run = await runner.FinishedRunAsync("exports", await runner.StartRunAsync("exports"));

        Assert.Equal("failed", run.GetProperty("status").GetString());
        Assert.Equal("failed", StatusOf(run, "export"));
        Assert.Contains("jobs.write", Step(run, "export").GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("skipped", StatusOf(run, "tell"));
        Assert.Empty((await Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs", Ct)).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task An_approval_for_a_role_is_answered_only_by_its_members()
    {
        await Admin.DefineAsync("managers", new { id = "approve", kind = "approval", timeout = "PT1H", approvers = "role:manager" });
        var runId = await Admin.StartRunAsync("managers");
        await Admin.StepWaitingAsync("managers", runId, "approve");
        await (await Admin.PostAsJsonAsync($"{WorkflowsPath}/managers/runs/{runId}/events/approve", new { }, Ct)).ReadProblemAsync(403, "forbidden");
        using var manager = await SignedInAsync("boss@example.com", "manager");
        (await manager.PostAsJsonAsync($"{WorkflowsPath}/managers/runs/{runId}/events/approve", new { }, Ct)).EnsureStatus(HttpStatusCode.Accepted);
        var run = await Admin.FinishedRunAsync("managers", runId);
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Events_go_only_to_approval_steps_of_the_run()
    {
        await Admin.DefineAsync("events",
            new { id = "pause", kind = "wait", duration = "PT1H" },
            new { id = "approve", kind = "approval", timeout = "PT1H" });
        var runId = await Admin.StartRunAsync("events");
        await (await Admin.PostAsJsonAsync($"{WorkflowsPath}/events/runs/{runId}/events/pause", new { }, Ct)).ReadProblemAsync(409, "event_not_expected");
        await (await Admin.PostAsJsonAsync($"{WorkflowsPath}/events/runs/{runId}/events/nothing", new { }, Ct)).ReadProblemAsync(409, "event_not_expected");
        var big = new string('x', 5000);
        await (await Admin.PostAsJsonAsync($"{WorkflowsPath}/events/runs/{runId}/events/approve", new { data = new { big } }, Ct)).ReadProblemAsync(400, "validation_failed");
        // Data the run's view could not show (it nests event data a few levels deeper) is refused, not a 500 later.
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", 20)) + "1" + new string('}', 20);
        using (var content = new StringContent($"{{\"data\":{deep}}}", System.Text.Encoding.UTF8, "application/json"))
        {
            await (await Admin.PostAsync($"{WorkflowsPath}/events/runs/{runId}/events/approve", content, Ct)).ReadProblemAsync(400, "validation_failed");
        }

        Assert.Equal(200, (int)(await Admin.GetAsync($"{WorkflowsPath}/events/runs/{runId}", Ct)).StatusCode);
        (await Admin.PostAsync($"{WorkflowsPath}/events/runs/{runId}/cancel", null, Ct)).EnsureStatus(HttpStatusCode.Accepted);
        Assert.Equal("cancelled", (await Admin.FinishedRunAsync("events", runId)).GetProperty("status").GetString());
    }
}

internal static class ResponseAssertions
{
    public static void EnsureStatus(this HttpResponseMessage response, HttpStatusCode status) =>
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode} {response.Content.ReadAsStringAsync().GetAwaiter().GetResult()}");
}
