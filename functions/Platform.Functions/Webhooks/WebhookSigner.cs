using System.Security.Cryptography;
using System.Text;

namespace Platform.Functions.Webhooks;

/// <summary>
/// Standard Webhooks signing: <c>v1,</c> + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")), where the secret is
/// the bytes after <c>whsec_</c>. Several signatures are separated by a space (during a secret rotation's grace both
/// secrets sign). The tests check every header we send with the reference library.
/// </summary>
public static class WebhookSigner
{
    public const string SecretPrefix = "whsec_";
    public const int SecretBytes = 32;

    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(SecretBytes));

    public static byte[] KeyOf(string secret) => Convert.FromBase64String(secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret);

    public static string Sign(IEnumerable<byte[]> keys, string messageId, long timestamp, string body)
    {
        var content = Encoding.UTF8.GetBytes($"{messageId}.{timestamp}.{body}");
        return string.Join(' ', keys.Select(key => "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, content))));
    }
}
