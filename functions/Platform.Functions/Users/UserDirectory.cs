using System.Net.Mail;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>
/// Reads and writes users of one tenant, keeping each user and its email index row in step, and the tenant's user
/// count (<see cref="Count"/>) with them.
/// </summary>
public sealed class UserDirectory(StorageAccount storage, IOptions<UsersOptions> options)
{
    public const string TableName = "users";
    public const int MaxEmailLength = 254;
    public const int MaxDisplayNameLength = 100;

    /// <summary>The counter row, beside the users it counts (outside the <c>u:</c> and <c>e:</c> ranges).</summary>
    public const string CounterKey = "~count:users";

    public TenantPartition Users(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    public int MaxUsersPerTenant => options.Value.MaxUsersPerTenant;

    /// <summary>
    /// The tenant's users that count against <see cref="UsersOptions.MaxUsersPerTenant"/> (active and locked). Every
    /// write that makes a user count or stop counting - create, sign-up, delete, restore - goes through it.
    /// </summary>
    public TenantCounter Count { get; } = new(
        tenant => storage.TenantTable(TableName).For(tenant), CounterKey, CountUsersAsync, () => options.Value.MaxUsersPerTenant);

    public enum CreateResult
    {
        Created,
        EmailTaken,
        LimitReached,
    }

    /// <summary>The user, or null when there is none - including a purged user, whose row is only a tombstone.</summary>
    public async Task<UserEntity?> GetAsync(TenantId tenant, string userId, CancellationToken cancellationToken) =>
        IsPlausibleId(userId) && await Users(tenant).GetAsync<UserEntity>(UserEntity.KeyFor(userId), cancellationToken) is { } user && user.Status != UserStatus.Purged
            ? user
            : null;

    public async Task<UserEntity?> FindByEmailAsync(TenantId tenant, string email, CancellationToken cancellationToken)
    {
        if (NormalizeEmail(email) is not { } normalized)
        {
            return null;
        }

        var index = await Users(tenant).GetAsync<EmailIndexEntity>(EmailIndexEntity.KeyFor(normalized), cancellationToken);
        return index is null ? null : await GetAsync(tenant, index.UserId, cancellationToken);
    }

    /// <summary>The id the email index names for this email (a deleted user's too), or null when no user of the tenant has it.</summary>
    public async Task<string?> IdByEmailAsync(TenantId tenant, string email, CancellationToken cancellationToken) =>
        NormalizeEmail(email) is { } normalized && await Users(tenant).GetAsync<EmailIndexEntity>(EmailIndexEntity.KeyFor(normalized), cancellationToken) is { } index
            ? index.UserId
            : null;

    /// <summary>
    /// Adds the user and its email index atomically, with the tenant's user count; refused when the email is taken in
    /// this tenant or the tenant is at <see cref="UsersOptions.MaxUsersPerTenant"/>.
    /// </summary>
    /// <param name="outbox">The outbox row of the creation's events, committed with it (<see cref="EventPublisher.CommitWithAsync"/>).</param>
    public async Task<CreateResult> TryCreateAsync(TenantId tenant, UserEntity user, TableTransactionAction? outbox, CancellationToken cancellationToken)
    {
        var index = new EmailIndexEntity { RowKey = EmailIndexEntity.KeyFor(NormalizeEmail(user.Email)!), UserId = user.Id };
        List<TableTransactionAction> actions = [new(TableTransactionActionType.Add, user), new(TableTransactionActionType.Add, index)];
        if (outbox is not null)
        {
            actions.Add(outbox);
        }

        try
        {
            var responses = await Count.SubmitAsync(tenant, count => count >= MaxUsersPerTenant ? null : new(actions, +1), cancellationToken);
            if (responses is null)
            {
                return CreateResult.LimitReached;
            }

            user.ETag = responses.Value[0].Headers.ETag ?? default;
            return CreateResult.Created;
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 409 && ex.FailedTransactionActionIndex < 2)
        {
            return CreateResult.EmailTaken;
        }
    }

    /// <summary>Counts the users who count (once per tenant that predates the counter row).</summary>
    private static async Task<long> CountUsersAsync(TenantPartition partition, CancellationToken cancellationToken)
    {
        long count = 0;
        await foreach (var user in partition.QueryAsync<UserEntity>(UserEntity.KeyPrefix, cancellationToken: cancellationToken))
        {
            if (Counts(user))
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Whether the user takes a slot of the cap: active and locked users do, deleted and purged ones do not.</summary>
    public static bool Counts(UserEntity user) => user.Status is UserStatus.Active or UserStatus.Locked;

    /// <summary>Replaces the user row if nobody changed it since it was read (412 otherwise).</summary>
    public Task UpdateAsync(TenantId tenant, UserEntity user, CancellationToken cancellationToken) =>
        Users(tenant).UpdateAsync(user, user.ETag, cancellationToken);

    /// <summary>As <see cref="UpdateAsync(TenantId, UserEntity, CancellationToken)"/>, with the change's events committed in the same transaction.</summary>
    public Task UpdateAsync(TenantId tenant, UserEntity user, EventPublisher events, IReadOnlyList<PlatformEvent> happened, CancellationToken cancellationToken) =>
        events.CommitAsync(Users(tenant), new TableTransactionAction(TableTransactionActionType.UpdateReplace, user, user.ETag), happened, cancellationToken);

    /// <summary>
    /// The form emails are compared in: trimmed and lower-cased (invariant). Null when the text is not an address
    /// we accept: one <c>@</c>, a dotted domain, no display-name syntax, at most 254 characters.
    /// </summary>
    public static string? NormalizeEmail(string? email)
    {
        var trimmed = email?.Trim();
        if (string.IsNullOrEmpty(trimmed) || trimmed.Length > MaxEmailLength || trimmed.Count(c => c == '@') != 1 ||
            // '/', '\\', '#' and '?' are legal in a local part but not in a table key, and nobody's real address uses them.
            trimmed.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '<' or '>' or '"' or ',' or ';' or '/' or '\\' or '#' or '?'))
        {
            return null;
        }

        if (!MailAddress.TryCreate(trimmed, out var address) || address.Address != trimmed)
        {
            return null;
        }

        var domain = address.Host;
        return domain.Contains('.', StringComparison.Ordinal) && !domain.StartsWith('.') && !domain.EndsWith('.')
            ? trimmed.ToLowerInvariant()
            : null;
    }

    private static bool IsPlausibleId(string id) => id.Length is > 0 and <= 64 && id.All(char.IsAsciiLetterOrDigit);
}
