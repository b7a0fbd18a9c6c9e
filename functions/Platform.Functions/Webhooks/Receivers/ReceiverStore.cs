using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>A receiver as the hook needs it: its tenant, its row and its HMAC key.</summary>
public sealed record HookTarget(TenantId Tenant, ReceiverEntity Receiver, byte[] Key);

/// <summary>What the hook did with a message: accepted it, or found it had been received before.</summary>
public sealed record Receipt(ReceivedMessageEntity Message, bool Duplicate);

/// <summary>The queue message that hands a received message to <see cref="ReceiptProcessor"/>.</summary>
public sealed record ReceiptMessage(string Tenant, string ReceiverId, string MessageKey);

/// <summary>
/// Receivers and their messages. A receiver is a row of its tenant's partition of <c>webhookreceivers</c> plus a row
/// of the platform index <c>webhookreceiverindex</c> (receiver id → tenant), written first, so the public hook can find
/// the tenant from the URL alone. The count against <see cref="ReceiverOptions.MaxReceiversPerTenant"/> moves in the
/// receiver's own transaction (<see cref="TenantCounter"/>). Messages live in the same partition; their raw bodies are
/// blobs of <c>webhookpayloads</c>.
/// </summary>
public sealed class ReceiverStore(
    StorageAccount storage, SecretBox secrets, EventPublisher events, Expirations expirations, IOptions<ReceiverOptions> options, TimeProvider time) : IDisposable
{
    public const string TableName = "webhookreceivers";
    public const string IndexTableName = "webhookreceiverindex";
    public const string PayloadContainer = "webhookpayloads";
    public const string QueueName = "webhook-receipts";
    public const string CounterKey = "~count:receivers";
    public const int MaxNameLength = 100;

    /// <summary>What the hook learnt about a receiver is kept this long; a delete elsewhere takes effect within it.</summary>
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    private readonly TenantCounter _count = new(tenant => storage.TenantTable(TableName).For(tenant), CounterKey, CountAsync, () => options.Value.MaxReceiversPerTenant);

    /// <summary>
    /// The hook's own cache, bounded in entries (each counts 1): anybody can make up receiver ids, and unknown ones are
    /// cached too. When full, a new id is simply not cached (and compaction makes room) - never unbounded growth.
    /// </summary>
    private readonly MemoryCache cache = new(new MemoryCacheOptions { SizeLimit = options.Value.MaxCachedReceivers });

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    private TableClient Index => storage.Table(IndexTableName);

    private BlobContainerClient Payloads => storage.Container(PayloadContainer);

    /// <summary>Ids are ULIDs; anything else names no receiver and never reaches a key.</summary>
    public static bool IsId(string? id) => id is { Length: > 0 and <= 32 } && id.All(char.IsAsciiLetterOrDigit);

    /// <summary>
    /// False when a JSON value holds a string or name that is no valid Unicode (an escaped unpaired surrogate such as
    /// <c>"\ud800"</c>): the parser lets it through, but it cannot be written out again, so kept it would break every
    /// answer that shows it.
    /// </summary>
    public static bool IsValidText(JsonElement value)
    {
        try
        {
            return Walk(value);
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        static bool Walk(JsonElement value) => value.ValueKind switch
        {
            JsonValueKind.Object => value.EnumerateObject().All(p => p.Name is not null && Walk(p.Value)),
            JsonValueKind.Array => value.EnumerateArray().All(Walk),
            JsonValueKind.String => value.GetString() is not null,
            _ => true,
        };
    }

    public async Task<ReceiverEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        IsId(id) ? await Rows(tenant).GetAsync<ReceiverEntity>(ReceiverEntity.KeyFor(id), cancellationToken) : null;

    /// <summary>Creates a receiver; null when the tenant has its most. Returns the row and the secret's text (shown once).</summary>
    /// <param name="givenSecret">
    /// The secret the sender made (Stripe and GitHub make their own; checked by <see cref="ReceiverSignatures.CheckGivenSecret"/>),
    /// or null for one we make. A given secret is sealed like ours and never handed back: the text returned is then null.
    /// </param>
    public async Task<(ReceiverEntity Receiver, string? Secret)?> CreateAsync(
        Caller caller, string name, string action, string scheme, string? optionsJson, string? givenSecret, IReadOnlyList<string> scopes, CancellationToken cancellationToken)
    {
        var id = Ids.New(time);
        (string? text, byte[] key) = givenSecret is null ? ReceiverSignatures.NewSecret(scheme) : (null, ReceiverSignatures.KeyOfGivenSecret(givenSecret));
        var receiver = new ReceiverEntity
        {
            RowKey = ReceiverEntity.KeyFor(id),
            Name = name,
            Action = action,
            Scheme = scheme,
            Options = optionsJson,
            SealedSecret = secrets.SealBytes(key, Binding(caller.Tenant, id)),
            CreatedBy = caller.UserId,
            CreatedByKey = caller.ApiKeyId,
            ScopeList = scopes,
            CreatedAt = time.GetUtcNow(),
        };

        // The index row first: by the time the receiver exists, its URL finds it. One left by a refused or failed
        // create names a receiver row that does not exist, so it answers like an unknown id.
        await Index.AddEntityAsync(new ReceiverIndexEntity { PartitionKey = id, TenantId = caller.Tenant.Value }, cancellationToken);
        Azure.Response<IReadOnlyList<Azure.Response>>? written;
        try
        {
            var max = options.Value.MaxReceiversPerTenant;

            // The event commits with the receiver (its outbox row after the receiver, before the counter's move).
            PlatformEvent created = new("webhook.receiver.created", caller.Actor, "receiver", id,
                new Dictionary<string, object?> { ["name"] = name, ["action"] = action, ["scheme"] = scheme });
            written = await events.CommitWithAsync(Rows(caller.Tenant), [created], (outbox, token) =>
                _count.SubmitAsync(caller.Tenant, count => count >= max ? null : new([new(TableTransactionActionType.Add, receiver), outbox], +1), token), cancellationToken);
        }
        catch
        {
            await DeleteIndexAsync(caller.Tenant, id);
            throw;
        }

        if (written is null)
        {
            await DeleteIndexAsync(caller.Tenant, id);
            return null;
        }

        receiver.ETag = written.Value[0].Headers.ETag ?? default;
        return (receiver, text);
    }

    public async Task<IReadOnlyList<ReceiverEntity>> ListAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var all = new List<ReceiverEntity>();
        await foreach (var receiver in Rows(tenant).QueryAsync<ReceiverEntity>(ReceiverEntity.KeyPrefix, cancellationToken: cancellationToken))
        {
            all.Add(receiver);
        }

        return all;
    }

    /// <summary>
    /// Deletes the receiver (under its ETag) and its index row: its URL stops working at once on this instance and
    /// within <see cref="CacheFor"/> on others, and its messages route is 404. Its messages - any number - are not
    /// removed here but by <see cref="ReceiverCleanup"/> off the request, a bounded amount per run.
    /// </summary>
    public async Task<bool> DeleteAsync(Caller caller, ReceiverEntity receiver, CancellationToken cancellationToken)
    {
        try
        {
            // The delete is the decisive write (the index row and messages removed below are cleanup): the event commits with it.
            await events.CommitWithAsync(Rows(caller.Tenant), [new PlatformEvent("webhook.receiver.deleted", caller.Actor, "receiver", receiver.Id)], (outbox, token) =>
                _count.SubmitAsync(caller.Tenant, _ => new([new(TableTransactionActionType.Delete, receiver, receiver.ETag), outbox], -1), token), cancellationToken);
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 404 or 412)
        {
            return false;
        }

        cache.Remove(CacheKey(receiver.Id));
        await DeleteIndexAsync(caller.Tenant, receiver.Id);
        await ReceiverCleanup.EnqueueAsync(storage, caller.Tenant, receiver.Id, ReceiverCleanup.FirstPass, TimeSpan.Zero, CancellationToken.None);
        return true;
    }

    /// <summary>
    /// Removes up to <paramref name="budget"/> of a deleted receiver's message rows, de-duplication rows and bodies;
    /// true when none is left. Everything is found again by its prefix, so a run cut short anywhere loses nothing.
    /// </summary>
    public async Task<bool> ForgetMessagesAsync(TenantId tenant, string receiverId, int budget, CancellationToken cancellationToken)
    {
        var left = budget;
        await foreach (var blob in Payloads.GetBlobsAsync(BlobTraits.None, BlobStates.None, $"{tenant.Value}/{receiverId}/", cancellationToken))
        {
            if (left-- == 0)
            {
                return false;
            }

            await Payloads.DeleteBlobIfExistsAsync(blob.Name, cancellationToken: cancellationToken);
        }

        var rows = Rows(tenant);
        // "Seen" rows before messages: a retry that comes meanwhile (an instance that still has the receiver cached) is
        // then stored anew and removed by the last pass, instead of finding a "seen" row whose message is gone.
        foreach (var prefix in new[] { $"{SeenMessageEntity.KeyPrefix}{receiverId}:", ReceivedMessageEntity.PrefixFor(receiverId) })
        {
            var batch = new List<TableTransactionAction>();
            await foreach (var row in rows.QueryAsync<TableEntity>(prefix, maxPerPage: 100, cancellationToken: cancellationToken))
            {
                if (left-- == 0)
                {
                    break;
                }

                batch.Add(new(TableTransactionActionType.Delete, row, ETag.All));
                if (batch.Count == 100)
                {
                    await rows.SubmitTransactionAsync(batch, cancellationToken);
                    batch.Clear();
                }
            }

            if (batch.Count > 0)
            {
                await rows.SubmitTransactionAsync(batch, cancellationToken);
            }

            if (left < 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Writes the index row of each of the tenant's receivers that has none, so the public hook finds it: after a
    /// restore over the tenant brought back receivers deleted since the backup (the index is platform-wide and no
    /// backup holds it). A row that exists is left as it is, whichever tenant it names, and a sandbox's copies claim
    /// none. Returns how many were written.
    /// </summary>
    public async Task<int> IndexAgainAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var written = 0;
        foreach (var receiver in (await ListAsync(tenant, cancellationToken)).Where(r => !r.SandboxCopy))
        {
            try
            {
                await Index.AddEntityAsync(new ReceiverIndexEntity { PartitionKey = receiver.Id, TenantId = tenant.Value }, cancellationToken);
                cache.Remove(CacheKey(receiver.Id));
                written++;
            }
            catch (RequestFailedException ex) when (ex.Status == 409)
            {
            }
        }

        return written;
    }

    /// <summary>
    /// The receiver a hook URL names, with its key; null for an id no receiver has. Kept in memory for
    /// <see cref="CacheFor"/> (unknown ids too, so repeating one costs no read).
    /// </summary>
    public async Task<HookTarget?> FindForHookAsync(string id, CancellationToken cancellationToken)
    {
        if (!IsId(id))
        {
            return null;
        }

        if (cache.TryGetValue(CacheKey(id), out HookTarget? known))
        {
            return known;
        }

        HookTarget? target = null;
        var index = await Index.GetEntityIfExistsAsync<ReceiverIndexEntity>(id, ReceiverIndexEntity.Row, cancellationToken: cancellationToken);
        if (index.HasValue && TenantId.TryParse(index.Value!.TenantId, out var tenant) &&
            await Rows(tenant).GetAsync<ReceiverEntity>(ReceiverEntity.KeyFor(id), cancellationToken) is { } receiver)
        {
            target = new HookTarget(tenant, receiver, secrets.Open(receiver.SealedSecret, Binding(tenant, id)));
        }

        cache.Set(CacheKey(id), target, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = CacheFor });
        return target;
    }

    /// <summary>
    /// Stores a verified message: the body as a blob, then the message row together with the row that marks it as
    /// seen, then the queue message. A message seen before is a duplicate and changes nothing - except that a message
    /// still only <c>received</c> is queued again, so one whose queue message was lost (a crash between the row and the
    /// queue) is picked up when the sender retries it.
    /// </summary>
    /// <remarks>
    /// What "seen before" means follows what the scheme signs: the sender's id where the signature covers it
    /// (Standard Webhooks signs <c>webhook-id</c>, Stripe's id is in the signed body). GitHub signs the body alone and
    /// <c>X-GitHub-Delivery</c> is not signed, so anyone holding one signed request could resend it under a new
    /// delivery id; there the body's SHA-256 is the identity, and an identical signed body is acted on once.
    /// </remarks>
    public async Task<Receipt> AcceptAsync(HookTarget target, string webhookId, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var (tenant, receiver) = (target.Tenant, target.Receiver);
        var rows = Rows(tenant);
        var seenKey = SeenMessageEntity.KeyFor(receiver.Id,
            receiver.Scheme == ReceiverSchemes.GitHub ? "sha256:" + Convert.ToHexString(SHA256.HashData(body.Span)) : webhookId);
        if (await rows.GetAsync<SeenMessageEntity>(seenKey, cancellationToken) is { } seen &&
            await DuplicateAsync(tenant, seen, cancellationToken) is { } duplicate)
        {
            return duplicate;
        }

        var now = time.GetUtcNow();
        var id = Ids.New(time);
        var message = new ReceivedMessageEntity
        {
            RowKey = ReceivedMessageEntity.KeyFor(receiver.Id, now, id),
            Id = id,
            ReceiverId = receiver.Id,
            WebhookId = webhookId,
            Bytes = body.Length,
            ReceivedAt = now,
        };
        // Its end is scheduled before the row exists (an entry whose row never came is dropped when due); the entry
        // takes the body and the seen row with the message (MessageExpiry).
        await expirations.ScheduleAsync(TableName, tenant, message.RowKey, now + options.Value.MessageRetention, cancellationToken);
        var blob = Payloads.GetBlobClient(BlobName(tenant, receiver.Id, id));
        await blob.UploadAsync(new BinaryData(body), new BlobUploadOptions { HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" } }, cancellationToken);
        try
        {
            var responses = await rows.SubmitTransactionAsync(
            [
                new(TableTransactionActionType.Add, new SeenMessageEntity { RowKey = seenKey, MessageKey = message.RowKey }),
                new(TableTransactionActionType.Add, message),
            ], cancellationToken);
            message.ETag = responses.Value[1].Headers.ETag ?? default;
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 409 && ex.FailedTransactionActionIndex == 0)
        {
            // The same message, delivered twice at once: the other delivery won.
            await blob.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
            return await DuplicateAsync(tenant, (await rows.GetAsync<SeenMessageEntity>(seenKey, cancellationToken))!, cancellationToken)
                ?? throw new InvalidOperationException("A seen message id names no message row.");
        }

        await EnqueueAsync(tenant, message, cancellationToken);
        return new Receipt(message, Duplicate: false);
    }

    /// <summary>The receipt of a repeat; null when its message expired between the two reads (the id is then new again).</summary>
    private async Task<Receipt?> DuplicateAsync(TenantId tenant, SeenMessageEntity seen, CancellationToken cancellationToken)
    {
        if (await Rows(tenant).GetAsync<ReceivedMessageEntity>(seen.MessageKey, cancellationToken) is not { } message)
        {
            return null;
        }

        if (message.Status == MessageStatus.Received)
        {
            await EnqueueAsync(tenant, message, cancellationToken);
        }

        return new Receipt(message, Duplicate: true);
    }

    /// <summary>Queues a message for <see cref="ReceiptProcessor"/>, visible after <paramref name="delay"/> (none by default).</summary>
    public async Task EnqueueAsync(TenantId tenant, ReceivedMessageEntity message, CancellationToken cancellationToken, TimeSpan? delay = null) =>
        await storage.Queue(QueueName).SendMessageAsync(
            BinaryData.FromObjectAsJson(new ReceiptMessage(tenant.Value, message.ReceiverId, message.RowKey), JsonSerializerOptions.Web),
            visibilityTimeout: delay, cancellationToken: cancellationToken);

    public async Task<BinaryData?> PayloadAsync(TenantId tenant, ReceivedMessageEntity message, CancellationToken cancellationToken)
    {
        try
        {
            return (await Payloads.GetBlobClient(BlobName(tenant, message.ReceiverId, message.Id)).DownloadContentAsync(cancellationToken)).Value.Content;
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    internal static string BlobName(TenantId tenant, string receiverId, string messageId) => $"{tenant.Value}/{receiverId}/{messageId}";

    private static string Binding(TenantId tenant, string receiverId) => $"webhook-receiver:{tenant.Value}:{receiverId}";

    private static string CacheKey(string receiverId) => "webhook-receiver:" + receiverId;

    /// <summary>
    /// Deletes the receiver's index row if it names this tenant. A sandbox restored from a backup holds copies of the
    /// receivers under the same ids, while the index still names the tenant they were copied from: deleting the copy
    /// must never take the original's route away.
    /// </summary>
    private async Task DeleteIndexAsync(TenantId tenant, string id)
    {
        cache.Remove(CacheKey(id));
        var row = await Index.GetEntityIfExistsAsync<ReceiverIndexEntity>(id, ReceiverIndexEntity.Row, cancellationToken: CancellationToken.None);
        if (!row.HasValue || row.Value!.TenantId != tenant.Value)
        {
            return;
        }

        try
        {
            await Index.DeleteEntityAsync(id, ReceiverIndexEntity.Row, row.Value.ETag, CancellationToken.None);
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
        }
    }

    private static async Task<long> CountAsync(TenantPartition partition, CancellationToken cancellationToken)
    {
        long count = 0;
        await foreach (var _ in partition.QueryAsync<TableEntity>(ReceiverEntity.KeyPrefix, cancellationToken: cancellationToken))
        {
            count++;
        }

        return count;
    }

    public void Dispose() => cache.Dispose();
}
