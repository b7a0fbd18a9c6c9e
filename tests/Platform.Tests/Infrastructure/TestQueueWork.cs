using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// A queue function and its poison-queue function that only tests declare, to drive the trigger runtime (the standalone
/// consumer and the host's invocation endpoint) into success, failure, poisoning, shutdown and lost leases. A message
/// is <c>{"id":"...","behaviour":"succeed|fail|block-first"}</c>; both handlers record what reached them in a per-app
/// <see cref="WorkLog"/>.
/// </summary>
public static class TestQueueWork
{
    public const string Function = "TestWork";
    public const string Queue = "testwork";
    public const string PoisonFunction = "TestWorkPoison";
    public const string PoisonQueue = Queue + "-poison";

    /// <summary>A tenant table of the tests' own, for rows that housekeeping deletes.</summary>
    public const string RowsTable = "testrows";

    public const string Succeed = "succeed";
    public const string Fail = "fail";

    /// <summary>Waits until cancelled on its first delivery; succeeds on any later one.</summary>
    public const string BlockFirst = "block-first";

    public const string FailureMessage = "the supplier's server said no";
    public const string UnreadableMessage = "Not a test-work message.";

    public static IServiceCollection AddTestQueueWork(this IServiceCollection services)
    {
        services.AddSingleton<WorkLog>();
        services.AddQueueFunction<TestWorkHandler>(Function, Queue);
        services.AddQueueFunction<TestWorkPoisonHandler>(PoisonFunction, PoisonQueue);
        services.AddStorageTable(RowsTable);
        return services;
    }

    public sealed record Work(string Id, string Behaviour);

    public static string Message(string id, string behaviour) => JsonSerializer.Serialize(new Work(id, behaviour), JsonSerializerOptions.Web);

    /// <summary>Puts work on the queue as a producer in the app would.</summary>
    public static async Task<string> SendAsync(StorageAccount storage, string behaviour)
    {
        var id = Guid.NewGuid().ToString("N");
        await storage.Queue(Queue).SendMessageAsync(Message(id, behaviour), TestContext.Current.CancellationToken);
        return id;
    }

    /// <summary>One delivery that reached a handler.</summary>
    public sealed record Run(string Id, long DequeueCount);

    public sealed class WorkLog
    {
        /// <summary>Every message handed to the work function, readable or not.</summary>
        public ConcurrentQueue<QueueInvocation> Deliveries { get; } = new();

        /// <summary>The deliveries of readable work.</summary>
        public ConcurrentQueue<Run> Runs { get; } = new();

        /// <summary>What the poison function received: the work's id, or the raw text of a message it could not read.</summary>
        public ConcurrentQueue<string> Poisoned { get; } = new();

        public TaskCompletionSource FirstBlockingRunStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource FirstBlockingRunCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IReadOnlyList<Run> RunsOf(string id) => [.. Runs.Where(r => r.Id == id)];
    }

    /// <summary>Anything but well-formed work can never succeed, so it is poison at once (as the app's handlers do).</summary>
    private static Work Read(string text)
    {
        Work? work;
        try
        {
            work = JsonSerializer.Deserialize<Work>(text, JsonSerializerOptions.Web);
        }
        catch (JsonException)
        {
            work = null;
        }

        return work is { Id.Length: > 0, Behaviour: Succeed or Fail or BlockFirst }
            ? work
            : throw new PoisonMessageException(UnreadableMessage);
    }

    private sealed class TestWorkHandler(WorkLog log) : IQueueHandler
    {
        public async Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
        {
            log.Deliveries.Enqueue(message);
            var work = Read(message.Text);
            log.Runs.Enqueue(new Run(work.Id, message.DequeueCount));
            switch (work.Behaviour)
            {
                case Fail:
                    throw new HttpRequestException(FailureMessage);
                case BlockFirst when message.DequeueCount == 1:
                    log.FirstBlockingRunStarted.TrySetResult();
                    try
                    {
                        await Task.Delay(Timeout.Infinite, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        log.FirstBlockingRunCancelled.TrySetResult();
                        throw;
                    }

                    break;
            }
        }
    }

    private sealed class TestWorkPoisonHandler(WorkLog log) : IQueueHandler
    {
        public Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
        {
            string poisoned;
            try
            {
                poisoned = Read(message.Text).Id;
            }
            catch (PoisonMessageException)
            {
                poisoned = message.Text;
            }

            log.Poisoned.Enqueue(poisoned);
            return Task.CompletedTask;
        }
    }
}
