using System.Net;
using System.Net.Http.Json;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Workflows;
using static Platform.Tests.Workflows.WorkflowApi;

namespace Platform.Tests.Jobs;

/// <summary>
/// A cancel or an approval sent the moment a run or job is started reaches it. The engine's worker can take a start
/// message before the client has written the instance's row; the backend then hands the start back to the queue for two
/// seconds, and a message that reached the instance meanwhile found no history and was deleted: the run waited for its
/// hour, the job ran to the end (docs/architecture.md, "Messages to a queued instance"). Here every write to the engine's
/// instance table is held back, so every start is handed back and every message is sent inside that window.
/// </summary>
public sealed class QueuedInstanceMessageTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override bool SharesApp => false;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs();

    protected override void ConfigureServices(IServiceCollection services)
    {
        services.AddTestJobs();
        services.AddSingleton(new EngineStoragePolicy(new HeldInstanceWrites()));
    }

    [Fact]
    public async Task A_cancel_sent_as_a_run_starts_cancels_it()
    {
        await Admin.DefineAsync("pause", new { id = "pause", kind = "wait", duration = "PT1H" });
        var runId = await Admin.StartRunAsync("pause");

        (await Admin.PostAsync($"{WorkflowsPath}/pause/runs/{runId}/cancel", null, Ct)).EnsureStatus(HttpStatusCode.Accepted);

        var run = await Admin.FinishedRunAsync("pause", runId, TimeSpan.FromSeconds(60));
        Assert.Equal("cancelled", run.GetProperty("status").GetString());
        Assert.Equal("failed", StatusOf(run, "pause"));
    }

    [Fact]
    public async Task An_approval_sent_as_a_run_starts_is_kept_for_its_step()
    {
        await Admin.DefineAsync("approve", new { id = "approve", kind = "approval", timeout = "PT1H" });
        var runId = await Admin.StartRunAsync("approve");

        (await Admin.PostAsJsonAsync($"{WorkflowsPath}/approve/runs/{runId}/events/approve", new { data = new { comment = "early" } }, Ct))
            .EnsureStatus(HttpStatusCode.Accepted);

        var run = await Admin.FinishedRunAsync("approve", runId, TimeSpan.FromSeconds(60));
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        var approval = Step(run, "approve").GetProperty("output");
        Assert.True(approval.GetProperty("approved").GetBoolean());
        Assert.Equal("early", approval.GetProperty("data").GetProperty("comment").GetString());
    }

    [Fact]
    public async Task A_cancel_sent_as_a_job_is_queued_cancels_it()
    {
        await using var scope = App.Services.CreateAsyncScope();
        var job = await scope.ServiceProvider.GetRequiredService<JobCommands>()
            .StartAsync(new Caller(new TenantId(Tenant.Id), Tenant.AdminId, "test-session"), TestJobs.Steps, new TestJobs.Parameters(Steps: 3), Ct);

        Assert.Equal(HttpStatusCode.Accepted, (await Admin.PostAsync($"/api/v1/jobs/{job.Id}/cancel", null, Ct)).StatusCode);
        App.Services.GetRequiredService<TestJobs.StepLog>().Gate.SetResult();

        var finished = await Admin.FinishedJobAsync(job.Id);
        Assert.Equal("cancelled", finished.GetProperty("status").GetString());
    }

    /// <summary>Holds back every write to the engine's instance table by half a second (the worker polls every 100 ms here).</summary>
    private sealed class HeldInstanceWrites : HttpPipelinePolicy
    {
        private static readonly TimeSpan Hold = TimeSpan.FromMilliseconds(500);

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            if (IsInstanceWrite(message))
            {
                Thread.Sleep(Hold);
            }

            ProcessNext(message, pipeline);
        }

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            if (IsInstanceWrite(message))
            {
                await Task.Delay(Hold);
            }

            await ProcessNextAsync(message, pipeline);
        }

        private static bool IsInstanceWrite(HttpMessage message) =>
            message.Request.Method != RequestMethod.Get && message.Request.Uri.Path.Contains("Instances", StringComparison.Ordinal);
    }
}
