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
public sealed class AccountMail(IMailSender mail, UserTokens tokens, IOptions<AuthOptions> auth, IOptions<PlatformOptions> platform, TimeProvider time)
{
    public const string ResetPurpose = "reset";
    public const string VerifyPurpose = "verify";

    public async Task SendVerificationAsync(TenantId tenant, string tenantName, UserEntity user, CancellationToken cancellationToken)
    {
        var lifetime = auth.Value.EmailVerificationLifetime;
        var token = await tokens.IssueAsync(tenant, VerifyPurpose, user.Id, lifetime, cancellationToken);
        await mail.SendAsync(new OutgoingMail(user.Email, user.DisplayName, MailKind.EmailVerification, new Dictionary<string, string>
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
        var token = await tokens.IssueAsync(tenant, ResetPurpose, user.Id, lifetime, cancellationToken);
        await mail.SendAsync(new OutgoingMail(user.Email, user.DisplayName, MailKind.PasswordReset, new Dictionary<string, string>
        {
            ["displayName"] = user.DisplayName,
            ["link"] = Link("reset-password", token),
            ["expiresInMinutes"] = ((int)lifetime.TotalMinutes).ToString(CultureInfo.InvariantCulture),
            ["tenantName"] = tenantName,
        }), cancellationToken);
    }

    /// <summary>A security notice (password changed, MFA on or off) to the account's own address.</summary>
    public Task SendNoticeAsync(MailKind kind, string tenantName, UserEntity user, CancellationToken cancellationToken) =>
        mail.SendAsync(new OutgoingMail(user.Email, user.DisplayName, kind, new Dictionary<string, string>
        {
            ["displayName"] = user.DisplayName,
            ["tenantName"] = tenantName,
            ["at"] = time.GetUtcNow().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
        }), cancellationToken);

    private string Link(string page, string token) =>
        new Uri(platform.Value.PublicBaseUrl, $"{page}?token={Uri.EscapeDataString(token)}").ToString();
}
