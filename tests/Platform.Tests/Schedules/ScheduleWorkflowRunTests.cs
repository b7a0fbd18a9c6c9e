using System.Text.Json;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;
using static Platform.Tests.Schedules.ScheduleApi;
using static Platform.Tests.Workflows.WorkflowApi;

namespace Platform.Tests.Schedules;

/// <summary>
/// A one-off schedule of a workflow end to end with the real workflow starter: the app's own timer sweeps every second,
/// the durable engine runs the workflow, and the schedule's run follows it to its end.
/// </summary>
public sealed class ScheduleWorkflowRunTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs(new Dictionary<string, string?>
    {
        ["Platform:Schedules:SweepSchedule"] = "* * * * * *",
    });

    private static readonly string[] Finished = ["succeeded", "failed", "cancelled"];

    [Fact]
    public async Task A_one_off_schedule_of_a_workflow_starts_exactly_one_run_and_shows_it_succeed()
    {
        await Admin.DefineAsync("pause", new { id = "pause", kind = "wait", duration = "PT1S" });
        var runAt = DateTimeOffset.UtcNow.AddSeconds(2);
        var id = (await Admin.OneOffAsync(runAt, new { workflow = new { id = "pause", input = new { note = "weekly" } } })).Id();

        var started = Assert.Single(await Admin.SettledRunsAsync(id));
        var runId = started.Str("runId");
        Assert.Equal(started.Id(), runId);
        Assert.Equal(JsonValueKind.Null, started.GetProperty("jobId").ValueKind);
        Assert.Equal(Iso(runAt), Iso(started.Time("dueAt")));

        // The schedule's run shows the workflow run's status until it finishes, then keeps it.
        var runs = await Eventually.Until(() => Admin.RunsAsync(id), r => Finished.Contains(Assert.Single(r).Str("status")),
            "the schedule's run to show the workflow run finished", TimeSpan.FromSeconds(90));
        Assert.Equal("succeeded", Assert.Single(runs).Str("status"));
        Assert.Equal(JsonValueKind.Null, runs[0].GetProperty("error").ValueKind);

        var run = await Admin.RunAsync("pause", runId);
        Assert.Equal("succeeded", run.Str("status"));
        Assert.Equal("succeeded", StatusOf(run, "pause"));
        Assert.Equal("weekly", run.GetProperty("input").Str("note"));

        // Exactly one run of the workflow, and no job: the one-off is spent.
        var workflowRuns = (await Admin.GetJsonAsync($"{WorkflowsPath}/pause/runs")).GetProperty("items").EnumerateArray().Select(r => r.Str("runId")).ToList();
        Assert.Equal([runId], workflowRuns);
        Assert.Empty((await Admin.GetJsonAsync("/api/v1/jobs")).GetProperty("items").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, (await Admin.GetJsonAsync($"{SchedulesPath}/{id}")).GetProperty("nextRunAt").ValueKind);
    }
}
