using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OtpNet;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of drift either way) and single-use backup codes, stored
/// as keyed hashes.
/// A code is accepted only for a time step later than the last one accepted, so a code cannot be replayed
/// within its window; the caller stores <see cref="UserEntity.TotpLastStep"/> with the user's ETag.
/// </summary>
public sealed class Mfa(SecretBox secrets, KeyMaterial keys, TimeProvider time)
{
    public const int BackupCodeCount = 10;

    /// <summary>Marks a stored backup-code hash as keyed; the older plain SHA-256 hashes are bare hex.</summary>
    public const string KeyedPrefix = "h1:";

    private readonly byte[] _backupCodeKey = keys.DeriveKey("platform/backup-codes");
    private readonly byte[][] _previousBackupCodeKeys = [.. keys.DerivePreviousKeys("platform/backup-codes")];
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

    /// <summary>
    /// A seed sealed for one tenant, sealed again for another: a tenant restored into a sandbox keeps its users'
    /// authenticator apps (the seal is bound to the tenant, so a copied seed would not open there).
    /// </summary>
    public string Reseal(string sealedSecret, TenantId from, TenantId to, string userId) =>
        secrets.Seal(secrets.Open(sealedSecret, Binding(from, userId)), Binding(to, userId));

    /// <summary>Ten fresh codes to show once, and their keyed hashes to store.</summary>
    public (IReadOnlyList<string> Codes, string Hashes) NewBackupCodes(TenantId tenant, string userId)
    {
        var codes = Enumerable.Range(0, BackupCodeCount)
            .Select(_ => RandomNumberGenerator.GetString(BackupAlphabet, 10).Insert(5, "-"))
            .ToList();
        return (codes, JsonSerializer.Serialize(codes.Select(code => KeyedHash(tenant, userId, PlainHash(code)))));
    }

    /// <summary>
    /// The stored hashes without the one matching <paramref name="code"/> (the rest in the keyed form); null when no
    /// code matches. Every stored hash is compared, in constant time, whichever matches.
    /// </summary>
    public string? ConsumeBackupCode(TenantId tenant, string userId, string storedHashes, string? code)
    {
        if (code is null || code.Length > 20)
        {
            return null;
        }

        var plain = PlainHash(code);
        // Keyed under the current key, or under one used before a rotation: codes issued then keep working.
        var keyed = _previousBackupCodeKeys.Prepend(_backupCodeKey).Select(key => Encoding.ASCII.GetBytes(KeyedHash(key, tenant, userId, plain))).ToList();
        var legacy = Encoding.ASCII.GetBytes(plain);
        var hashes = JsonSerializer.Deserialize<List<string>>(storedHashes) ?? [];
        var index = -1;
        for (var i = 0; i < hashes.Count; i++)
        {
            var stored = Encoding.ASCII.GetBytes(hashes[i]);
            var match = false;
            foreach (var candidate in IsKeyed(hashes[i]) ? keyed : [legacy])
            {
                match |= CryptographicOperations.FixedTimeEquals(stored, candidate);
            }

            index = match && index < 0 ? i : index;
        }

        if (index < 0)
        {
            return null;
        }

        hashes.RemoveAt(index);
        return UpgradeBackupCodes(tenant, userId, JsonSerializer.Serialize(hashes));
    }

    /// <summary>
    /// Stored hashes in the keyed form. Codes issued before it are stored as a plain SHA-256, which anyone holding a
    /// copy of the table could brute-force offline (50 bits); the keyed form is computed over that SHA-256, so old
    /// rows are rewritten without knowing their codes, and the codes keep working.
    /// </summary>
    public string UpgradeBackupCodes(TenantId tenant, string userId, string storedHashes)
    {
        var hashes = JsonSerializer.Deserialize<List<string>>(storedHashes) ?? [];
        return hashes.All(IsKeyed)
            ? storedHashes
            : JsonSerializer.Serialize(hashes.Select(h => IsKeyed(h) ? h : KeyedHash(tenant, userId, h)));
    }

    /// <summary>HMAC-SHA256 under a key derived from the data-encryption key, salted with the tenant and user.</summary>
    private string KeyedHash(TenantId tenant, string userId, string plainHash) => KeyedHash(_backupCodeKey, tenant, userId, plainHash);

    private static string KeyedHash(byte[] key, TenantId tenant, string userId, string plainHash) =>
        KeyedPrefix + Convert.ToHexString(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"backup:{tenant.Value}:{userId}:{plainHash}")));

    private static bool IsKeyed(string storedHash) => storedHash.StartsWith(KeyedPrefix, StringComparison.Ordinal);

    private static string PlainHash(string code) =>
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
        var associated = Encoding.UTF8.GetBytes(binding);

        // Sealed under the current key, or under one used before a rotation (Platform:Auth:PreviousDataEncryptionKeys).
        foreach (var key in keys.PreviousEncryptionKeys.Prepend(keys.EncryptionKey))
        {
            using var aes = new AesGcm(key, TagSize);
            try
            {
                aes.Decrypt(input.AsSpan(0, NonceSize), input.AsSpan(NonceSize, plaintext.Length), input.AsSpan(NonceSize + plaintext.Length), plaintext, associated);
                return plaintext;
            }
            catch (AuthenticationTagMismatchException) when (keys.PreviousEncryptionKeys.Count > 0)
            {
            }
        }

        throw new AuthenticationTagMismatchException("The value was not sealed with this deployment's data-encryption key (nor a previous one it was given), or was altered.");
    }
}
