using System.Collections.Concurrent;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Triggers;

/// <summary>
/// Consumes the queues of queue functions when no Functions host does, with the host's semantics:
/// a received message stays invisible while its handler runs (the lease is renewed), is deleted on success,
/// is made visible again after <see cref="TriggerOptions.RetryDelay"/> on failure, and after
/// <see cref="TriggerOptions.MaxDequeueCount"/> tries moves to <c>&lt;queue&gt;-poison</c>.
/// On shutdown no new message is taken; in-flight ones get <see cref="TriggerOptions.DrainTimeout"/> to finish and
/// are otherwise handed back to the queue at once. A crash leaves them to reappear when their lease runs out:
/// a message is never lost, only delivered again, so handlers are idempotent.
/// </summary>
internal sealed partial class QueueRuntime(
    FunctionCatalog catalog,
    StorageAccount storage,
    StorageInitializer initializer,
    FunctionInvoker invoker,
    IOptions<TriggerOptions> options,
    ILogger<QueueRuntime> logger) : BackgroundService
{
    private static readonly TimeSpan MinPollingInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Polling, leases and the drain are paced on the wall clock, not the app's <see cref="TimeProvider"/>: they
    /// follow the storage service's time, and an app run on a test clock that only moves when told must still
    /// receive its messages (its handlers still see the app's time).
    /// </summary>
    private static readonly TimeProvider WallClock = TimeProvider.System;

    // async, so that a settings error (read here) faults the task as before instead of throwing out of StartAsync.
    protected override async Task ExecuteAsync(CancellationToken stoppingToken) =>
        await StandaloneTriggers.RunEachAsync(options.Value.Standalone == true, initializer, catalog.Queues, ConsumeAsync, stoppingToken);

    private async Task ConsumeAsync(QueueFunction function, CancellationToken stoppingToken)
    {
        var settings = options.Value;
        var queue = storage.Queue(function.QueueName);
        var poison = storage.Queue(function.PoisonQueueName);
        using var slots = new SemaphoreSlim(settings.BatchSize);
        using var abandon = new CancellationTokenSource();
        var inFlight = new ConcurrentDictionary<Task, byte>();
        var idle = MinPollingInterval;

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await slots.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            QueueMessage[] messages;
            try
            {
                var want = Math.Min(32, slots.CurrentCount + 1);
                messages = (await queue.ReceiveMessagesAsync(want, settings.MessageLease, stoppingToken)).Value;
            }
            catch (Exception ex)
            {
                slots.Release();
                if (stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                LogReceiveFailed(logger, function.QueueName, ex.Message);
                await Task.Delay(settings.MaxPollingInterval, WallClock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            if (messages.Length == 0)
            {
                slots.Release();
                await Task.Delay(idle, WallClock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                idle = TimeSpan.FromTicks(Math.Min(idle.Ticks * 2, settings.MaxPollingInterval.Ticks));
                continue;
            }

            idle = MinPollingInterval;
            for (var i = 1; i < messages.Length; i++)
            {
                // Never blocks: no more messages were asked for than slots were free, and only this loop takes slots.
                await slots.WaitAsync(CancellationToken.None);
            }

            foreach (var message in messages)
            {
                var work = ProcessAsync(function, queue, poison, message, abandon.Token);
                inFlight.TryAdd(work, 0);
                _ = work.ContinueWith(done =>
                {
                    inFlight.TryRemove(done, out _);
                    slots.Release();
                }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        var draining = Task.WhenAll(inFlight.Keys);
        if (!draining.IsCompleted)
        {
            LogDraining(logger, function.QueueName, inFlight.Count);
            await Task.WhenAny(draining, Task.Delay(settings.DrainTimeout, WallClock, CancellationToken.None));
            await abandon.CancelAsync();
            await draining.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task ProcessAsync(QueueFunction function, QueueClient queue, QueueClient poison, QueueMessage message, CancellationToken abandon)
    {
        var settings = options.Value;
        var receipt = new ReceiptHolder(message.PopReceipt);
        using var renewing = CancellationTokenSource.CreateLinkedTokenSource(abandon);

        // Cancelled when the lease cannot be renewed: from then on the message may be visible and running on another
        // instance, so this run must stop rather than act on it twice.
        using var running = CancellationTokenSource.CreateLinkedTokenSource(abandon);
        var renewal = RenewAsync(queue, message.MessageId, receipt, running, renewing.Token);

        Exception? failure = null;
        if (message.DequeueCount > settings.MaxDequeueCount)
        {
            // Seen more often than allowed without ever failing cleanly (e.g. it crashed the process): give up.
            failure = new PoisonMessageException($"Dequeued {message.DequeueCount} times without completing.");
        }
        else
        {
            try
            {
                await Task.Yield();
                await invoker.RunQueueAsync(function, new QueueInvocation(message.MessageId, message.Body.ToString(), message.DequeueCount), running.Token);
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        }

        await renewing.CancelAsync();
        await renewal;

        if (receipt.Lost)
        {
            // Not ours any more: the pop receipt is stale, so it can be neither deleted nor released. Whoever holds
            // it now settles it; if nobody does, it reappears when the lease ends.
            LogAbandonedAfterLeaseLost(logger, message.MessageId, function.QueueName);
            return;
        }

        try
        {
            if (failure is null)
            {
                await queue.DeleteMessageAsync(message.MessageId, receipt.Value, CancellationToken.None);
            }
            else if (abandon.IsCancellationRequested && failure is OperationCanceledException)
            {
                await queue.UpdateMessageAsync(message.MessageId, receipt.Value, visibilityTimeout: TimeSpan.Zero, cancellationToken: CancellationToken.None);
                LogReleased(logger, message.MessageId, function.QueueName);
            }
            else if (failure is PoisonMessageException || message.DequeueCount >= settings.MaxDequeueCount)
            {
                await poison.SendMessageAsync(message.Body, cancellationToken: CancellationToken.None);
                await queue.DeleteMessageAsync(message.MessageId, receipt.Value, CancellationToken.None);
                LogPoisoned(logger, message.MessageId, function.QueueName, function.PoisonQueueName, message.DequeueCount, failure.Message);
            }
            else
            {
                await queue.UpdateMessageAsync(message.MessageId, receipt.Value, visibilityTimeout: settings.RetryDelay, cancellationToken: CancellationToken.None);
            }
        }
        catch (Exception ex)
        {
            // Storage refused the settlement; the message reappears when its lease ends and is handled again.
            LogSettleFailed(logger, message.MessageId, function.QueueName, ex.Message);
        }
    }

    private async Task RenewAsync(QueueClient queue, string messageId, ReceiptHolder receipt, CancellationTokenSource running, CancellationToken cancellationToken)
    {
        var lease = options.Value.MessageLease;
        try
        {
            while (true)
            {
                await Task.Delay(lease / 2, WallClock, cancellationToken);

                // Not cancellable once sent: a renewal cut off mid-call could lose the new pop receipt, and then the
                // message could not be deleted and would run again.
                var updated = await queue.UpdateMessageAsync(messageId, receipt.Value, visibilityTimeout: lease, cancellationToken: CancellationToken.None);
                receipt.Value = updated.Value.PopReceipt;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogRenewFailed(logger, messageId, ex.Message);
            receipt.Lost = true;
            await running.CancelAsync();
        }
    }

    /// <summary>Each lease renewal hands out a new pop receipt; settling the message needs the latest.</summary>
    private sealed class ReceiptHolder(string value)
    {
        public string Value { get; set; } = value;

        /// <summary>A renewal failed: the message may already be someone else's.</summary>
        public bool Lost { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not receive from queue {Queue}: {Reason}")]
    private static partial void LogReceiveFailed(ILogger logger, string queue, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopping: waiting for {Count} in-flight messages of queue {Queue}")]
    private static partial void LogDraining(ILogger logger, string queue, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Message {MessageId} of queue {Queue} was not finished before shutdown and is visible again")]
    private static partial void LogReleased(ILogger logger, string messageId, string queue);

    [LoggerMessage(Level = LogLevel.Error, Message = "Message {MessageId} of queue {Queue} moved to {PoisonQueue} after {DequeueCount} tries: {Reason}")]
    private static partial void LogPoisoned(ILogger logger, string messageId, string queue, string poisonQueue, long dequeueCount, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not settle message {MessageId} of queue {Queue}: {Reason}")]
    private static partial void LogSettleFailed(ILogger logger, string messageId, string queue, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Message {MessageId} of queue {Queue} was given up mid-run: its lease could not be renewed")]
    private static partial void LogAbandonedAfterLeaseLost(ILogger logger, string messageId, string queue);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not extend the lease of message {MessageId}: {Reason}; cancelling its handler")]
    private static partial void LogRenewFailed(ILogger logger, string messageId, string reason);
}
