using System.Diagnostics.CodeAnalysis;
using System.Runtime.Serialization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.IdentityModel.Tokens;

namespace Platform.Functions.ApiKeys;

/// <summary>
/// An API key: row <c>k:{id}</c> in the tenant's partition of the <c>apikeys</c> table. It holds the SHA-256 of the
/// current secret and, for a while after a rotation, of the previous one. Usage (<see cref="LastUsedAt"/>,
/// <see cref="UseCount"/>) is merged in by <see cref="ApiKeyUsageFlusher"/>, never written per request.
/// A revoked key's row is deleted, so every row here is a key that has not been revoked.
/// </summary>
public sealed class ApiKeyEntity : ITableEntity
{
    public const string KeyPrefix = "k:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Name { get; set; } = "";

    /// <summary>The key's scopes, a JSON array of permission names.</summary>
    public string Permissions { get; set; } = "[]";

    /// <summary>Id of the user who created the key: the key acts as that user, narrowed to its permissions.</summary>
    public string CreatedBy { get; set; } = "";

    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>Public part of the current key text (<c>plk_{Prefix}_{secret}</c>), also the row key of its index row.</summary>
    public string Prefix { get; set; } = "";

    /// <summary>SHA-256 (hex) of the current secret.</summary>
    public string SecretHash { get; set; } = "";

    /// <summary>The key replaced by the last rotation; it keeps working until <see cref="PreviousValidUntil"/>.</summary>
    public string? PreviousPrefix { get; set; }
    public string? PreviousSecretHash { get; set; }
    public DateTimeOffset? PreviousValidUntil { get; set; }
    public DateTimeOffset? RotatedAt { get; set; }

    public DateTimeOffset? LastUsedAt { get; set; }
    public long UseCount { get; set; }

    [IgnoreDataMember]
    public string Id => RowKey[KeyPrefix.Length..];

    [IgnoreDataMember]
    public IReadOnlyList<string> PermissionList
    {
        get => JsonSerializer.Deserialize<string[]>(Permissions) ?? [];
        set => Permissions = JsonSerializer.Serialize(value);
    }

    public static string KeyFor(string id) => KeyPrefix + id;

    public bool IsExpired(DateTimeOffset now) => ExpiresAt is { } expires && now >= expires;

    /// <summary>The previous key's prefix while its grace period runs, else null.</summary>
    public string? PreviousPrefixInGrace(DateTimeOffset now) =>
        PreviousPrefix is not null && PreviousValidUntil is { } until && now < until ? PreviousPrefix : null;
}

/// <summary>
/// Row <c>g:create</c> beside the keys of a tenant. Every creation rewrites it under its ETag in the same
/// entity-group transaction that adds the key, so two creations racing for the last free place cannot both win.
/// </summary>
public sealed class ApiKeyCreationGuard : ITableEntity
{
    public const string Key = "g:create";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = Key;
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public DateTimeOffset LastCreatedAt { get; set; }
}

/// <summary>
/// Row of the platform table <c>apikeyprefixes</c>: partition = the first two characters of a prefix, row = the
/// prefix, naming the tenant and key it belongs to. It finds a key from its text alone, before the tenant is known.
/// The row never changes; whether the prefix still authenticates is decided by the key row.
/// </summary>
public sealed class ApiKeyPrefixEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string TenantId { get; set; } = "";
    public string KeyId { get; set; } = "";
    public DateTimeOffset CreatedAt { get; set; }

    public static string PartitionFor(string prefix) => prefix[..2];
}

/// <summary>
/// The text of a key: <c>plk_{prefix}_{secret}</c>. The prefix is 12 characters of lowercase Crockford base32
/// (60 random bits; public, shown in lists, and the index row key); the secret is 32 random bytes in base64url
/// (43 characters, 256 bits). Only the SHA-256 of the secret is stored.
/// </summary>
public static class ApiKeyText
{
    public const string Marker = "plk_";
    public const int PrefixLength = 12;
    public const int SecretLength = 43;
    public const int Length = 4 + PrefixLength + 1 + SecretLength;
    private const string PrefixAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    public static string NewPrefix() => RandomNumberGenerator.GetString(PrefixAlphabet, PrefixLength);

    /// <summary>A new secret and its hash.</summary>
    public static (string Secret, string Hash) NewSecret()
    {
        var secret = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        return (secret, Hash(secret));
    }

    public static string Format(string prefix, string secret) => $"{Marker}{prefix}_{secret}";

    /// <summary>
    /// Splits a presented key into prefix and secret; false for anything that is not exactly our format, so
    /// garbage costs no storage read.
    /// </summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out string? prefix, [NotNullWhen(true)] out string? secret)
    {
        prefix = secret = null;
        if (text is not { Length: Length } || !text.StartsWith(Marker, StringComparison.Ordinal) || text[Marker.Length + PrefixLength] != '_')
        {
            return false;
        }

        var p = text.AsSpan(Marker.Length, PrefixLength);
        var s = text.AsSpan(Marker.Length + PrefixLength + 1);
        foreach (var c in p)
        {
            if (!PrefixAlphabet.Contains(c, StringComparison.Ordinal))
            {
                return false;
            }
        }

        foreach (var c in s)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_'))
            {
                return false;
            }
        }

        prefix = p.ToString();
        secret = s.ToString();
        return true;
    }

    /// <summary>True for a string that could be a prefix (used before a prefix reaches a storage key).</summary>
    public static bool IsPrefix(string? value) =>
        value is { Length: PrefixLength } && value.All(c => PrefixAlphabet.Contains(c, StringComparison.Ordinal));

    /// <remarks>
    /// A plain, fast SHA-256 is the right hash here, unlike for passwords: the secret is 256 bits from a CSPRNG, so
    /// there is no dictionary to try and brute force over 2^256 is out of reach whatever the hash costs. A slow hash
    /// (Argon2) would add nothing but CPU on every authenticated request - an easy lever for denial of service.
    /// </remarks>
    public static string Hash(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Compares two hashes in time independent of where they differ.</summary>
    public static bool HashEquals(string? expected, string actual) =>
        expected is not null && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(actual));
}
