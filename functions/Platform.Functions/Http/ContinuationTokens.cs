using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Auth;
using Platform.Functions.Storage;

namespace Platform.Functions.Http;

/// <summary>
/// Opaque, tamper-proof continuation tokens for list routes: the position is signed (HMAC-SHA256 with a key
/// derived from the data-encryption key) together with the tenant and the query it belongs to, so a forged token,
/// another tenant's token or a token from a different query is refused (400 <c>invalid_continuation_token</c>),
/// never turned into data.
/// </summary>
public sealed class ContinuationTokens(KeyMaterial keys)
{
    public const int MaxLength = 2048;
    private readonly byte[] _key = HKDF.DeriveKey(HashAlgorithmName.SHA256, keys.EncryptionKey, 32, info: Encoding.UTF8.GetBytes("platform/continuation-token/v1"));

    public string Create<T>(TenantId tenant, string query, T position)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Envelope<T>(tenant.Value, Fingerprint(query), position));
        return Base64UrlEncoder.Encode(payload) + "." + Base64UrlEncoder.Encode(Sign(payload));
    }

    /// <summary>The position, or false when the token is not one this server issued for this tenant and query.</summary>
    public bool TryRead<T>(string? token, TenantId tenant, string query, out T? position)
    {
        position = default;
        var dot = token?.IndexOf('.', StringComparison.Ordinal) ?? -1;
        if (token is null || token.Length > MaxLength || dot < 1)
        {
            return false;
        }

        try
        {
            var payload = Base64UrlEncoder.DecodeBytes(token[..dot]);
            var signature = Base64UrlEncoder.DecodeBytes(token[(dot + 1)..]);
            if (!CryptographicOperations.FixedTimeEquals(signature, Sign(payload)))
            {
                return false;
            }

            var envelope = JsonSerializer.Deserialize<Envelope<T>>(payload);
            if (envelope is null || envelope.Tenant != tenant.Value || envelope.Query != Fingerprint(query))
            {
                return false;
            }

            position = envelope.Position;
            return true;
        }
        catch (Exception ex) when (ex is FormatException or JsonException or ArgumentException)
        {
            return false;
        }
    }

    public static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult Invalid() =>
        Problems.Create(400, "invalid_continuation_token", "Invalid continuation token",
            "The continuation token was not issued for this list and query; start again without it.");

    private byte[] Sign(byte[] payload) => HMACSHA256.HashData(_key, payload);

    private static string Fingerprint(string query) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(query)), 0, 12);

    private sealed record Envelope<T>(string Tenant, string Query, T Position);
}

/// <summary>The <c>pageSize</c> convention of list routes: default 50, at most 1000.</summary>
public static class Paging
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 1000;

    public static int? Parse(string? text, Validation validation)
    {
        if (text is null)
        {
            return DefaultPageSize;
        }

        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size) || size is < 1 or > MaxPageSize)
        {
            validation.Add("pageSize", $"must be a whole number from 1 to {MaxPageSize}");
            return null;
        }

        return size;
    }
}

public sealed record PagedList<T>(IReadOnlyList<T> Items, string? ContinuationToken);
