using System.Globalization;
using System.Security.Claims;
using Azure;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Mail;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>Sign-in, tokens, sessions, password reset, email verification and TOTP: <c>/api/v1/auth/...</c>.</summary>
public static partial class AuthEndpoints
{
    /// <summary>Longer passwords are refused before hashing, so a megabyte "password" costs nothing.</summary>
    public const int MaxPasswordInputLength = 1024;

    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/.well-known/jwks.json", (KeyMaterial keys) => TypedResults.Ok(new { keys = new[] { keys.PublicJwk } }))
            .AllowAnonymous().WithTags("Auth").WithName("GetJwks").WithSummary("The public keys that sign access tokens.");

        var group = app.MapGroup("/api/v1/auth").WithTags("Auth");
        group.MapPost("/login", Login).AllowAnonymous().RequireRateLimiting(AuthExtensions.LoginRateLimit).WithName("Login").WithSummary("Signs in with the tenant slug, email and password (and otp when MFA is on).");
        group.MapPost("/refresh", Refresh).AllowAnonymous().WithName("RefreshTokens").WithSummary("Exchanges a refresh token for a new token pair; the old refresh token is spent.");
        group.MapPost("/logout", Logout).RequireUserSession().WithName("Logout").WithSummary("Ends the current session.");
        group.MapGet("/sessions", ListSessions).RequireUserSession().WithName("ListSessions").WithSummary("The caller's sessions.");
        group.MapDelete("/sessions/{id}", RevokeSession).RequireUserSession().WithName("RevokeSession").WithSummary("Ends one of the caller's sessions.");
        group.MapPost("/forgot-password", ForgotPassword).AllowAnonymous().RequireRateLimiting(AuthExtensions.ForgotPasswordRateLimit).WithName("ForgotPassword").WithSummary("Mails a password-reset link when the account exists; always 202.");
        group.MapPost("/reset-password", ResetPassword).AllowAnonymous().WithName("ResetPassword").WithSummary("Sets a new password with a mailed reset token and ends every session.");
        group.MapPost("/verify-email", VerifyEmail).AllowAnonymous().WithName("VerifyEmail").WithSummary("Confirms an email address with a mailed token.");
        group.MapPost("/verify-email/resend", ResendVerification).RequireUserSession().WithName("ResendEmailVerification").WithSummary("Mails the caller a new verification link.");
        group.MapPost("/mfa/totp/setup", SetUpTotp).RequireUserSession().WithName("SetUpTotp").WithSummary("Starts TOTP setup: the secret and its otpauth URI.");
        group.MapPost("/mfa/totp/enable", EnableTotp).RequireUserSession().WithName("EnableTotp").WithSummary("Turns TOTP on with a valid code; returns ten single-use backup codes.");
        group.MapPost("/mfa/totp/disable", DisableTotp).RequireUserSession().WithName("DisableTotp").WithSummary("Turns TOTP off; needs the password.");
        group.MapPost("/mfa/backup-codes/regenerate", RegenerateBackupCodes).RequireUserSession().WithName("RegenerateBackupCodes").WithSummary("Replaces the caller's backup codes with ten new ones.");
        return group;
    }

    public sealed record LoginRequest(string? Tenant, string? Email, string? Password, string? Otp);

    public sealed record TokenResponse(string AccessToken, string RefreshToken, string TokenType, int ExpiresIn, string SessionId);

    public sealed record RefreshRequest(string? RefreshToken);

    public sealed record SessionView(string Id, DateTimeOffset CreatedAt, DateTimeOffset LastSeenAt, string? UserAgent, string? Ip, bool Current);

    public sealed record ForgotPasswordRequest(string? Tenant, string? Email);

    public sealed record ResetPasswordRequest(string? Token, string? NewPassword);

    public sealed record TokenRequest(string? Token);

    public sealed record TotpSetup(string Secret, string OtpauthUri);

    /// <param name="Password">Needed when the session is older than <see cref="FreshSession"/>: a stolen access token alone
    /// must not be enough to put an attacker's authenticator on the account.</param>
    public sealed record CodeRequest(string? Code, string? Password);

    public static readonly TimeSpan FreshSession = TimeSpan.FromMinutes(10);

    public sealed record PasswordRequest(string? Password);

    public sealed record BackupCodeList(IReadOnlyList<string> BackupCodes);

    internal static async Task<Results<Ok<TokenResponse>, ProblemHttpResult>> Login(
        LoginRequest request, HttpContext http, TenantDirectory tenants, UserDirectory users, PasswordHasher hasher,
        Lockouts lockouts, Sessions sessions, AccessTokens tokens, Mfa mfa, EventPublisher events, TimeProvider time,
        CancellationToken cancellationToken)
    {
        var ip = Caller.ClientIp(http);
        var tenant = await tenants.FindBySlugAsync(request.Tenant?.Trim(), cancellationToken);
        var email = UserDirectory.NormalizeEmail(request.Email);
        var password = request.Password ?? "";
        if (tenant is null || email is null || password.Length > MaxPasswordInputLength)
        {
            // Same work and the same answer as a wrong password: nothing tells which part was wrong.
            await hasher.VerifyAsync(password.Length > MaxPasswordInputLength ? "" : password, null, cancellationToken);
            return InvalidCredentials();
        }

        // The attempt is counted before the password is checked, so guesses sent at once cannot all pass a lock check
        // that none of them has counted toward yet; while locked, nothing is checked and every password gets this answer.
        // (A 503 busy from the hashing gate below keeps the attempt counted and has checked nothing.)
        var tenantId = new TenantId(tenant.Id);
        var attempt = await lockouts.ReserveAsync(tenantId, email, cancellationToken);
        if (attempt.LockedFor is { } lockedFor)
        {
            return AccountLocked(http, lockedFor);
        }

        var user = await users.FindByEmailAsync(tenantId, email, cancellationToken);
        var check = await hasher.VerifyAsync(password, user?.PasswordHash, cancellationToken);
        if (user is null || !user.IsActive || check == PasswordCheck.Mismatch)
        {
            await RecordFailureAsync(tenantId, user, "invalid_credentials", ip, attempt, events, cancellationToken);
            return InvalidCredentials();
        }

        if (user.MfaEnabled)
        {
            if (string.IsNullOrWhiteSpace(request.Otp))
            {
                await lockouts.ReleaseAsync(tenantId, email, attempt, cancellationToken);
                return Problems.Create(401, "mfa_required", "MFA required", "This account needs a one-time code: send it as otp.");
            }

            if (!AcceptSecondFactor(tenantId, user, request.Otp.Trim(), mfa))
            {
                await RecordFailureAsync(tenantId, user, "invalid_otp", ip, attempt, events, cancellationToken);
                return InvalidOtp();
            }
        }

        if (check == PasswordCheck.MatchNeedsRehash)
        {
            user.PasswordHash = await hasher.HashAsync(password, cancellationToken);
        }

        user.LastLoginAt = time.GetUtcNow();
        try
        {
            await users.UpdateAsync(tenantId, user, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            // The user changed meanwhile - for a TOTP sign-in that is another sign-in spending the same code.
            if (user.MfaEnabled)
            {
                return InvalidOtp();
            }
        }

        await lockouts.ClearAsync(tenantId, email, cancellationToken);
        var (session, refreshToken) = await sessions.StartAsync(tenantId, user.Id, http.Request.Headers.UserAgent.ToString(), ip, cancellationToken);
        await events.PublishAsync(tenantId, new PlatformEvent("auth.login.succeeded", Actor.User(user.Id, ip), "session", session.Id), cancellationToken);
        return TypedResults.Ok(Tokens(tokens, tenantId, user.Id, session.Id, refreshToken));
    }

    internal static async Task<Results<Ok<TokenResponse>, ProblemHttpResult>> Refresh(
        RefreshRequest request, HttpContext http, Sessions sessions, UserDirectory users, AccessTokens tokens, EventPublisher events,
        CancellationToken cancellationToken)
    {
        if (Sessions.Parse(request.RefreshToken) is not { } presented)
        {
            return InvalidRefreshToken();
        }

        var session = await sessions.GetAsync(presented.Tenant, presented.UserId, presented.SessionId, cancellationToken);
        if (session is null)
        {
            return InvalidRefreshToken();
        }

        var user = await users.GetAsync(presented.Tenant, presented.UserId, cancellationToken);
        var result = await sessions.RefreshAsync(request.RefreshToken, user, presented.Tenant, session, presented.Hash, cancellationToken);
        switch (result.Outcome)
        {
            case RefreshOutcome.Reused:
                await events.PublishAsync(presented.Tenant, new PlatformEvent("auth.refresh_token.reused", Actor.Anonymous(Caller.ClientIp(http)), "session", session.Id,
                    new Dictionary<string, object?> { ["userId"] = presented.UserId, ["sessionRevoked"] = true }), cancellationToken);
                return Problems.Create(401, "refresh_token_reused", "Refresh token reused",
                    "This refresh token was already used; the session has been revoked. Sign in again.");
            case RefreshOutcome.Refreshed:
                return TypedResults.Ok(Tokens(tokens, presented.Tenant, presented.UserId, session.Id, result.RefreshToken!));
            default:
                return InvalidRefreshToken();
        }
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Logout(
        Caller caller, HttpContext http, Sessions sessions, EventPublisher events, CancellationToken cancellationToken)
    {
        if (await sessions.GetAsync(caller.Tenant, caller.UserId, caller.SessionId, cancellationToken) is { } session)
        {
            await sessions.RevokeAsync(caller.Tenant, session, cancellationToken);
        }

        await events.PublishAsync(caller.Tenant, new PlatformEvent("auth.logout", caller.Actor, "session", caller.SessionId), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Ok<PagedList<SessionView>>> ListSessions(Caller caller, Sessions sessions, CancellationToken cancellationToken)
    {
        var items = (await sessions.ListAsync(caller.Tenant, caller.UserId, cancellationToken))
            .OrderByDescending(s => s.LastSeenAt)
            .Select(s => new SessionView(s.Id, s.CreatedAt, s.LastSeenAt, s.UserAgent, s.Ip, s.Id == caller.SessionId))
            .ToList();
        return TypedResults.Ok(new PagedList<SessionView>(items, null));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RevokeSession(
        string id, Caller caller, HttpContext http, Sessions sessions, EventPublisher events, TimeProvider time, CancellationToken cancellationToken)
    {
        var session = id.Length <= 64 && id.All(char.IsAsciiLetterOrDigit)
            ? await sessions.GetAsync(caller.Tenant, caller.UserId, id, cancellationToken)
            : null;
        if (session is null || session.RevokedAt is not null)
        {
            return Problems.NotFound("No session of yours has this id.");
        }

        await sessions.RevokeAsync(caller.Tenant, session, cancellationToken);
        await events.PublishAsync(caller.Tenant, new PlatformEvent("auth.session.revoked", caller.Actor, "session", id), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Accepted> ForgotPassword(
        ForgotPasswordRequest request, HttpContext http, PasswordResetRequests resets, CancellationToken cancellationToken)
    {
        await resets.EnqueueAsync(request.Tenant, request.Email, Caller.ClientIp(http), cancellationToken);
        return TypedResults.Accepted((string?)null);
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> ResetPassword(
        ResetPasswordRequest request, HttpContext http, UserTokens userTokens, AccountSecurity security,
        CancellationToken cancellationToken)
    {
        var validation = security.CheckNewPassword("newPassword", request.NewPassword);
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        if (await userTokens.RedeemAsync(AccountMail.ResetPurpose, request.Token, cancellationToken) is not { User.IsActive: true } owner)
        {
            return InvalidToken();
        }

        await security.SetPasswordAsync(owner.Tenant, owner.User, request.NewPassword!, "auth.password.reset", keepSessionId: null, Caller.ClientIp(http), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> VerifyEmail(
        TokenRequest request, HttpContext http, UserTokens userTokens, UserDirectory users, EventPublisher events, TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (await userTokens.RedeemAsync(AccountMail.VerifyPurpose, request.Token, cancellationToken) is not { } owner)
        {
            return InvalidToken();
        }

        var user = owner.User;

        if (!user.EmailVerified)
        {
            user.EmailVerified = true;
            user.UpdatedAt = time.GetUtcNow();
            await users.UpdateAsync(owner.Tenant, user, cancellationToken);
            await events.PublishAsync(owner.Tenant, new PlatformEvent("user.email_verified", Actor.User(user.Id, Caller.ClientIp(http)), "user", user.Id), cancellationToken);
        }

        return TypedResults.NoContent();
    }

    internal static async Task<Results<Accepted, ProblemHttpResult>> ResendVerification(
        Caller caller, UserDirectory users, TenantDirectory tenants, AccountMail mail, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken);
        var tenant = await tenants.GetAsync(caller.Tenant, cancellationToken);
        if (user is { EmailVerified: false } && tenant is not null)
        {
            await mail.SendVerificationAsync(caller.Tenant, tenant.Name, user, cancellationToken);
        }

        return TypedResults.Accepted((string?)null);
    }

    internal static async Task<Results<Ok<TotpSetup>, ProblemHttpResult>> SetUpTotp(
        Caller caller, UserDirectory users, TenantDirectory tenants, Mfa mfa, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (user.MfaEnabled)
        {
            return Problems.Create(409, "mfa_already_enabled", "MFA already enabled", "Disable TOTP first to set up a new authenticator.");
        }

        var (secret, encrypted) = mfa.NewSecret(caller.Tenant, user.Id);
        user.PendingTotpSecret = encrypted;
        await users.UpdateAsync(caller.Tenant, user, cancellationToken);
        var tenant = await tenants.GetAsync(caller.Tenant, cancellationToken);
        return TypedResults.Ok(new TotpSetup(secret, Mfa.OtpAuthUri(secret, user.Email, tenant?.Name ?? "")));
    }

    internal static async Task<Results<Ok<BackupCodeList>, ProblemHttpResult>> EnableTotp(
        CodeRequest request, Caller caller, HttpContext http, UserDirectory users, Mfa mfa, AccountSecurity security,
        TimeProvider time, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (user.MfaEnabled)
        {
            return Problems.Create(409, "mfa_already_enabled", "MFA already enabled", "TOTP is already on for this account.");
        }

        if (user.PendingTotpSecret is null)
        {
            return Problems.Create(409, "mfa_setup_required", "Set up TOTP first", "Call /api/v1/auth/mfa/totp/setup before enabling.");
        }

        if (await security.RequireRecentSignInAsync(caller, user, request.Password, http, cancellationToken) is { } refused)
        {
            return refused;
        }

        if (mfa.Verify(caller.Tenant, user.Id, user.PendingTotpSecret, request.Code?.Trim(), lastStep: 0) is not { } step)
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
        await users.UpdateAsync(caller.Tenant, user, cancellationToken);
        await security.AfterChangeAsync(caller.Tenant, user, "auth.mfa.enabled", MailKind.MfaEnabled, caller.SessionId, Caller.ClientIp(http), cancellationToken);
        return TypedResults.Ok(new BackupCodeList(codes));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DisableTotp(
        PasswordRequest request, Caller caller, HttpContext http, UserDirectory users, AccountSecurity security,
        TimeProvider time, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (await security.CheckPasswordAsync(caller.Tenant, user, request.Password, http, cancellationToken) is { } refused)
        {
            return refused;
        }

        if (!user.MfaEnabled)
        {
            return TypedResults.NoContent();
        }

        user.MfaEnabled = false;
        user.TotpSecret = null;
        user.PendingTotpSecret = null;
        user.BackupCodeHashes = "[]";
        user.UpdatedAt = time.GetUtcNow();
        await users.UpdateAsync(caller.Tenant, user, cancellationToken);
        await security.AfterChangeAsync(caller.Tenant, user, "auth.mfa.disabled", MailKind.MfaDisabled, caller.SessionId, Caller.ClientIp(http), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Ok<BackupCodeList>, ProblemHttpResult>> RegenerateBackupCodes(
        [Microsoft.AspNetCore.Mvc.FromBody(EmptyBodyBehavior = Microsoft.AspNetCore.Mvc.ModelBinding.EmptyBodyBehavior.Allow)] PasswordRequest? request,
        Caller caller, HttpContext http, UserDirectory users, AccountSecurity security, Mfa mfa, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (!user.MfaEnabled)
        {
            return Problems.Create(409, "mfa_not_enabled", "MFA not enabled", "Backup codes exist only while TOTP is on.");
        }

        if (await security.RequireRecentSignInAsync(caller, user, request?.Password, http, cancellationToken) is { } refused)
        {
            return refused;
        }

        var (codes, hashes) = mfa.NewBackupCodes(caller.Tenant, user.Id);
        user.BackupCodeHashes = hashes;
        await users.UpdateAsync(caller.Tenant, user, cancellationToken);
        await security.AfterChangeAsync(caller.Tenant, user, "auth.mfa.backup_codes_regenerated", null, caller.SessionId, Caller.ClientIp(http), cancellationToken);
        return TypedResults.Ok(new BackupCodeList(codes));
    }

    /// <summary>A TOTP code newer than the last one used, or an unused backup code; updates the user row in memory.</summary>
    private static bool AcceptSecondFactor(TenantId tenant, UserEntity user, string otp, Mfa mfa)
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

    /// <summary>Audits a failed attempt (already counted when it was reserved) and the lockout it started, if any.</summary>
    private static async Task RecordFailureAsync(TenantId tenant, UserEntity? user, string reason, string? ip,
        AttemptReservation attempt, EventPublisher events, CancellationToken cancellationToken)
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

    private static TokenResponse Tokens(AccessTokens tokens, TenantId tenant, string userId, string sessionId, string refreshToken) =>
        new(tokens.Issue(tenant, userId, sessionId), refreshToken, "Bearer", (int)tokens.Lifetime.TotalSeconds, sessionId);


    private static ProblemHttpResult InvalidCredentials() =>
        Problems.Create(401, "invalid_credentials", "Invalid credentials", "The tenant, email or password is wrong.");

    private static ProblemHttpResult InvalidOtp(int status = 401) =>
        Problems.Create(status, "invalid_otp", "Invalid one-time code", "The code is wrong, expired or already used.");

    private static ProblemHttpResult InvalidRefreshToken() =>
        Problems.Create(401, "invalid_refresh_token", "Invalid refresh token", "The refresh token is unknown, expired or revoked. Sign in again.");

    private static ProblemHttpResult InvalidToken() =>
        Problems.Create(400, "invalid_token", "Invalid token", "The link is unknown, expired or already used.");

    internal static ProblemHttpResult InvalidPassword() =>
        Problems.Create(403, "invalid_password", "Wrong password", "The password given does not match this account's.");

    internal static ProblemHttpResult AccountLocked(HttpContext http, TimeSpan lockedFor)
    {
        var seconds = (int)Math.Ceiling(lockedFor.TotalSeconds);
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return Problems.Create(429, "account_locked", "Account locked", $"Too many failed sign-ins. Try again in {seconds} seconds.");
    }
}
