using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Storage;
using Platform.Functions.Workflows;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;
using static Platform.Tests.Schedules.ScheduleApi;

namespace Platform.Tests.Schedules;

/// <summary>
/// A workflow target, with a stand-in <see cref="IWorkflowRunStarter"/> registered (the workflows capability plugs in
/// the real one): saved, checked against the tenant's workflows, started once per occurrence under the run's id, and
/// followed to the run's status.
/// </summary>
public sealed class ScheduleWorkflowTargetTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private readonly Workflows _workflows = new();

    private static readonly string[] JobsOnly = ["jobs.read", "jobs.write"];

    // The services hold this test's own state.
    protected override bool SharesApp => false;

    protected override void ConfigureServices(IServiceCollection services) => services.AddSingleton<IWorkflowRunStarter>(_workflows);

    private static object Restock => new { workflow = new { id = Workflows.Known, input = new { threshold = 5 } } };

    [Fact]
    public async Task A_workflow_target_starts_one_run_per_occurrence_with_its_input()
    {
        var schedule = await Admin.OneOffAsync(Clock.GetUtcNow().AddMinutes(1), Restock);
        Assert.Equal(Workflows.Known, schedule.GetProperty("target").GetProperty("workflow").Str("id"));
        Assert.False(schedule.GetProperty("target").TryGetProperty("job", out _));

        Clock.Advance(TimeSpan.FromMinutes(2));
        await App.SweepAsync();
        await App.SweepAsync();

        var run = Assert.Single(await Admin.SettledRunsAsync(schedule.Id()));
        Assert.Equal("waiting", run.Str("status"));
        Assert.Equal(run.Id(), run.Str("runId"));
        Assert.Equal(JsonValueKind.Null, run.GetProperty("jobId").ValueKind);
        var start = Assert.Single(_workflows.Starts);
        Assert.Equal(run.Id(), start.Key);
        Assert.Equal(5, start.Value.GetProperty("threshold").GetInt32());

        // The run follows the workflow run's status, its error included, and keeps it once the run finished.
        _workflows.Statuses[run.Id()] = new WorkflowRunStatus("failed", true, "The approval timed out.");
        var failed = Assert.Single(await Admin.RunsAsync(schedule.Id()));
        Assert.Equal("failed", failed.Str("status"));
        Assert.Equal("The approval timed out.", failed.Str("error"));
        _workflows.Statuses[run.Id()] = new WorkflowRunStatus("running", false, null);
        Assert.Equal("failed", Assert.Single(await Admin.RunsAsync(schedule.Id())).Str("status"));
    }

    [Fact]
    public async Task A_run_follows_the_workflow_it_started_even_after_the_target_changes()
    {
        var schedule = await Admin.CreateScheduleAsync(new { name = "every minute", cron = "* * * * *", target = Restock });
        Clock.SetUtcNow(schedule.Time("nextRunAt").AddSeconds(1));
        await App.SweepAsync();
        var run = Assert.Single(await Admin.SettledRunsAsync(schedule.Id()));

        var changed = await Admin.PatchAsJsonAsync($"{SchedulesPath}/{schedule.Id()}", new { target = ExportUsers }, Ct);
        Assert.True(changed.IsSuccessStatusCode, await changed.Content.ReadAsStringAsync(Ct));
        _workflows.Statuses[run.Id()] = new WorkflowRunStatus("succeeded", true, null);
        Assert.Equal("succeeded", Assert.Single(await Admin.RunsAsync(schedule.Id())).Str("status"));
        Assert.All(_workflows.Asked, asked => Assert.Equal(Workflows.Known, asked));
    }

    [Fact]
    public async Task A_workflow_target_needs_a_workflow_of_the_tenant_and_workflows_manage()
    {
        var unknown = await Admin.PostAsJsonAsync(SchedulesPath, new { name = "x", cron = "0 6 * * MON", target = new { workflow = new { id = "no-such-workflow" } } }, Ct);
        Assert.Contains("target.workflow.id", await unknown.ValidationErrorsAsync());

        Assert.True((await Admin.PutRoleAsync("scheduler", JobsOnly)).IsSuccessStatusCode);
        using var scheduler = await SignedInAsync("scheduler@example.com", "scheduler");
        await (await scheduler.PostAsJsonAsync(SchedulesPath, new { name = "x", cron = "0 6 * * MON", target = Restock }, Ct)).ReadProblemAsync(403, "permission_not_held");
        Assert.Empty((await Admin.GetJsonAsync(SchedulesPath)).GetProperty("items").EnumerateArray());
    }

    private sealed class Workflows : IWorkflowRunStarter
    {
        public const string Known = "weekly-restock";

        public ConcurrentDictionary<string, JsonElement> Starts { get; } = new();

        public Task<CommandError?> CheckAsync(Caller caller, string workflowId, CancellationToken cancellationToken) =>
            Task.FromResult(workflowId == Known ? null : CommandError.NotFound("workflow"));

        public ConcurrentDictionary<string, WorkflowRunStatus> Statuses { get; } = new();

        public ConcurrentQueue<string> Asked { get; } = new();

        public Task<Outcome<string>> StartAsync(Caller caller, string workflowId, JsonElement? input, string runId, CancellationToken cancellationToken)
        {
            Starts.TryAdd(runId, input ?? default);
            Statuses.TryAdd(runId, new WorkflowRunStatus("waiting", false, null));
            return Task.FromResult<Outcome<string>>(runId);
        }

        public Task<WorkflowRunStatus?> StatusAsync(TenantId tenant, string workflowId, string runId, CancellationToken cancellationToken)
        {
            Asked.Enqueue(workflowId);
            return Task.FromResult(Statuses.GetValueOrDefault(runId));
        }
    }
}

/// <summary>Run history stays bounded: the newest <c>RunsKept</c> runs of a schedule are kept.</summary>
public sealed class ScheduleHistoryTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Schedules:RunsKept"] = "3",
        ["Platform:Schedules:SweepSchedule"] = "0 0 0 1 1 *",
    };

    [Fact]
    public async Task A_schedule_keeps_only_its_newest_runs()
    {
        var schedule = await Admin.CreateScheduleAsync(new { name = "every minute", cron = "* * * * *", target = ExportUsers });
        var due = schedule.Time("nextRunAt");
        for (var i = 0; i < 10; i++)
        {
            Clock.SetUtcNow(due.AddMinutes(i).AddSeconds(1));
            await App.SweepAsync();
        }

        var runs = await Admin.SettledRunsAsync(schedule.Id(), 3);
        Assert.Equal([due.AddMinutes(9), due.AddMinutes(8), due.AddMinutes(7)], runs.Select(r => r.Time("dueAt")).ToList());
        Assert.Equal(10, (await Admin.GetJsonAsync("/api/v1/jobs?pageSize=100")).GetProperty("items").GetArrayLength());

        // Paged like every list, newest first across pages.
        var pages = await Admin.PagesAsync($"{SchedulesPath}/{schedule.Id()}/runs?pageSize=2");
        Assert.Equal([2, 1], pages.Select(p => p.Count).ToList());
        Assert.Equal(runs.Select(r => r.Id()), pages.SelectMany(p => p).Select(r => r.Id()));
    }
}
