using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>
/// Retention of received messages: each message row is scheduled at intake (<see cref="ReceiverStore.AcceptAsync"/>)
/// and is due <see cref="ReceiverOptions.MessageRetention"/> after it arrived, judged with the setting as it is when the
/// entry comes due. Before housekeeping deletes the row, its stored body and its seen row go (in that order, so a
/// repeat of the sender id never finds a seen row without its message).
/// </summary>
internal sealed class MessageExpiry(StorageAccount storage, IOptions<ReceiverOptions> options) : IRowExpiry
{
    public string Table => ReceiverStore.TableName;

    /// <remarks>Null (never) for any row but a message: only messages are scheduled.</remarks>
    public DateTimeOffset? DueAt(TableEntity row, string? tag) =>
        row.RowKey.StartsWith(ReceivedMessageEntity.KeyPrefix, StringComparison.Ordinal) &&
        row.GetDateTimeOffset(nameof(ReceivedMessageEntity.ReceivedAt)) is { } receivedAt
            ? receivedAt + options.Value.MessageRetention
            : null;

    public async Task DeletingAsync(TenantId tenant, TableEntity row, CancellationToken cancellationToken)
    {
        var receiverId = row.GetString(nameof(ReceivedMessageEntity.ReceiverId)) ?? "";
        var messageId = row.GetString(nameof(ReceivedMessageEntity.Id)) ?? "";
        await storage.Container(ReceiverStore.PayloadContainer)
            .DeleteBlobIfExistsAsync(ReceiverStore.BlobName(tenant, receiverId, messageId), cancellationToken: cancellationToken);

        // The seen row only if it is this message's (the sender may have reused the id after an earlier expiry).
        var rows = storage.TenantTable(ReceiverStore.TableName).For(tenant);
        var seenKey = SeenMessageEntity.KeyFor(receiverId, row.GetString(nameof(ReceivedMessageEntity.WebhookId)) ?? "");
        if (await rows.GetAsync<SeenMessageEntity>(seenKey, cancellationToken) is { } seen && seen.MessageKey == row.RowKey)
        {
            try
            {
                await rows.DeleteAsync(seenKey, seen.ETag, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                // Gone already, or written again for a newer message: not ours to delete.
            }
        }
    }
}
