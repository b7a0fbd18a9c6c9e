using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Auth;

/// <summary>Settings under <c>Platform:Auth</c>. Keys come from here, from Key Vault, or (development) a data folder.</summary>
public sealed class AuthOptions
{
    public const string Section = "Platform:Auth";

    /// <summary>The <c>iss</c> of access tokens; defaults to <c>Platform:PublicBaseUrl</c>.</summary>
    public string? Issuer { get; set; }

    [Required]
    public string Audience { get; set; } = "platform-api";

    [Range(typeof(TimeSpan), "00:01:00", "01:00:00")]
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>A session not refreshed for this long ends.</summary>
    [Range(typeof(TimeSpan), "00:05:00", "365.00:00:00")]
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromDays(30);

    /// <summary>A session ends this long after sign-in, however often it is refreshed.</summary>
    [Range(typeof(TimeSpan), "00:05:00", "3650.00:00:00")]
    public TimeSpan SessionAbsoluteLifetime { get; set; } = TimeSpan.FromDays(90);

    [Range(1, 1000)]
    public int MaxSessionsPerUser { get; set; } = 10;

    /// <summary>How long an instance trusts what it read about a session or user before reading it again.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:30")]
    public TimeSpan RevocationCheckInterval { get; set; } = TimeSpan.FromSeconds(30);

    [Range(2, 100)]
    public int LockoutThreshold { get; set; } = 5;

    [Range(typeof(TimeSpan), "00:01:00", "1.00:00:00")]
    public TimeSpan LockoutWindow { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>The first lockout; each further one doubles, up to <see cref="MaxLockout"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan FirstLockout { get; set; } = TimeSpan.FromMinutes(15);

    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan MaxLockout { get; set; } = TimeSpan.FromHours(24);

    [Range(typeof(TimeSpan), "00:05:00", "1.00:00:00")]
    public TimeSpan PasswordResetLifetime { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Reset mails one account receives per UTC clock hour at most; further requests are dropped unanswered.</summary>
    [Range(1, 100)]
    public int PasswordResetMailsPerHour { get; set; } = 3;

    [Range(typeof(TimeSpan), "01:00:00", "7.00:00:00")]
    public TimeSpan EmailVerificationLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>PEM of an EC P-256 private key (PKCS#8 or SEC1) that signs access tokens (ES256).</summary>
    public string? SigningKey { get; set; }

    /// <summary>Base64 of 32 random bytes: the AES-256-GCM key for secrets at rest (TOTP seeds).</summary>
    public string? DataEncryptionKey { get; set; }

    /// <summary>
    /// Data-encryption keys used before <see cref="DataEncryptionKey"/>, comma-separated base64, newest first: kept
    /// after a rotation so what was sealed under them still opens (sealed secrets, MFA backup codes, backups); new
    /// values are sealed under the current key.
    /// </summary>
    public string? PreviousDataEncryptionKeys { get; set; }

    /// <summary>Where a development key pair and encryption key are kept when none is configured.</summary>
    public string DataDirectory { get; set; } = ".data";
}
