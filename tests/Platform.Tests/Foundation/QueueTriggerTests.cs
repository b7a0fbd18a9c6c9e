using Microsoft.Extensions.DependencyInjection;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>The standalone queue runtime consuming a test-only queue function's queue against Azurite.</summary>
public sealed class QueueTriggerTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task MessageIsHandledOnceAndDeleted()
    {
        await using var app = await new PlatformApp(azurite, services: s => s.AddTestQueueWork()).ReadyAsync();
        var log = app.Services.GetRequiredService<TestQueueWork.WorkLog>();

        var id = await TestQueueWork.SendAsync(app.Storage, TestQueueWork.Succeed);

        await Eventually.Until(() => Task.FromResult(log.RunsOf(id).Count), n => n == 1, "the message to be handled");
        await Eventually.Until(() => QueueLength(app, TestQueueWork.Queue), n => n == 0, "the message to be deleted");

        // Once a later message has been received and handled, the finished one has had every chance to come back.
        var later = await TestQueueWork.SendAsync(app.Storage, TestQueueWork.Succeed);
        await Eventually.Until(() => Task.FromResult(log.RunsOf(later).Count), n => n == 1, "a later message to be handled");
        var run = Assert.Single(log.RunsOf(id));
        Assert.Equal(1, run.DequeueCount);
        Assert.Empty(log.Poisoned);
    }

    [Fact]
    public async Task HandlerThatAlwaysThrowsIsTriedFiveTimesThenThePoisonFunctionReceivesTheMessage()
    {
        await using var app = await new PlatformApp(azurite, services: s => s.AddTestQueueWork()).ReadyAsync();
        var log = app.Services.GetRequiredService<TestQueueWork.WorkLog>();

        var id = await TestQueueWork.SendAsync(app.Storage, TestQueueWork.Fail);

        await Eventually.Until(() => Task.FromResult(log.Poisoned.Count), n => n > 0, "the poison function to receive the message");
        Assert.Equal(id, Assert.Single(log.Poisoned));
        Assert.Equal([1L, 2, 3, 4, 5], log.RunsOf(id).Select(r => r.DequeueCount).Order());
        // Moved, not copied: the poison function may already have it while the original's deletion is under way.
        await Eventually.Until(() => QueueLength(app, TestQueueWork.Queue), n => n == 0, "the message to leave its queue");
        await Eventually.Until(() => QueueLength(app, TestQueueWork.PoisonQueue), n => n == 0, "the poisoned message to be deleted once handled");
        Assert.Equal(0, await QueueLength(app, TestQueueWork.PoisonQueue + "-poison"));
    }

    [Theory]
    [InlineData("not work")]
    [InlineData("{\"id\":\"\",\"behaviour\":\"succeed\"}")]
    [InlineData("{\"id\":\"x\",\"behaviour\":\"dance\"}")]
    public async Task UnreadableMessageGoesToThePoisonQueueOnItsFirstTry(string text)
    {
        await using var app = await new PlatformApp(azurite, services: s => s.AddTestQueueWork()).ReadyAsync();
        var log = app.Services.GetRequiredService<TestQueueWork.WorkLog>();

        await app.Storage.Queue(TestQueueWork.Queue).SendMessageAsync(text, Ct);

        await Eventually.Until(() => Task.FromResult(log.Poisoned.Count), n => n > 0, "the poison function to receive the message");
        Assert.Equal(text, Assert.Single(log.Poisoned));
        var delivery = Assert.Single(log.Deliveries);
        Assert.Equal(1, delivery.DequeueCount);
        Assert.Empty(log.Runs);
        await Eventually.Until(() => QueueLength(app, TestQueueWork.Queue), n => n == 0, "the message to leave its queue");
    }

    [Fact]
    public async Task ShutdownHandsAnUnfinishedMessageBackAndAnotherInstanceFinishesIt()
    {
        var prefix = PlatformApp.NewPrefix();
        var quickDrain = new Dictionary<string, string?> { ["Platform:Triggers:DrainTimeout"] = "00:00:00.200" };
        string id;
        await using (var first = await new PlatformApp(azurite, prefix, quickDrain, s => s.AddTestQueueWork()).ReadyAsync())
        {
            id = await TestQueueWork.SendAsync(first.Storage, TestQueueWork.BlockFirst);
            await first.Services.GetRequiredService<TestQueueWork.WorkLog>().FirstBlockingRunStarted.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }

        // The first instance is gone mid-run; its message is visible again at once, not after its lease runs out.
        var visible = await PlatformApp.StorageFor(azurite, prefix).Queue(TestQueueWork.Queue).PeekMessagesAsync(32, Ct);
        var message = Assert.Single(visible.Value);
        Assert.Equal(1, message.DequeueCount);

        await using var second = await new PlatformApp(azurite, prefix, services: s => s.AddTestQueueWork()).ReadyAsync();
        var log = second.Services.GetRequiredService<TestQueueWork.WorkLog>();
        await Eventually.Until(() => QueueLength(second, TestQueueWork.Queue), n => n == 0, "the second instance to finish and delete the message");
        var run = Assert.Single(log.RunsOf(id));
        Assert.Equal(2, run.DequeueCount);
        Assert.Empty(log.Poisoned);
    }

    [Fact]
    public async Task AHandlerWhoseLeaseCannotBeRenewedIsCancelled()
    {
        // The shortest lease allowed, so the first renewal comes after 5 s.
        var shortLease = new Dictionary<string, string?> { ["Platform:Triggers:MessageLease"] = "00:00:10" };
        await using var app = await new PlatformApp(azurite, settings: shortLease, services: s => s.AddTestQueueWork()).ReadyAsync();
        var log = app.Services.GetRequiredService<TestQueueWork.WorkLog>();
        await TestQueueWork.SendAsync(app.Storage, TestQueueWork.BlockFirst);
        await log.FirstBlockingRunStarted.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        // The message is taken from under the running handler (as when its lease ran out and another instance
        // received it): the next renewal fails, and the handler must stop rather than run on beside the other one.
        await app.Storage.Queue(TestQueueWork.Queue).ClearMessagesAsync(Ct);

        await log.FirstBlockingRunCancelled.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
    }

    /// <summary>Every message the queue holds, the invisible ones (being handled, or waiting for a retry) included.</summary>
    private static async Task<int> QueueLength(PlatformApp app, string queue) =>
        (await app.Storage.Queue(queue).GetPropertiesAsync(Ct)).Value.ApproximateMessagesCount;
}
