using System.Globalization;
using Microsoft.Extensions.Options;
using Platform.Functions.Hosting;
using Platform.Functions.Mail;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// The mails an account receives. Links are built from <c>Platform:PublicBaseUrl</c>, never from the request's
/// Host header, so a forged Host cannot send a victim's reset link to an attacker's site.
/// </summary>
public sealed partial class AccountMail(IMailSender sender, UserTokens tokens, IOptions<AuthOptions> auth, IOptions<PlatformOptions> platform, TimeProvider time, ILogger<AccountMail> logger)
{
    public const string ResetPurpose = "reset";
    public const string VerifyPurpose = "verify";

    public async Task SendVerificationAsync(TenantId tenant, string tenantName, UserEntity user, CancellationToken cancellationToken)
    {
        var lifetime = auth.Value.EmailVerificationLifetime;
        var token = await tokens.IssueAsync(tenant, VerifyPurpose, user, lifetime, cancellationToken);
        await SendAsync(new OutgoingMail(user.Email, user.DisplayName, MailKind.EmailVerification, new Dictionary<string, string>
        {
            ["displayName"] = user.DisplayName,
            ["link"] = Link("verify-email", token),
            ["expiresInHours"] = ((int)lifetime.TotalHours).ToString(CultureInfo.InvariantCulture),
            ["tenantName"] = tenantName,
        }), cancellationToken);
    }

    public async Task SendPasswordResetAsync(TenantId tenant, string tenantName, UserEntity user, CancellationToken cancellationToken)
    {
        var lifetime = auth.Value.PasswordResetLifetime;
        var token = await tokens.IssueAsync(tenant, ResetPurpose, user, lifetime, cancellationToken);
        await SendAsync(new OutgoingMail(user.Email, user.DisplayName, MailKind.PasswordReset, new Dictionary<string, string>
        {
            ["displayName"] = user.DisplayName,
            ["link"] = Link("reset-password", token),
            ["expiresInMinutes"] = ((int)lifetime.TotalMinutes).ToString(CultureInfo.InvariantCulture),
            ["tenantName"] = tenantName,
        }), cancellationToken);
    }

    /// <summary>A security notice (password changed, MFA on or off) to the account's own address.</summary>
    public Task SendNoticeAsync(MailKind kind, string tenantName, UserEntity user, CancellationToken cancellationToken) =>
        SendAsync(new OutgoingMail(user.Email, user.DisplayName, kind, new Dictionary<string, string>
        {
            ["displayName"] = user.DisplayName,
            ["tenantName"] = tenantName,
            ["at"] = time.GetUtcNow().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
        }), cancellationToken);

    // Joined as text so a base URL with a path (https://example.com/app) keeps it.
    private string Link(string page, string token) =>
        $"{platform.Value.PublicBaseUrl.ToString().TrimEnd('/')}/{page}?token={Uri.EscapeDataString(token)}";

    /// <summary>
    /// Mail is sent after the change it reports has been saved; a mail failure is logged, never turned into a failed
    /// request for work that already happened (the user can ask for the mail again).
    /// </summary>
    private async Task SendAsync(OutgoingMail mail, CancellationToken cancellationToken)
    {
        try
        {
            await sender.SendAsync(mail, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogMailFailed(logger, ex, mail.Kind, mail.ToAddress[(mail.ToAddress.IndexOf('@', StringComparison.Ordinal) + 1)..]);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not send {Kind} mail to a recipient at {Domain}")]
    private static partial void LogMailFailed(ILogger logger, Exception exception, MailKind kind, string domain);
}
