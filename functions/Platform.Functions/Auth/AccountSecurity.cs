using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Mail;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// What every change to how an account signs in (password reset or change, MFA on or off) must do alike: end the
/// other sessions, audit the change, and tell the owner by mail.
/// </summary>
public sealed class AccountSecurity(
    UserDirectory users,
    TenantDirectory tenants,
    PasswordHasher hasher,
    PasswordPolicy policy,
    Sessions sessions,
    Lockouts lockouts,
    AccountMail mail,
    EventPublisher events,
    TimeProvider time)
{
    /// <summary>The policy's verdict on a new password, as field errors of <paramref name="field"/>.</summary>
    public Validation CheckNewPassword(string field, string? password)
    {
        var validation = new Validation();
        foreach (var problem in policy.Check(password))
        {
            validation.Add(field, problem);
        }

        return validation;
    }

    /// <summary>Stores a new (already checked) password and clears the account's failed sign-ins.</summary>
    public async Task SetPasswordAsync(TenantId tenant, UserEntity user, string newPassword, string eventType, string? keepSessionId, string? ip,
        CancellationToken cancellationToken)
    {
        user.PasswordHash = hasher.Hash(newPassword);
        user.UpdatedAt = time.GetUtcNow();
        await users.UpdateAsync(tenant, user, cancellationToken);
        await lockouts.ClearAsync(tenant, UserDirectory.NormalizeEmail(user.Email)!, cancellationToken);
        await AfterChangeAsync(tenant, user, eventType, MailKind.PasswordChanged, keepSessionId, ip, cancellationToken);
    }

    /// <param name="keepSessionId">The session that made the change and stays; null ends every session.</param>
    public async Task AfterChangeAsync(TenantId tenant, UserEntity user, string eventType, MailKind notice, string? keepSessionId, string? ip,
        CancellationToken cancellationToken)
    {
        await sessions.RevokeAllAsync(tenant, user.Id, keepSessionId, cancellationToken);
        await events.PublishAsync(tenant, new PlatformEvent(eventType, Actor.User(user.Id, ip), "user", user.Id), cancellationToken);
        if (await tenants.GetAsync(tenant, cancellationToken) is { } owner)
        {
            await mail.SendNoticeAsync(notice, owner.Name, user, cancellationToken);
        }
    }
}
