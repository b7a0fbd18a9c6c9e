using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Tests.Infrastructure;
using static Platform.Tests.Workflows.WorkflowApi;

namespace Platform.Tests.Workflows;

/// <summary>A job step whose job is still running: the run waits for it, and a cancel of the run cancels the job.</summary>
public sealed class WorkflowJobStepTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string Gated = "test.gated";

    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs();

    protected override void ConfigureServices(IServiceCollection services)
    {
        services.AddTestJobs();
        services.AddJobType<GatedJobType>(Gated);
    }

    [Fact]
    public async Task Cancelling_a_run_at_a_job_step_cancels_the_job_and_skips_the_rest()
    {
        var log = App.Services.GetRequiredService<TestJobs.StepLog>();
        await Admin.DefineAsync("long",
            new { id = "work", kind = "job", job = new { type = Gated, parameters = new { steps = 3 } } },
            new { id = "tell", kind = "webhook", @event = "inventory.done" });
        var runId = await Admin.StartRunAsync("long");
        await log.FirstStepStarted.Task.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        var running = await Admin.RunUntilAsync("long", runId, run => Step(run, "work").TryGetProperty("output", out var o) && o.ValueKind == JsonValueKind.Object,
            "the job step to show its job");
        Assert.Equal("running", StatusOf(running, "work"));
        var jobId = Step(running, "work").GetProperty("output").GetProperty("jobId").GetString()!;

        (await Admin.PostAsync($"{WorkflowsPath}/long/runs/{runId}/cancel", null, Ct)).EnsureStatus(HttpStatusCode.Accepted);
        var run = await Admin.FinishedRunAsync("long", runId);
        Assert.Equal("cancelled", run.GetProperty("status").GetString());
        Assert.Equal("failed", StatusOf(run, "work"));
        Assert.Equal("skipped", StatusOf(run, "tell"));

        // The job heard the cancel: it stops at its next step boundary once its current step ends.
        log.Gate.SetResult();
        var job = await Admin.FinishedJobAsync(jobId);
        Assert.Equal("cancelled", job.GetProperty("status").GetString());
        Assert.Single(log.Runs);
    }

    /// <summary>The tests' step job as a job type a workflow step can name: its steps wait on the test's gate.</summary>
    public sealed class GatedJobType(JobCommands jobs) : IJobType
    {
        public string? Check(JsonElement? parameters, string field, Validation validation)
        {
            if (parameters is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty("steps", out var steps) && steps.ValueKind == JsonValueKind.Number)
            {
                return Platform.Functions.Roles.Permissions.JobsRead;
            }

            validation.Add(field + ".steps", "is required");
            return null;
        }

        public Task<JobView> StartAsync(Caller caller, JsonElement? parameters, string jobId, CancellationToken cancellationToken) =>
            jobs.StartAsync(caller, TestJobs.Steps, new TestJobs.Parameters(parameters!.Value.GetProperty("steps").GetInt32()), cancellationToken, jobId);
    }
}
