using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Data.Tables;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;

namespace Platform.Functions.Auth;

/// <summary>
/// Single-use, expiring tokens mailed to users (password reset, email verification): 256 random bits, shown
/// only in the link as <c>{tenant}.{secret}</c>, stored as the SHA-256 of the secret under the purpose
/// (<c>usertokens</c> table, row <c>{purpose}:{hash}</c>). Redeeming deletes the row with its ETag, so a token
/// works once even when two requests race with it.
/// </summary>
public sealed class UserTokens(StorageAccount storage, Expirations expirations, TimeProvider time)
{
    public const string TableName = "usertokens";

    private TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    public async Task<string> IssueAsync(TenantId tenant, string purpose, string userId, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        var secret = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var row = new UserTokenEntity { RowKey = Key(purpose, secret), UserId = userId, ExpiresAt = time.GetUtcNow() + lifetime };
        await expirations.ScheduleAsync(TableName, tenant, row.RowKey, row.ExpiresAt, cancellationToken);
        await Rows(tenant).AddAsync(row, cancellationToken);
        return $"{tenant.Value}.{secret}";
    }

    /// <summary>The user the token was issued to, consuming the token; null when unknown, used or expired.</summary>
    public async Task<(TenantId Tenant, string UserId)?> RedeemAsync(string purpose, string? token, CancellationToken cancellationToken)
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

        return (tenant, row.UserId);
    }

    private static string Key(string purpose, string secret) =>
        $"{purpose}:{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)))}";

    private sealed class UserTokenEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public string UserId { get; set; } = "";
        public DateTimeOffset ExpiresAt { get; set; }
    }
}
