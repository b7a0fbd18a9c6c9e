using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Platform.Functions.Http;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>The verdict on a request's signature.</summary>
public enum SignatureVerdict
{
    Valid,

    /// <summary>Missing, malformed or wrong: the same answer as an unknown receiver.</summary>
    Invalid,

    /// <summary>Correctly signed, but the signed timestamp is more than <see cref="ReceiverOptions.Tolerance"/> away from now.</summary>
    Stale,
}

/// <summary>
/// Checks a request's signature the way its receiver's scheme signs, over the raw body bytes. Every comparison is
/// constant-time (<see cref="CryptographicOperations.FixedTimeEquals"/>) on the decoded MAC, so how long a check
/// takes tells nothing about how close a guess came. The timestamp is judged only once the signature holds, so
/// "stale" is never an answer to someone who cannot sign.
/// </summary>
/// <remarks>
/// Standard Webhooks: <c>HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")</c>, base64, sent as one or
/// more space-separated <c>v1,{signature}</c> in <c>webhook-signature</c> (several during a sender's key rotation);
/// the key is the base64 after <c>whsec_</c>. This is byte for byte what the reference library
/// <c>StandardWebhooks</c> signs and verifies (a test signs with it). GitHub: <c>X-Hub-Signature-256: sha256={hex
/// HMAC of the body}</c>, keyed with the secret text. Stripe: <c>Stripe-Signature: t={unix},v1={hex HMAC of
/// "{t}.{body}"}</c> (several <c>v1</c> allowed), keyed with the secret text.
/// </remarks>
public static class ReceiverSignatures
{
    public const string StandardId = "webhook-id";
    public const string StandardTimestamp = "webhook-timestamp";
    public const string StandardSignature = "webhook-signature";
    public const string GitHubSignature = "X-Hub-Signature-256";
    public const string GitHubDelivery = "X-GitHub-Delivery";
    public const string StripeSignature = "Stripe-Signature";

    /// <summary>Longest signature header read; a longer one is invalid without being parsed.</summary>
    public const int MaxSignatureHeaderLength = 4096;

    /// <summary>Longest sender message id kept.</summary>
    public const int MaxWebhookIdLength = 256;

    private const string StandardSecretPrefix = "whsec_";
    private static readonly byte[] DecoyKey = RandomNumberGenerator.GetBytes(32);

    /// <summary>A new secret for a scheme: its text (shown once) and the HMAC key bytes kept sealed.</summary>
    public static (string Text, byte[] Key) NewSecret(string scheme)
    {
        var bytes = RandomNumberGenerator.GetBytes(32);
        if (scheme == ReceiverSchemes.Standard)
        {
            return (StandardSecretPrefix + Convert.ToBase64String(bytes), bytes);
        }

        // GitHub and Stripe key the HMAC with the secret's text itself, as the sender is configured with it.
        var text = (scheme == ReceiverSchemes.Stripe ? StandardSecretPrefix : "") + Convert.ToHexStringLower(bytes);
        return (text, Encoding.UTF8.GetBytes(text));
    }

    /// <summary>Shortest and longest secret a sender may bring (<c>options.secret</c>), in characters.</summary>
    public const int MinGivenSecretLength = 16;
    public const int MaxGivenSecretLength = 256;

    /// <summary>
    /// Why a secret the sender made cannot be used, or null when it can. Only for the schemes whose senders make their
    /// own and key the HMAC with its text (Stripe: its <c>whsec_...</c> signing secret; GitHub: the webhook's secret).
    /// The reason never quotes the secret.
    /// </summary>
    public static string? CheckGivenSecret(string scheme, string? secret)
    {
        if (scheme is not (ReceiverSchemes.Stripe or ReceiverSchemes.GitHub))
        {
            return "can only be given for the stripe and github schemes; a standard receiver's secret is made by Platform";
        }

        if (secret is null || secret.Length < MinGivenSecretLength || secret.Length > MaxGivenSecretLength)
        {
            return $"must be a string of {MinGivenSecretLength} to {MaxGivenSecretLength} characters";
        }

        if (!secret.All(c => c is > ' ' and <= '~'))
        {
            return "must be printable ASCII without spaces";
        }

        return scheme == ReceiverSchemes.Stripe && (!secret.StartsWith(StandardSecretPrefix, StringComparison.Ordinal) || secret.Length < StandardSecretPrefix.Length + MinGivenSecretLength)
            ? $"must be the endpoint's signing secret from Stripe: {StandardSecretPrefix} followed by at least {MinGivenSecretLength} characters"
            : null;
    }

    /// <summary>
    /// Splits <c>options.secret</c> off a receiver's options: the options to keep (null when nothing else is left) and
    /// the secret, or the reason it cannot be used in <paramref name="validation"/>. The secret is never kept in options.
    /// </summary>
    public static (string? OptionsJson, string? Secret) TakeGivenSecret(string scheme, JsonElement options, Validation validation)
    {
        var rest = new JsonObject();
        string? secret = null;
        foreach (var property in options.EnumerateObject())
        {
            if (property.NameEquals("secret"))
            {
                secret = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : null;
            }
            else
            {
                rest[property.Name] = JsonNode.Parse(property.Value.GetRawText());
            }
        }

        if (CheckGivenSecret(scheme, secret) is { } reason)
        {
            validation.Add("options.secret", reason);
            return (null, null);
        }

        return (rest.Count == 0 ? null : rest.ToJsonString(), secret);
    }

