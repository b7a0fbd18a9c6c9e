using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>The standalone queue runtime consuming the real <c>jobs</c> queue against Azurite.</summary>
public sealed class QueueTriggerTests(Azurite azurite)
{
    private static readonly TenantId Tenant = new("01TENANTQUEUES");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task JobRunsToSuccessThroughTheJobsQueue()
    {
        await using var app = await new PlatformApp(azurite, services: s => s.AddTestJobTypes()).ReadyAsync();
        var jobs = app.Services.GetRequiredService<JobQueue>();

        var job = await jobs.StartAsync(Tenant, TestJobTypes.Succeeds, null, Ct);

        var done = await Eventually.Until(() => jobs.Jobs(Tenant).GetAsync<JobEntity>(job.RowKey, Ct),
            j => j!.IsFinished, "the job to finish");
        Assert.Equal(JobStatus.Succeeded, done!.State);
        Assert.Equal(1, done.Attempts);
        Assert.NotNull(done.StartedAt);
        Assert.NotNull(done.FinishedAt);
        await Eventually.Until(() => QueueLength(app, JobQueue.QueueName), n => n == 0, "the message to be deleted");
    }

    [Fact]
    public async Task HandlerThatAlwaysThrowsIsPoisonedAfterFiveTriesAndTheJobSaysWhy()
    {
        await using var app = await new PlatformApp(azurite, services: s => s.AddTestJobTypes()).ReadyAsync();
        var jobs = app.Services.GetRequiredService<JobQueue>();
        var log = app.Services.GetRequiredService<TestJobTypes.JobLog>();

        var job = await jobs.StartAsync(Tenant, TestJobTypes.AlwaysFails, null, Ct);

        var failed = await Eventually.Until(() => jobs.Jobs(Tenant).GetAsync<JobEntity>(job.RowKey, Ct),
            j => j!.IsFinished, "the job to be given up");
        Assert.Equal(JobStatus.Failed, failed!.State);
        Assert.Equal(5, failed.Attempts);
        Assert.Equal(5, log.RunsOf(job.RowKey));
        Assert.Contains("after 5 attempts", failed.Error, StringComparison.Ordinal);
        Assert.Contains(TestJobTypes.FailureMessage, failed.Error, StringComparison.Ordinal);
        Assert.Equal(0, await QueueLength(app, JobQueue.QueueName));
    }

    [Fact]
    public async Task ShutdownHandsAnUnfinishedMessageBackAndAnotherInstanceFinishesIt()
    {
        var prefix = PlatformApp.NewPrefix();
        var quickDrain = new Dictionary<string, string?> { ["Platform:Triggers:DrainTimeout"] = "00:00:00.200" };
        string jobId;
        await using (var first = await new PlatformApp(azurite, prefix, quickDrain, s => s.AddTestJobTypes()).ReadyAsync())
        {
            var job = await first.Services.GetRequiredService<JobQueue>().StartAsync(Tenant, TestJobTypes.BlocksOnFirstAttempt, null, Ct);
            jobId = job.RowKey;
            await first.Services.GetRequiredService<TestJobTypes.JobLog>().FirstBlockingRunStarted.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }

        // The first instance is gone mid-run; its message is visible again at once, not after its lease runs out.
        var visible = await PlatformApp.StorageFor(azurite, prefix).Queue(JobQueue.QueueName).PeekMessagesAsync(32, Ct);
        var message = Assert.Single(visible.Value);
        Assert.Equal(1, message.DequeueCount);

        await using var second = await new PlatformApp(azurite, prefix, services: s => s.AddTestJobTypes()).ReadyAsync();
        var jobs = second.Services.GetRequiredService<JobQueue>();
        var done = await Eventually.Until(() => jobs.Jobs(Tenant).GetAsync<JobEntity>(jobId, Ct), j => j!.IsFinished, "the job to finish on the second instance");
        Assert.Equal(JobStatus.Succeeded, done!.State);
        Assert.Equal(2, done.Attempts);
    }

    [Fact]
    public async Task AHandlerWhoseLeaseCannotBeRenewedIsCancelled()
    {
        // The shortest lease allowed, so the first renewal comes after 5 s.
        var shortLease = new Dictionary<string, string?> { ["Platform:Triggers:MessageLease"] = "00:00:10" };
        await using var app = await new PlatformApp(azurite, settings: shortLease, services: s => s.AddTestJobTypes()).ReadyAsync();
        var log = app.Services.GetRequiredService<TestJobTypes.JobLog>();
        await app.Services.GetRequiredService<JobQueue>().StartAsync(Tenant, TestJobTypes.BlocksOnFirstAttempt, null, Ct);
        await log.FirstBlockingRunStarted.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        // The message is taken from under the running handler (as when its lease ran out and another instance
        // received it): the next renewal fails, and the handler must stop rather than run on beside the other one.
        await app.Storage.Queue(JobQueue.QueueName).ClearMessagesAsync(Ct);

        await log.FirstBlockingRunCancelled.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
    }

    private static async Task<int> QueueLength(PlatformApp app, string queue) =>
        (await app.Storage.Queue(queue).PeekMessagesAsync(32, Ct)).Value.Length;
}
