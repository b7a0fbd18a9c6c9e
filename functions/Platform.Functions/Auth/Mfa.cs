using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OtpNet;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of drift either way) and single-use backup codes.
/// A code is accepted only for a time step later than the last one accepted, so a code cannot be replayed
/// within its window; the caller stores <see cref="UserEntity.TotpLastStep"/> with the user's ETag.
/// </summary>
public sealed class Mfa(SecretBox secrets, TimeProvider time)
{
    public const int BackupCodeCount = 10;
    private const string Issuer = "Platform";
    private const string BackupAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

    public (string Secret, string Encrypted) NewSecret(TenantId tenant, string userId)
    {
        var seed = KeyGeneration.GenerateRandomKey(20);
        return (Base32Encoding.ToString(seed), secrets.Seal(seed, Binding(tenant, userId)));
    }

    public static string OtpAuthUri(string secret, string account, string tenantName) =>
        $"otpauth://totp/{Uri.EscapeDataString($"{Issuer} ({tenantName}):{account}")}?secret={secret}&issuer={Uri.EscapeDataString(Issuer)}&algorithm=SHA1&digits=6&period=30";

    /// <summary>The time step the code belongs to, if it is valid now and newer than <paramref name="lastStep"/>.</summary>
    public long? Verify(TenantId tenant, string userId, string encryptedSecret, string? code, long lastStep)
    {
        if (code is not { Length: 6 } || !code.All(char.IsAsciiDigit))
        {
            return null;
        }

        var seed = secrets.Open(encryptedSecret, Binding(tenant, userId));
        var totp = new Totp(seed);
        return totp.VerifyTotp(time.GetUtcNow().UtcDateTime, code, out var step, new VerificationWindow(previous: 1, future: 1)) && step > lastStep
            ? step
            : null;
    }

    /// <summary>Ten fresh codes to show once, and their hashes to store.</summary>
    public static (IReadOnlyList<string> Codes, string Hashes) NewBackupCodes()
    {
        var codes = Enumerable.Range(0, BackupCodeCount)
            .Select(_ => RandomNumberGenerator.GetString(BackupAlphabet, 10).Insert(5, "-"))
            .ToList();
        return (codes, JsonSerializer.Serialize(codes.Select(HashBackupCode)));
    }

    /// <summary>The stored hashes without the one matching <paramref name="code"/>; null when no code matches.</summary>
    public static string? ConsumeBackupCode(string storedHashes, string? code)
    {
        if (code is null || code.Length > 20)
        {
            return null;
        }

        var hash = HashBackupCode(code);
        var hashes = JsonSerializer.Deserialize<List<string>>(storedHashes) ?? [];
        var index = hashes.FindIndex(h => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(h), Encoding.ASCII.GetBytes(hash)));
        if (index < 0)
        {
            return null;
        }

        hashes.RemoveAt(index);
        return JsonSerializer.Serialize(hashes);
    }

    private static string HashBackupCode(string code) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(code.Replace("-", "", StringComparison.Ordinal).Trim().ToUpperInvariant())));

    private static string Binding(TenantId tenant, string userId) => $"totp:{tenant.Value}:{userId}";
}

/// <summary>
/// AES-256-GCM for secrets at rest (TOTP seeds, kept idempotent answers). The ciphertext is bound to its owner
/// through associated data, so a sealed value copied into another row does not decrypt.
/// </summary>
public sealed class SecretBox(KeyMaterial keys)
{
    private const int NonceSize = 12;
    private const int TagSize = 16;

    /// <summary>How many bytes sealing adds to the plaintext.</summary>
    public const int Overhead = NonceSize + TagSize;

    public string Seal(byte[] plaintext, string binding) => Convert.ToBase64String(SealBytes(plaintext, binding));

    public byte[] Open(string sealedText, string binding) => Open(Convert.FromBase64String(sealedText), binding);

    /// <summary>Nonce, ciphertext and tag as raw bytes, for a binary table property.</summary>
    public byte[] SealBytes(ReadOnlySpan<byte> plaintext, string binding)
    {
        var output = new byte[Overhead + plaintext.Length];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(keys.EncryptionKey, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(NonceSize, plaintext.Length), output.AsSpan(NonceSize + plaintext.Length), Encoding.UTF8.GetBytes(binding));
        return output;
    }

    /// <exception cref="CryptographicException">The value was not sealed with this key and binding, or was altered.</exception>
    public byte[] Open(byte[] input, string binding)
    {
        if (input.Length < Overhead)
        {
            throw new CryptographicException("The sealed value is too short.");
        }

        var plaintext = new byte[input.Length - Overhead];
        using var aes = new AesGcm(keys.EncryptionKey, TagSize);
        aes.Decrypt(input.AsSpan(0, NonceSize), input.AsSpan(NonceSize, plaintext.Length), input.AsSpan(NonceSize + plaintext.Length), plaintext, Encoding.UTF8.GetBytes(binding));
        return plaintext;
    }
}
