using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Data.Tables;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// Single-use, expiring tokens mailed to users (password reset, email verification): 256 random bits, shown
/// only in the link as <c>{tenant}.{secret}</c>, stored as the SHA-256 of the secret under the purpose
/// (<c>usertokens</c> table, row <c>{purpose}:{hash}</c>). Redeeming deletes the row with its ETag, so a token
/// works once even when two requests race with it. A token is bound to the address it was mailed to: it is
/// refused once the user's email differs, and an email change deletes the user's outstanding tokens (so changing
/// the address away and back does not revive them either).
/// </summary>
public sealed class UserTokens(StorageAccount storage, UserDirectory users, Expirations expirations, TimeProvider time)
{
    public const string TableName = "usertokens";

    private TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>Issues a token for <paramref name="user"/> at the address the user has now.</summary>
    public async Task<string> IssueAsync(TenantId tenant, string purpose, UserEntity user, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        var secret = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var row = new UserTokenEntity
        {
            RowKey = Key(purpose, secret),
            UserId = user.Id,
            AddressHash = AddressHash(user.Email),
            ExpiresAt = time.GetUtcNow() + lifetime,
        };
        await expirations.ScheduleAsync(TableName, tenant, row.RowKey, row.ExpiresAt, cancellationToken);
        await Rows(tenant).AddAsync(row, cancellationToken);
        return $"{tenant.Value}.{secret}";
    }

    /// <summary>
    /// The user the token was issued to, as read now, consuming the token; null when it is unknown, used or expired,
    /// when the user is gone, or when the user's email is no longer the address the token was issued for.
    /// </summary>
    public async Task<(TenantId Tenant, UserEntity User)?> RedeemAsync(string purpose, string? token, CancellationToken cancellationToken)
    {
        var parts = token?.Split('.');
        if (parts is not { Length: 2 } || !TenantId.TryParse(parts[0], out var tenant) || parts[1].Length is < 40 or > 64)
        {
            return null;
        }

        var row = await Rows(tenant).GetAsync<UserTokenEntity>(Key(purpose, parts[1]), cancellationToken);
        if (row is null || row.ExpiresAt <= time.GetUtcNow())
        {
            return null;
        }

        try
        {
            await Rows(tenant).DeleteAsync(row.RowKey, row.ETag, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
            return null;
        }

        // Read after the token is spent: the address compared is the one the caller's change will be made for.
        var user = await users.GetAsync(tenant, row.UserId, cancellationToken);
        return user is not null && row.AddressHash is { } bound &&
            CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(bound), Encoding.ASCII.GetBytes(AddressHash(user.Email)))
            ? (tenant, user)
            : null;
    }

    /// <summary>Deletes every outstanding token of a user (after an email change).</summary>
    public async Task RevokeAllAsync(TenantId tenant, string userId, CancellationToken cancellationToken)
    {
        await foreach (var row in Rows(tenant).QueryWhereAsync<UserTokenEntity>($"UserId eq {userId}", cancellationToken: cancellationToken))
        {
            try
            {
                await Rows(tenant).DeleteAsync(row.RowKey, row.ETag, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                // Redeemed or expired meanwhile.
            }
        }
    }

    private static string Key(string purpose, string secret) =>
        $"{purpose}:{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)))}";

    /// <summary>The address in its compared form, hashed: the token row need not hold a second copy of the email.</summary>
    private static string AddressHash(string email) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(UserDirectory.NormalizeEmail(email) ?? email.Trim().ToLowerInvariant())));

    private sealed class UserTokenEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public string UserId { get; set; } = "";

        /// <summary>SHA-256 of the normalized address the token was mailed to; tokens issued before binding have none and are refused.</summary>
        public string? AddressHash { get; set; }

        public DateTimeOffset ExpiresAt { get; set; }
    }
}
