using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>The queue message that has <see cref="ReceiverCleanup"/> remove a deleted receiver's messages.</summary>
/// <param name="Pass">1 right after the delete; 2 once hooks that found the receiver just before it went have finished.</param>
public sealed record CleanupMessage(string Tenant, string ReceiverId, int Pass);

/// <summary>
/// The <c>WebhookReceiverCleanup</c> queue function: removes a deleted receiver's message rows, "seen" rows and stored
/// bodies off the request that deleted it, <see cref="ReceiverOptions.CleanupPerRun"/> at a time (a run that stops at
/// the bound queues the next), so a receiver with any number of messages is deleted in one quick request. Other
/// instances may accept a message for up to the hook's cache time after the delete, so a second pass runs once that is
/// over and removes what they stored.
/// </summary>
public sealed class ReceiverCleanup(ReceiverStore store, StorageAccount storage, IOptions<ReceiverOptions> options) : IQueueHandler
{
    public const string FunctionName = "WebhookReceiverCleanup";
    public const string QueueName = "webhook-receiver-cleanup";
    public const int FirstPass = 1;
    public const int LastPass = 2;

    /// <summary>How long after the delete the last pass runs: past the hook's cache time, and past any request then in flight.</summary>
    public static readonly TimeSpan LastPassAfter = TimeSpan.FromMinutes(2);

    public static async Task EnqueueAsync(StorageAccount storage, TenantId tenant, string receiverId, int pass, TimeSpan delay, CancellationToken cancellationToken) =>
        await storage.Queue(QueueName).SendMessageAsync(
            BinaryData.FromObjectAsJson(new CleanupMessage(tenant.Value, receiverId, pass), JsonSerializerOptions.Web),
            visibilityTimeout: delay, cancellationToken: cancellationToken);

    public async Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
    {
        var work = Read(message.Text);
        var tenant = new TenantId(work.Tenant);
        if (await store.GetAsync(tenant, work.ReceiverId, cancellationToken) is not null)
        {
            // The receiver exists: this message does not come from its delete. Nothing of a live receiver is removed.
            return;
        }

        if (!await store.ForgetMessagesAsync(tenant, work.ReceiverId, options.Value.CleanupPerRun, cancellationToken))
        {
            await EnqueueAsync(storage, tenant, work.ReceiverId, work.Pass, TimeSpan.Zero, cancellationToken);
        }
        else if (work.Pass < LastPass)
        {
            await EnqueueAsync(storage, tenant, work.ReceiverId, LastPass, LastPassAfter, cancellationToken);
        }
    }

    private static CleanupMessage Read(string text)
    {
        CleanupMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<CleanupMessage>(text, JsonSerializerOptions.Web);
        }
        catch (JsonException)
        {
            message = null;
        }

        return message is { Tenant.Length: > 0, Pass: >= FirstPass and <= LastPass } && TenantId.TryParse(message.Tenant, out _) && ReceiverStore.IsId(message.ReceiverId)
            ? message
            : throw new PoisonMessageException("Not a webhook receiver cleanup.");
    }
}
