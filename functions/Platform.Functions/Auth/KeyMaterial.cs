using System.Security.Cryptography;
using System.Text;
using Azure.Identity;
using Azure.Security.KeyVault.Secrets;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Platform.Functions.Auth;

/// <summary>
/// The token-signing key (ES256) and the data-encryption key (AES-256-GCM). Taken, in order, from configuration
/// (<c>Platform:Auth:SigningKey</c>, <c>Platform:Auth:DataEncryptionKey</c>), from Key Vault when
/// <c>Platform:KeyVault:Uri</c> is set (secrets <c>token-signing-key</c> and <c>data-encryption-key</c>, read with
/// the app's managed identity), or - outside Production only - generated once and kept in the data folder.
/// Production without keys refuses to start: tokens signed by a throwaway key would die with the instance.
/// </summary>
public sealed partial class KeyMaterial
{
    public const string SigningKeySecret = "token-signing-key";
    public const string EncryptionKeySecret = "data-encryption-key";

    public KeyMaterial(IOptions<AuthOptions> options, IConfiguration configuration, IHostEnvironment environment, ILogger<KeyMaterial> logger)
    {
        var auth = options.Value;
        var signingPem = auth.SigningKey;
        var encryptionKey = auth.DataEncryptionKey;

        var previousKeys = auth.PreviousDataEncryptionKeys;
        if ((signingPem is null || encryptionKey is null) && Uri.TryCreate(configuration["Platform:KeyVault:Uri"], UriKind.Absolute, out var vault))
        {
            var secrets = new SecretClient(vault, new DefaultAzureCredential(new DefaultAzureCredentialOptions
            {
                ManagedIdentityClientId = configuration["AZURE_CLIENT_ID"],
            }));
            signingPem ??= secrets.GetSecret(SigningKeySecret).Value.Value;
            if (encryptionKey is null)
            {
                encryptionKey = secrets.GetSecret(EncryptionKeySecret).Value.Value;
                previousKeys ??= OptionalSecret(secrets, PreviousEncryptionKeysSecret);
            }
        }

        if (signingPem is null || encryptionKey is null)
        {
            if (environment.IsProduction())
            {
                throw new OptionsValidationException(AuthOptions.Section, typeof(AuthOptions),
                    ["Platform:Auth:SigningKey and Platform:Auth:DataEncryptionKey are not set, and Platform:KeyVault:Uri names no vault to read them from."]);
            }

            var folder = Directory.CreateDirectory(Path.Combine(environment.ContentRootPath, auth.DataDirectory)).FullName;
            signingPem ??= ReadOrCreate(Path.Combine(folder, "signing-key.pem"), () => ECDsa.Create(ECCurve.NamedCurves.nistP256).ExportPkcs8PrivateKeyPem());
            encryptionKey ??= ReadOrCreate(Path.Combine(folder, "data-encryption.key"), () => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
            LogDevelopmentKeys(logger, folder);
        }

        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(signingPem);
        }
        catch (ArgumentException ex)
        {
            throw new OptionsValidationException(AuthOptions.Section, typeof(AuthOptions), [$"Platform:Auth:SigningKey is not a PEM EC private key: {ex.Message}"]);
        }

        if (ecdsa.KeySize != 256)
        {
            throw new OptionsValidationException(AuthOptions.Section, typeof(AuthOptions), ["Platform:Auth:SigningKey must be a P-256 key (ES256)."]);
        }

        var parameters = ecdsa.ExportParameters(false);
        KeyId = Thumbprint(parameters);
        SigningKey = new ECDsaSecurityKey(ecdsa) { KeyId = KeyId };
        PublicJwk = new Dictionary<string, string>
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64UrlEncoder.Encode(parameters.Q.X),
            ["y"] = Base64UrlEncoder.Encode(parameters.Q.Y),
            ["kid"] = KeyId,
            ["use"] = "sig",
            ["alg"] = SecurityAlgorithms.EcdsaSha256,
        };

        byte[] key;
        try
        {
            key = Convert.FromBase64String(encryptionKey.Trim());
        }
        catch (FormatException)
        {
            key = [];
        }

        if (key.Length != 32)
        {
            throw new OptionsValidationException(AuthOptions.Section, typeof(AuthOptions), ["Platform:Auth:DataEncryptionKey must be base64 of exactly 32 bytes."]);
        }

        EncryptionKey = key;
        PreviousEncryptionKeys = [.. (previousKeys ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ReadPrevious)];
    }

    public const string PreviousEncryptionKeysSecret = "data-encryption-key-previous";

    /// <summary>RFC 7638 thumbprint of the public key: the same key always has the same <c>kid</c>.</summary>
    public string KeyId { get; }

    public ECDsaSecurityKey SigningKey { get; }

    public IReadOnlyDictionary<string, string> PublicJwk { get; }

    internal byte[] EncryptionKey { get; }

    /// <summary>Keys used before <see cref="EncryptionKey"/>, newest first (<see cref="AuthOptions.PreviousDataEncryptionKeys"/>).</summary>
    internal IReadOnlyList<byte[]> PreviousEncryptionKeys { get; }

    /// <summary>
    /// A 256-bit key for one purpose, derived from the data-encryption key (HKDF-SHA256 with the purpose as info), so
    /// no two uses share key bytes and no further secret needs storing or rotating.
    /// </summary>
    internal byte[] DeriveKey(string purpose) => Derive(EncryptionKey, purpose);

    /// <summary>The purpose's keys derived from each previous data-encryption key, newest first: for opening what was sealed before a rotation.</summary>
    internal IEnumerable<byte[]> DerivePreviousKeys(string purpose) => PreviousEncryptionKeys.Select(key => Derive(key, purpose));

    private static byte[] Derive(byte[] key, string purpose) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, 32, salt: [], info: Encoding.UTF8.GetBytes(purpose));

    private static byte[] ReadPrevious(string text)
    {
        byte[] key;
        try
        {
            key = Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            key = [];
        }

        return key.Length == 32 ? key
            : throw new OptionsValidationException(AuthOptions.Section, typeof(AuthOptions), ["Platform:Auth:PreviousDataEncryptionKeys must be comma-separated base64 of exactly 32 bytes each."]);
    }

    private static string? OptionalSecret(SecretClient secrets, string name)
    {
        try
        {
            return secrets.GetSecret(name).Value.Value;
        }
        catch (Azure.RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    private static string Thumbprint(ECParameters parameters)
    {
        var canonical = $$"""{"crv":"P-256","kty":"EC","x":"{{Base64UrlEncoder.Encode(parameters.Q.X)}}","y":"{{Base64UrlEncoder.Encode(parameters.Q.Y)}}"}""";
        return Base64UrlEncoder.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    private static string ReadOrCreate(string path, Func<string> create)
    {
        if (!File.Exists(path))
        {
            try
            {
                // CreateNew: two processes starting together must end up with one key, not overwrite each other.
                using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                using var writer = new StreamWriter(stream);
                writer.Write(create());
            }
            catch (IOException) when (File.Exists(path))
            {
            }
        }

        return File.ReadAllText(path);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Using development keys kept in {Folder}; configure Platform:Auth keys or Key Vault for anything shared")]
    private static partial void LogDevelopmentKeys(ILogger logger, string folder);
}