    /// <summary>The HMAC key of a secret the sender made: its text, as Stripe and GitHub use it.</summary>
    public static byte[] KeyOfGivenSecret(string secret) => Encoding.UTF8.GetBytes(secret);

    /// <summary>Spends the time a check would, for a request whose receiver does not exist.</summary>
    public static void Decoy(ReadOnlySpan<byte> body) => HMACSHA256.HashData(DecoyKey, body);

    public static SignatureVerdict Verify(string scheme, ReadOnlySpan<byte> key, IHeaderDictionary headers, ReadOnlySpan<byte> body, DateTimeOffset now) =>
        scheme switch
        {
            ReceiverSchemes.GitHub => VerifyGitHub(key, headers, body),
            ReceiverSchemes.Stripe => VerifyStripe(key, headers, body, now),
            _ => VerifyStandard(key, headers, body, now),
        };

    private static SignatureVerdict VerifyStandard(ReadOnlySpan<byte> key, IHeaderDictionary headers, ReadOnlySpan<byte> body, DateTimeOffset now)
    {
        var id = Single(headers, StandardId);
        var timestamp = Single(headers, StandardTimestamp);
        var signatures = Single(headers, StandardSignature);
        if (id is null || timestamp is null || signatures is null || !long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            Decoy(body);
            return SignatureVerdict.Invalid;
        }

        var expected = Mac(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}."), body);
        var valid = false;
        Span<byte> given = stackalloc byte[64];
        foreach (var part in signatures.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            // Only v1 (HMAC-SHA256) is symmetric; other versions (v1a, asymmetric) are not ours to check.
            if (part.StartsWith("v1,", StringComparison.Ordinal) &&
                Convert.TryFromBase64String(part[3..], given, out var written) && written == expected.Length)
            {
                valid |= CryptographicOperations.FixedTimeEquals(given[..written], expected);
            }
        }

        return !valid ? SignatureVerdict.Invalid : InTolerance(seconds, now) ? SignatureVerdict.Valid : SignatureVerdict.Stale;
    }

    private static SignatureVerdict VerifyGitHub(ReadOnlySpan<byte> key, IHeaderDictionary headers, ReadOnlySpan<byte> body)
    {
        var expected = Mac(key, [], body);
        var header = Single(headers, GitHubSignature);
        if (header is null || !header.StartsWith("sha256=", StringComparison.Ordinal) || header.Length != 7 + 64)
        {
            return SignatureVerdict.Invalid;
        }

        Span<byte> given = stackalloc byte[32];
        return Convert.FromHexString(header.AsSpan(7), given, out _, out var written) == System.Buffers.OperationStatus.Done && written == 32 &&
            CryptographicOperations.FixedTimeEquals(given, expected)
            ? SignatureVerdict.Valid
            : SignatureVerdict.Invalid;
    }

    private static SignatureVerdict VerifyStripe(ReadOnlySpan<byte> key, IHeaderDictionary headers, ReadOnlySpan<byte> body, DateTimeOffset now)
    {
        var header = Single(headers, StripeSignature);
        string? timestamp = null;
        var candidates = new List<string>();
        foreach (var part in (header ?? "").Split(','))
        {
            var pair = part.Trim();
            if (pair.StartsWith("t=", StringComparison.Ordinal))
            {
                timestamp ??= pair[2..];
            }
            else if (pair.StartsWith("v1=", StringComparison.Ordinal) && candidates.Count < 8)
            {
                candidates.Add(pair[3..]);
            }
        }

        if (timestamp is null || !long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            Decoy(body);
            return SignatureVerdict.Invalid;
        }

        var expected = Mac(key, Encoding.UTF8.GetBytes(timestamp + "."), body);
        var valid = false;
        Span<byte> given = stackalloc byte[32];
        foreach (var candidate in candidates)
        {
            if (candidate.Length == 64 && Convert.FromHexString(candidate, given, out _, out var written) == System.Buffers.OperationStatus.Done && written == 32)
            {
                valid |= CryptographicOperations.FixedTimeEquals(given, expected);
            }
        }

        return !valid ? SignatureVerdict.Invalid : InTolerance(seconds, now) ? SignatureVerdict.Valid : SignatureVerdict.Stale;
    }

    private static bool InTolerance(long seconds, DateTimeOffset now) =>
        Math.Abs((double)seconds - now.ToUnixTimeSeconds()) <= ReceiverOptions.Tolerance.TotalSeconds;

    private static byte[] Mac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> body)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        hmac.AppendData(prefix);
        hmac.AppendData(body);
        return hmac.GetHashAndReset();
    }

    /// <summary>The header's one value; null when absent, repeated or longer than any signature header we read.</summary>
    private static string? Single(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var values) && values.Count == 1 && values[0] is { Length: > 0 and <= MaxSignatureHeaderLength } value ? value : null;
}
