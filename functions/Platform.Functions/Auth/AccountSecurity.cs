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
    /// <summary>
    /// Checks a signed-in user's password (to change it, to turn MFA off). Each check is counted toward the same
    /// lockout as sign-in before it is made, so these routes are no way around it, not even with guesses sent at once;
    /// a right password gives its attempt back. Null means the password is right.
    /// </summary>
    public async Task<CommandError?> CheckPasswordAsync(TenantId tenant, UserEntity user, string? password, CancellationToken cancellationToken)
    {
        var email = UserDirectory.NormalizeEmail(user.Email)!;
        var attempt = await lockouts.ReserveAsync(tenant, email, cancellationToken);
        if (attempt.LockedFor is { } lockedFor)
        {
            return AccountLocked(lockedFor);
        }

        if (password is { Length: > 0 and <= AuthEndpoints.MaxPasswordInputLength }
            && await hasher.VerifyAsync(password, user.PasswordHash, cancellationToken) != PasswordCheck.Mismatch)
        {
            await lockouts.ReleaseAsync(tenant, email, attempt, cancellationToken);
            return null;
        }

        return InvalidPassword;
    }

    /// <summary>As <see cref="CheckPasswordAsync(TenantId, UserEntity, string?, CancellationToken)"/>, as the problem to answer with.</summary>
    public async Task<Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult?> CheckPasswordAsync(
        TenantId tenant, UserEntity user, string? password, HttpContext http, CancellationToken cancellationToken) =>
        (await CheckPasswordAsync(tenant, user, password, cancellationToken))?.ToProblem(http);

    /// <summary>
    /// Step-up for changes that would hand the account to whoever holds the token: allowed within
    /// <see cref="AuthEndpoints.FreshSession"/> of signing in, later only with the password (checked like sign-in).
    /// </summary>
    public async Task<CommandError?> RequireRecentSignInAsync(Caller caller, UserEntity user, string? password, CancellationToken cancellationToken)
    {
        if (password is null && caller.SessionId.Length > 0 &&
            await sessions.GetAsync(caller.Tenant, caller.UserId, caller.SessionId, cancellationToken) is { } session &&
            time.GetUtcNow() - session.CreatedAt <= AuthEndpoints.FreshSession)
        {
            return null;
        }

        return password is null
            ? new CommandError(403, "reauthentication_required", "Send your password as password: this session signed in too long ago for this change.") { Title = "Password needed" }
            : await CheckPasswordAsync(caller.Tenant, user, password, cancellationToken);
    }

    /// <summary>Too many failed sign-ins: 429 with <c>Retry-After</c>.</summary>
    public static CommandError AccountLocked(TimeSpan lockedFor) =>
        new(429, "account_locked", $"Too many failed sign-ins. Try again in {(int)Math.Ceiling(lockedFor.TotalSeconds)} seconds.") { Title = "Account locked", RetryAfter = lockedFor };

    public static CommandError InvalidPassword { get; } =
        new(403, "invalid_password", "The password given does not match this account's.") { Title = "Wrong password" };

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
        user.PasswordHash = await hasher.HashAsync(newPassword, cancellationToken);
        user.UpdatedAt = time.GetUtcNow();
        await WriteChangeAsync(tenant, user, eventType, MailKind.PasswordChanged, keepSessionId, ip, cancellationToken,
            () => lockouts.ClearAsync(tenant, UserDirectory.NormalizeEmail(user.Email)!, cancellationToken));
    }

    /// <summary>
    /// Writes the user row as changed in memory, with the change's event in the same transaction (the decisive write:
    /// the new password or MFA state holds from here on), then ends the other sessions and mails the owner.
    /// </summary>
    /// <param name="keepSessionId">The session that made the change and stays; null ends every session.</param>
    /// <param name="afterWrite">Further cleanup after the write, before the sessions end (a password change clears the lockout).</param>
    public async Task WriteChangeAsync(TenantId tenant, UserEntity user, string eventType, MailKind? notice, string? keepSessionId, string? ip,
        CancellationToken cancellationToken, Func<Task>? afterWrite = null)
    {
        await users.UpdateAsync(tenant, user, events, [new PlatformEvent(eventType, Actor.User(user.Id, ip), "user", user.Id)], cancellationToken);
        if (afterWrite is not null)
        {
            await afterWrite();
        }

        await sessions.RevokeAllAsync(tenant, user.Id, keepSessionId, cancellationToken);
        if (notice is { } kind && await tenants.GetAsync(tenant, cancellationToken) is { } owner)
        {
            await mail.SendNoticeAsync(kind, owner.Name, user, cancellationToken);
        }
    }
}
