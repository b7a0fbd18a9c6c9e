using Azure;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Mail;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// What a person does to their own sign-in: sign in and out, end a session, verify their email, set up and turn
/// TOTP on or off. A command does the whole change (the user row or session write and the event it causes); the
/// handlers in <see cref="AuthEndpoints"/> only translate HTTP.
/// </summary>
public sealed class AccountCommands(
    TenantDirectory tenants,
    UserDirectory users,
    PasswordHasher hasher,
    Lockouts lockouts,
    Sessions sessions,
    AccessTokens tokens,
    Mfa mfa,
    UserTokens userTokens,
    AccountSecurity security,
    EventPublisher events,
    TimeProvider time)
{
    /// <summary>Signs in with the tenant slug, email and password (and a second factor when MFA is on).</summary>
    public async Task<Outcome<AuthEndpoints.TokenResponse>> SignInAsync(
        string? tenantSlug, string? emailText, string? passwordText, string? otp, string? ip, string userAgent, CancellationToken cancellationToken)
    {
        var tenant = await tenants.FindBySlugAsync(tenantSlug?.Trim(), cancellationToken);
        var email = UserDirectory.NormalizeEmail(emailText);
        var password = passwordText ?? "";
        if (tenant is null || email is null || password.Length > AuthEndpoints.MaxPasswordInputLength)
        {
            // Same work and the same answer as a wrong password: nothing tells which part was wrong.
            await hasher.VerifyAsync(password.Length > AuthEndpoints.MaxPasswordInputLength ? "" : password, null, cancellationToken);
            return InvalidCredentials;
        }

        // The attempt is counted before the password is checked, so guesses sent at once cannot all pass a lock check
        // that none of them has counted toward yet; while locked, nothing is checked and every password gets this answer.
        // (A 503 busy from the hashing gate below keeps the attempt counted and has checked nothing.)
        var tenantId = new TenantId(tenant.Id);
        var attempt = await lockouts.ReserveAsync(tenantId, email, cancellationToken);
        if (attempt.LockedFor is { } lockedFor)
        {
            return AccountSecurity.AccountLocked(lockedFor);
        }

        var user = await users.FindByEmailAsync(tenantId, email, cancellationToken);
        var check = await hasher.VerifyAsync(password, user?.PasswordHash, cancellationToken);
        if (user is null || !user.IsActive || check == PasswordCheck.Mismatch)
        {
            await RecordFailureAsync(tenantId, user, "invalid_credentials", ip, attempt, cancellationToken);
            return InvalidCredentials;
        }

        if (user.MfaEnabled)
        {
            if (string.IsNullOrWhiteSpace(otp))
            {
                await lockouts.ReleaseAsync(tenantId, email, attempt, cancellationToken);
                return new CommandError(401, "mfa_required", "This account needs a one-time code: send it as otp.") { Title = "MFA required" };
            }

            if (!AcceptSecondFactor(tenantId, user, otp.Trim()))
            {
                await RecordFailureAsync(tenantId, user, "invalid_otp", ip, attempt, cancellationToken);
                return InvalidOtp(401);
            }
        }

        if (check == PasswordCheck.MatchNeedsRehash)
        {
            user.PasswordHash = await hasher.HashAsync(password, cancellationToken);
        }

        SignInHistory.Record(user, time.GetUtcNow());
        try
        {
            await users.UpdateAsync(tenantId, user, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            // The user changed meanwhile - for a TOTP sign-in that is another sign-in spending the same code.
            if (user.MfaEnabled)
            {
                return InvalidOtp(401);
            }
        }

        await lockouts.ClearAsync(tenantId, email, cancellationToken);

        // The session row is the decisive write of a sign-in (the user row's last-login stamp above may even lose a
        // race harmlessly): the event commits with it.
        var (session, refreshToken) = await sessions.StartAsync(tenantId, user.Id, userAgent, ip, cancellationToken,
            sessionId => new PlatformEvent("auth.login.succeeded", Actor.User(user.Id, ip), "session", sessionId));
        return AuthEndpoints.Tokens(tokens, tenantId, user.Id, session.Id, refreshToken);
    }

    /// <summary>Ends the caller's session (if it still exists) and audits the sign-out either way.</summary>
    public async Task<Outcome<bool>> SignOutAsync(Caller caller, CancellationToken cancellationToken)
    {
        var loggedOut = new PlatformEvent("auth.logout", caller.Actor, "session", caller.SessionId);
        if (await sessions.GetAsync(caller.Tenant, caller.UserId, caller.SessionId, cancellationToken) is { } session)
        {
            // Committed with the revocation, or published alone when there is nothing left to revoke.
            await sessions.RevokeAsync(caller.Tenant, session, cancellationToken, [loggedOut]);
        }
        else
        {
            // No session row to write (a sessionless caller, or one already removed): an event that changes no row.
            await events.PublishAsync(caller.Tenant, loggedOut, cancellationToken);
        }

        return true;
    }

    /// <summary>Ends one of the caller's own sessions.</summary>
    public async Task<Outcome<bool>> RevokeSessionAsync(Caller caller, string id, CancellationToken cancellationToken)
    {
        var session = id.Length <= 64 && id.All(char.IsAsciiLetterOrDigit)
            ? await sessions.GetAsync(caller.Tenant, caller.UserId, id, cancellationToken)
            : null;
        if (session is null || session.RevokedAt is not null)
        {
            return CommandError.NotFound("session") with { Message = "No session of yours has this id." };
        }

        await sessions.RevokeAsync(caller.Tenant, session, cancellationToken, [new PlatformEvent("auth.session.revoked", caller.Actor, "session", id)]);
        return true;
    }

    /// <summary>Confirms the address a mailed verification token was issued for.</summary>
    public async Task<Outcome<bool>> VerifyEmailAsync(string? token, string? ip, CancellationToken cancellationToken)
    {
        if (await userTokens.RedeemAsync(AccountMail.VerifyPurpose, token, cancellationToken) is not { } owner)
        {
            return InvalidToken;
        }

        var user = owner.User;
        if (!user.EmailVerified)
        {
            user.EmailVerified = true;
            user.UpdatedAt = time.GetUtcNow();
            await users.UpdateAsync(owner.Tenant, user, events, [new PlatformEvent("user.email_verified", Actor.User(user.Id, ip), "user", user.Id)], cancellationToken);
        }

        return true;
    }

    /// <summary>Starts TOTP setup: a new secret, kept pending until a code from it turns TOTP on.</summary>
    public async Task<Outcome<AuthEndpoints.TotpSetup>> SetUpTotpAsync(Caller caller, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (user.MfaEnabled)
        {
            return MfaAlreadyEnabled("Disable TOTP first to set up a new authenticator.");
        }

        var (secret, encrypted) = mfa.NewSecret(caller.Tenant, user.Id);
        user.PendingTotpSecret = encrypted;
        await users.UpdateAsync(caller.Tenant, user, cancellationToken);
        var tenant = await tenants.GetAsync(caller.Tenant, cancellationToken);
        return new AuthEndpoints.TotpSetup(secret, Mfa.OtpAuthUri(secret, user.Email, tenant?.Name ?? ""));
    }

    /// <summary>Turns TOTP on with a code from the pending secret; gives back ten single-use backup codes.</summary>
    public async Task<Outcome<AuthEndpoints.BackupCodeList>> EnableTotpAsync(Caller caller, string? code, string? password, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (user.MfaEnabled)
        {
            return MfaAlreadyEnabled("TOTP is already on for this account.");
        }

        if (user.PendingTotpSecret is null)
        {
            return new CommandError(409, "mfa_setup_required", "Call /api/v1/auth/mfa/totp/setup before enabling.") { Title = "Set up TOTP first" };
        }

        if (await security.RequireRecentSignInAsync(caller, user, password, cancellationToken) is { } refused)
        {
            return refused;
        }

        if (mfa.Verify(caller.Tenant, user.Id, user.PendingTotpSecret, code?.Trim(), lastStep: 0) is not { } step)
        {
            return InvalidOtp(400);
        }

        var (codes, hashes) = mfa.NewBackupCodes(caller.Tenant, user.Id);
        user.TotpSecret = user.PendingTotpSecret;
        user.PendingTotpSecret = null;
        user.TotpLastStep = step;
        user.BackupCodeHashes = hashes;
        user.MfaEnabled = true;
        user.UpdatedAt = time.GetUtcNow();
        await security.WriteChangeAsync(caller.Tenant, user, "auth.mfa.enabled", MailKind.MfaEnabled, caller.SessionId, caller.Ip, cancellationToken);
        return new AuthEndpoints.BackupCodeList(codes);
    }

    /// <summary>Turns TOTP off; needs the password (checked like sign-in).</summary>
    public async Task<Outcome<bool>> DisableTotpAsync(Caller caller, string? password, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (await security.CheckPasswordAsync(caller.Tenant, user, password, cancellationToken) is { } refused)
        {
            return refused;
        }

        if (!user.MfaEnabled)
        {
            return true;
        }

        user.MfaEnabled = false;
        user.TotpSecret = null;
        user.PendingTotpSecret = null;
        user.BackupCodeHashes = "[]";
        user.UpdatedAt = time.GetUtcNow();
        await security.WriteChangeAsync(caller.Tenant, user, "auth.mfa.disabled", MailKind.MfaDisabled, caller.SessionId, caller.Ip, cancellationToken);
        return true;
    }

    /// <summary>Replaces the caller's backup codes with ten new ones.</summary>
    public async Task<Outcome<AuthEndpoints.BackupCodeList>> RegenerateBackupCodesAsync(Caller caller, string? password, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (!user.MfaEnabled)
        {
            return new CommandError(409, "mfa_not_enabled", "Backup codes exist only while TOTP is on.") { Title = "MFA not enabled" };
        }

        if (await security.RequireRecentSignInAsync(caller, user, password, cancellationToken) is { } refused)
        {
            return refused;
        }

        var (codes, hashes) = mfa.NewBackupCodes(caller.Tenant, user.Id);
        user.BackupCodeHashes = hashes;
        await security.WriteChangeAsync(caller.Tenant, user, "auth.mfa.backup_codes_regenerated", null, caller.SessionId, caller.Ip, cancellationToken);
        return new AuthEndpoints.BackupCodeList(codes);
    }

    /// <summary>A TOTP code newer than the last one used, or an unused backup code; updates the user row in memory.</summary>
    private bool AcceptSecondFactor(TenantId tenant, UserEntity user, string otp)
    {
        if (user.TotpSecret is not null && mfa.Verify(tenant, user.Id, user.TotpSecret, otp, user.TotpLastStep) is { } step)
        {
            user.TotpLastStep = step;
            // Saved with the sign-in: backup codes stored by an older version move to the keyed form.
            user.BackupCodeHashes = mfa.UpgradeBackupCodes(tenant, user.Id, user.BackupCodeHashes);
            return true;
        }

        if (mfa.ConsumeBackupCode(tenant, user.Id, user.BackupCodeHashes, otp) is { } remaining)
        {
            user.BackupCodeHashes = remaining;
            return true;
        }

        return false;
    }

    /// <summary>
    /// Audits a failed attempt (already counted when it was reserved) and the lockout it started, if any. Nothing is
    /// written here (the reservation wrote before the outcome was known), so these are events that change no row.
    /// </summary>
    private async Task RecordFailureAsync(TenantId tenant, UserEntity? user, string reason, string? ip, AttemptReservation attempt, CancellationToken cancellationToken)
    {
        var lockout = attempt.StartedLockout;
        await events.PublishAsync(tenant, new PlatformEvent("auth.login.failed", Actor.Anonymous(ip), "user", user?.Id,
            new Dictionary<string, object?> { ["reason"] = reason }), cancellationToken);
        if (lockout is { } duration)
        {
            await events.PublishAsync(tenant, new PlatformEvent("auth.account.locked", Actor.System, "user", user?.Id,
                new Dictionary<string, object?> { ["lockedForSeconds"] = (int)duration.TotalSeconds }), cancellationToken);
        }
    }

    private static CommandError InvalidCredentials { get; } =
        new(401, "invalid_credentials", "The tenant, email or password is wrong.") { Title = "Invalid credentials" };

    private static CommandError InvalidOtp(int status) =>
        new(status, "invalid_otp", "The code is wrong, expired or already used.") { Title = "Invalid one-time code" };

    private static CommandError MfaAlreadyEnabled(string message) => new(409, "mfa_already_enabled", message) { Title = "MFA already enabled" };

    internal static CommandError InvalidToken { get; } = new(400, "invalid_token", "The link is unknown, expired or already used.") { Title = "Invalid token" };
}
