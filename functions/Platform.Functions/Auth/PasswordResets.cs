using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Triggers;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// <c>forgot-password</c> only puts the request on the <c>password-resets</c> queue: whether the account exists,
/// the token, the mail and the audit entry are all work of <see cref="PasswordResetMailer"/>. So the answer costs
/// the same for every address - nothing in its timing tells whether an account exists.
/// </summary>
public sealed class PasswordResetRequests(StorageAccount storage, IOptions<AuthOptions> options)
{
    public const string QueueName = "password-resets";

    public async Task EnqueueAsync(string? tenantSlug, string? email, string? ip, CancellationToken cancellationToken)
    {
        // Only text that could name an account is queued; the rest tells nothing the caller does not know.
        var slug = tenantSlug?.Trim();
        if (!TenantDirectory.IsValidSlug(slug) || UserDirectory.NormalizeEmail(email) is not { } normalized)
        {
            return;
        }

        // A request nobody handled within a link's lifetime is stale; it should not sit in storage longer.
        await storage.Queue(QueueName).SendMessageAsync(
            BinaryData.FromObjectAsJson(new PasswordResetMessage(slug!, normalized, ip), JsonSerializerOptions.Web),
            timeToLive: options.Value.PasswordResetLifetime, cancellationToken: cancellationToken);
    }
}

internal sealed record PasswordResetMessage(string Tenant, string Email, string? Ip);

/// <summary>
/// The <c>PasswordResets</c> queue function: mails a reset link to an active account the request names, at most
/// <see cref="AuthOptions.PasswordResetMailsPerHour"/> per account per UTC clock hour, so repeated requests cannot
/// fill a mailbox; requests over the limit are dropped (and audited). Delivery is at least once: a message
/// handled again after a crash is not counted twice, but its mail may be sent twice.
/// </summary>
public sealed partial class PasswordResetMailer(
    StorageAccount storage,
    TenantDirectory tenants,
    UserDirectory users,
    AccountMail mail,
    EventPublisher events,
    Expirations expirations,
    IOptions<AuthOptions> options,
    TimeProvider time,
    ILogger<PasswordResetMailer> logger) : IQueueHandler
{
    private const int MaxCountAttempts = 20;

    public async Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
    {
        var request = Read(message.Text);
        if (await tenants.FindBySlugAsync(request.Tenant, cancellationToken) is not { } tenant)
        {
            return;
        }

        var tenantId = new TenantId(tenant.Id);
        if (await users.FindByEmailAsync(tenantId, request.Email, cancellationToken) is not { IsActive: true } user)
        {
            return;
        }

        // A host that passes no message id gets no de-duplication: an empty id must not make every request "seen".
        var messageId = message.Id is { Length: > 0 } id ? id : Guid.NewGuid().ToString("N");
        // The count is the decisive write (from it on the request is admitted and the mail owed; a message handled again
        // finds itself counted and only mails): the requested event commits with it, once per message.
        var requested = new PlatformEvent("auth.password_reset.requested", Actor.Anonymous(request.Ip), "user", user.Id);
        if (!await CountAsync(tenantId, user.Id, messageId, requested, cancellationToken))
        {
            // Refused without a write: an event that changes no row.
            LogThrottled(logger, tenant.Id, user.Id);
            await events.PublishAsync(tenantId, new PlatformEvent("auth.password_reset.throttled", Actor.Anonymous(request.Ip), "user", user.Id), cancellationToken);
            return;
        }

        await mail.SendPasswordResetAsync(tenantId, tenant.Name, user, cancellationToken);
    }

    /// <summary>
    /// Counts one reset mail in the account's row for this hour (<c>resetmails:{user}:{yyyyMMddHH}</c> in the
    /// <c>usertokens</c> table, written under its ETag so concurrent requests cannot both take the last one);
    /// false when the hour's mails are used up. A message already counted counts as allowed again.
    /// </summary>
    /// <param name="requested">Committed with the write that counts the message (not again for one already counted).</param>
    private async Task<bool> CountAsync(TenantId tenant, string userId, string messageId, PlatformEvent requested, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var hour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var rowKey = $"resetmails:{userId}:{hour.ToString("yyyyMMddHH", CultureInfo.InvariantCulture)}";
        var limit = options.Value.PasswordResetMailsPerHour;
        var rows = storage.TenantTable(UserTokens.TableName).For(tenant);
        for (var attempt = 0; attempt < MaxCountAttempts; attempt++)
        {
            var row = await rows.GetAsync<ResetMailCountEntity>(rowKey, cancellationToken);
            if (row is null)
            {
                await expirations.ScheduleAsync(UserTokens.TableName, tenant, rowKey, hour.AddHours(1), cancellationToken);
                try
                {
                    await events.CommitAsync(rows, new TableTransactionAction(TableTransactionActionType.Add,
                        new ResetMailCountEntity { RowKey = rowKey, Count = 1, Messages = JsonSerializer.Serialize(new[] { messageId }) }), [requested], cancellationToken);
                    return true;
                }
                catch (RequestFailedException ex) when (ex.Status == 409)
                {
                    continue;
                }
            }

            var counted = JsonSerializer.Deserialize<List<string>>(row.Messages) ?? [];
            if (counted.Contains(messageId))
            {
                return true;
            }

            if (row.Count >= limit)
            {
                return false;
            }

            row.Count++;
            counted.Add(messageId);
            row.Messages = JsonSerializer.Serialize(counted);
            try
            {
                await events.CommitAsync(rows, new TableTransactionAction(TableTransactionActionType.UpdateReplace, row, row.ETag), [requested], cancellationToken);
                return true;
            }
            catch (RequestFailedException ex) when (ex.Status == 412)
            {
            }
        }

        // Contended beyond reason: fail, and the queue tries the message again later.
        throw new InvalidOperationException($"Could not count a reset mail after {MaxCountAttempts} attempts.");
    }

    private static PasswordResetMessage Read(string text)
    {
        PasswordResetMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<PasswordResetMessage>(text, JsonSerializerOptions.Web);
        }
        catch (JsonException)
        {
            message = null;
        }

        return message is { Tenant.Length: > 0, Email.Length: > 0 }
            ? message
            : throw new PoisonMessageException("Not a password reset request.");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reset mail limit reached for user {UserId} of tenant {TenantId}; request dropped")]
    private static partial void LogThrottled(ILogger logger, string tenantId, string userId);

    private sealed class ResetMailCountEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public int Count { get; set; }

        /// <summary>Ids of the queue messages counted (at most the limit), so a redelivered one is not counted twice.</summary>
        public string Messages { get; set; } = "[]";
    }
}
