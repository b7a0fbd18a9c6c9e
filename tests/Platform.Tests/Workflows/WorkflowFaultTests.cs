using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;
using static Platform.Tests.Workflows.WorkflowApi;

namespace Platform.Tests.Workflows;

/// <summary>A run whose app instance goes away mid-step, finished by another instance on the same task hub.</summary>
public sealed class WorkflowFaultTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Takeover = TimeSpan.FromMinutes(3);

    private static readonly Dictionary<string, string?> Quick = new() { ["Platform:Jobs:StopTimeout"] = "00:00:01" };

    [Fact]
    public async Task A_run_whose_instance_dies_mid_step_resumes_at_that_step()
    {
        var prefix = PlatformApp.NewPrefix();
        string token;
        string runId;
        string jobId;
        await using (var first = await new PlatformApp(azurite, prefix, PlatformApp.RunsJobs(Quick)).ReadyAsync())
        {
            var tenant = await first.SignUpAsync();
            token = (await first.LoginAsync(tenant)).AccessToken;
            using var client = first.CreateClient(token);
            await client.DefineAsync("resume",
                new { id = "export", kind = "job", job = ExportUsers },
                new { id = "pause", kind = "wait", duration = "PT4S" },
                new { id = "after", kind = "condition", filter = "until ne null" });
            runId = await client.StartRunAsync("resume");
            var waiting = await Eventually.Until(() => client.RunAsync("resume", runId),
                run => StatusOf(run, "pause") == "waiting", "the run to reach its wait step", Takeover);
            jobId = Step(waiting, "export").GetProperty("output").GetProperty("jobId").GetString()!;

            // The instance goes away while the run waits on its timer.
        }

        await using var second = await new PlatformApp(azurite, prefix, PlatformApp.RunsJobs(Quick)).ReadyAsync();
        using var resumed = second.CreateClient(token);
        var run = await resumed.FinishedRunAsync("resume", runId, Takeover);

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal(["succeeded", "succeeded", "succeeded"], run.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("status").GetString()));
        // The job step was not run again: the same job, and the only one.
        Assert.Equal(jobId, Step(run, "export").GetProperty("output").GetProperty("jobId").GetString());
        var jobs = await resumed.GetFromJsonAsync<JsonElement>("/api/v1/jobs", Ct);
        Assert.Equal(jobId, Assert.Single(jobs.GetProperty("items").EnumerateArray()).GetProperty("id").GetString());
        Assert.True(Step(run, "after").GetProperty("output").GetProperty("matched").GetBoolean());
    }
}
