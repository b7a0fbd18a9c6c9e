using System.Runtime.Serialization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Users;

/// <summary>
/// A user: row <c>u:{id}</c> in the tenant's partition of the <c>users</c> table. The row <c>e:{normalized email}</c>
/// beside it maps the email to the id; both are written in one entity-group transaction so they never disagree.
/// </summary>
public sealed class UserEntity : ITableEntity
{
    public const string KeyPrefix = "u:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Email { get; set; } = "";
    public string DisplayName { get; set; } = "";
    public string? PasswordHash { get; set; }
    public string Status { get; set; } = UserStatus.Active;
    public string Roles { get; set; } = "[]";
    public bool EmailVerified { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? LastLoginAt { get; set; }

    /// <summary>Password sign-ins since this was first kept (reports); moved with <see cref="LastLoginAt"/>, see <see cref="SignInHistory"/>.</summary>
    public long LoginCount { get; set; }

    /// <summary>The UTC days with a sign-in, as bits: bit n is the day n days before <see cref="LastLoginAt"/>'s (see <see cref="SignInHistory"/>).</summary>
    public long LoginDays { get; set; }

    /// <summary>The calendar months (UTC) with a sign-in, as bits: bit n is the month n months before <see cref="LastLoginAt"/>'s.</summary>
    public long LoginMonths { get; set; }

    /// <summary>The user's own settings: a small JSON object (bounded by <c>PATCH /me</c>).</summary>
    public string Settings { get; set; } = "{}";

    public bool MfaEnabled { get; set; }

    /// <summary>TOTP seed, encrypted with the data-encryption key; the pending one awaits its first valid code.</summary>
    public string? TotpSecret { get; set; }
    public string? PendingTotpSecret { get; set; }

    /// <summary>The last accepted TOTP time step: a code of this step or older is a replay.</summary>
    public long TotpLastStep { get; set; }

    /// <summary>Keyed hashes of the unused backup codes, as a JSON array (see <c>Mfa.ConsumeBackupCode</c>).</summary>
    public string BackupCodeHashes { get; set; } = "[]";

    public string? AvatarContentType { get; set; }

    /// <summary>Custom field values, a JSON object validated against the tenant's schema when written.</summary>
    public string Fields { get; set; } = "{}";

    public DateTimeOffset? DeletedAt { get; set; }

    [IgnoreDataMember]
    public string Id => RowKey[KeyPrefix.Length..];

    [IgnoreDataMember]
    public IReadOnlyList<string> RoleList
    {
        get => JsonSerializer.Deserialize<string[]>(Roles) ?? [];
        set => Roles = JsonSerializer.Serialize(value);
    }

    [IgnoreDataMember]
    public bool IsActive => Status == UserStatus.Active;

    public static string KeyFor(string userId) => KeyPrefix + userId;
}

public static class UserStatus
{
    public const string Active = "active";
    public const string Locked = "locked";
    public const string Deleted = "deleted";

    /// <summary>Personal data erased; the row stays as a tombstone so every instance's list projection learns of it.</summary>
    public const string Purged = "purged";
}

/// <summary>The email index row: <c>e:{normalized email}</c> → user id.</summary>
public sealed class EmailIndexEntity : ITableEntity
{
    public const string KeyPrefix = "e:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string UserId { get; set; } = "";

    public static string KeyFor(string normalizedEmail) => KeyPrefix + normalizedEmail;
}
