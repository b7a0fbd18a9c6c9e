using System.Globalization;
using System.Security.Claims;
using Azure;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Mail;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>Sign-in, tokens, sessions, password reset, email verification and TOTP: <c>/api/v1/auth/...</c>.</summary>
public static partial class AuthEndpoints
{
    /// <summary>Longer passwords are refused before hashing, so a megabyte "password" costs nothing.</summary>
    public const int MaxPasswordInputLength = 1024;

    public static RouteGroupBuilder MapAuth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/.well-known/jwks.json", (KeyMaterial keys) => TypedResults.Ok(new { keys = new[] { keys.PublicJwk } }))
            .AllowAnonymous().WithTags("Auth").WithName("GetJwks").WithSummary("The public keys that sign access tokens.");

        var group = app.MapGroup("/api/v1/auth").WithTags("Auth");
        group.MapPost("/login", Login).AllowAnonymous().RequireRateLimiting(AuthExtensions.LoginRateLimit).WithName("Login");
        group.MapPost("/refresh", Refresh).AllowAnonymous().WithName("RefreshTokens");
        group.MapPost("/logout", Logout).RequireAuthorization().WithName("Logout");
        group.MapGet("/sessions", ListSessions).RequireAuthorization().WithName("ListSessions");
        group.MapDelete("/sessions/{id}", RevokeSession).RequireAuthorization().WithName("RevokeSession");
        group.MapPost("/forgot-password", ForgotPassword).AllowAnonymous().RequireRateLimiting(AuthExtensions.ForgotPasswordRateLimit).WithName("ForgotPassword");
        group.MapPost("/reset-password", ResetPassword).AllowAnonymous().WithName("ResetPassword");
        group.MapPost("/verify-email", VerifyEmail).AllowAnonymous().WithName("VerifyEmail");
        group.MapPost("/verify-email/resend", ResendVerification).RequireAuthorization().WithName("ResendEmailVerification");
        group.MapPost("/mfa/totp/setup", SetUpTotp).RequireAuthorization().WithName("SetUpTotp");
        group.MapPost("/mfa/totp/enable", EnableTotp).RequireAuthorization().WithName("EnableTotp");
        group.MapPost("/mfa/totp/disable", DisableTotp).RequireAuthorization().WithName("DisableTotp");
        group.MapPost("/mfa/backup-codes/regenerate", RegenerateBackupCodes).RequireAuthorization().WithName("RegenerateBackupCodes");
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
        var ip = ClientIp(http);
        var tenant = await tenants.FindBySlugAsync(request.Tenant?.Trim(), cancellationToken);
        var email = UserDirectory.NormalizeEmail(request.Email);
        var password = request.Password ?? "";
        if (tenant is null || email is null || password.Length > MaxPasswordInputLength)
        {
            // Same work and the same answer as a wrong password: nothing tells which part was wrong.
            hasher.Verify(password.Length > MaxPasswordInputLength ? "" : password, null);
            return InvalidCredentials();
        }

        var tenantId = new TenantId(tenant.Id);
        if (await lockouts.LockedForAsync(tenantId, email, cancellationToken) is { } lockedFor)
        {
            return AccountLocked(http, lockedFor);
        }

        var user = await users.FindByEmailAsync(tenantId, email, cancellationToken);
        var check = hasher.Verify(password, user?.PasswordHash);
        if (user is null || !user.IsActive || check == PasswordCheck.Mismatch)
        {
            await RecordFailureAsync(tenantId, email, user, "invalid_credentials", ip, lockouts, events, cancellationToken);
            return InvalidCredentials();
        }

        if (user.MfaEnabled)
        {
            if (string.IsNullOrWhiteSpace(request.Otp))
            {
                return Problems.Create(401, "mfa_required", "MFA required", "This account needs a one-time code: send it as otp.");
            }

            if (!AcceptSecondFactor(tenantId, user, request.Otp.Trim(), mfa))
            {
                await RecordFailureAsync(tenantId, email, user, "invalid_otp", ip, lockouts, events, cancellationToken);
                return InvalidOtp();
            }
        }

        // Checked again after the (slow) verification: guesses sent in parallel all passed the first check, and the
        // failures they recorded meanwhile must still stop a right guess among them.
        if (await lockouts.LockedForAsync(tenantId, email, cancellationToken) is { } lockedNow)
        {
            return AccountLocked(http, lockedNow);
        }

        if (check == PasswordCheck.MatchNeedsRehash)
        {
            user.PasswordHash = hasher.Hash(password);
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
                await events.PublishAsync(presented.Tenant, new PlatformEvent("auth.refresh_token.reused", Actor.Anonymous(ClientIp(http)), "session", session.Id,
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
        ClaimsPrincipal principal, HttpContext http, Sessions sessions, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        if (await sessions.GetAsync(caller.Tenant, caller.UserId, caller.SessionId, cancellationToken) is { } session)
        {
            await sessions.RevokeAsync(caller.Tenant, session, cancellationToken);
        }

        await events.PublishAsync(caller.Tenant, new PlatformEvent("auth.logout", Actor.User(caller.UserId, ClientIp(http)), "session", caller.SessionId), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Ok<PagedList<SessionView>>> ListSessions(ClaimsPrincipal principal, Sessions sessions, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var items = (await sessions.ListAsync(caller.Tenant, caller.UserId, cancellationToken))
            .OrderByDescending(s => s.LastSeenAt)
            .Select(s => new SessionView(s.Id, s.CreatedAt, s.LastSeenAt, s.UserAgent, s.Ip, s.Id == caller.SessionId))
            .ToList();
        return TypedResults.Ok(new PagedList<SessionView>(items, null));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RevokeSession(
        string id, ClaimsPrincipal principal, HttpContext http, Sessions sessions, EventPublisher events, TimeProvider time, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var session = id.Length <= 64 && id.All(char.IsAsciiLetterOrDigit)
            ? await sessions.GetAsync(caller.Tenant, caller.UserId, id, cancellationToken)
            : null;
        if (session is null || session.RevokedAt is not null)
        {
            return Problems.NotFound("No session of yours has this id.");
        }

        await sessions.RevokeAsync(caller.Tenant, session, cancellationToken);
        await events.PublishAsync(caller.Tenant, new PlatformEvent("auth.session.revoked", Actor.User(caller.UserId, ClientIp(http)), "session", id), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Accepted> ForgotPassword(
        ForgotPasswordRequest request, HttpContext http, PasswordResetRequests resets, CancellationToken cancellationToken)
    {
        await resets.EnqueueAsync(request.Tenant, request.Email, ClientIp(http), cancellationToken);
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

        await security.SetPasswordAsync(owner.Tenant, owner.User, request.NewPassword!, "auth.password.reset", keepSessionId: null, ClientIp(http), cancellationToken);
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
            await events.PublishAsync(owner.Tenant, new PlatformEvent("user.email_verified", Actor.User(user.Id, ClientIp(http)), "user", user.Id), cancellationToken);
        }

        return TypedResults.NoContent();
    }

    internal static async Task<Results<Accepted, ProblemHttpResult>> ResendVerification(
        ClaimsPrincipal principal, UserDirectory users, TenantDirectory tenants, AccountMail mail, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var user = await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken);
        var tenant = await tenants.GetAsync(caller.Tenant, cancellationToken);
        if (user is { EmailVerified: false } && tenant is not null)
        {
            await mail.SendVerificationAsync(caller.Tenant, tenant.Name, user, cancellationToken);
        }

        return TypedResults.Accepted((string?)null);
    }

    internal static async Task<Results<Ok<TotpSetup>, ProblemHttpResult>> SetUpTotp(
        ClaimsPrincipal principal, UserDirectory users, TenantDirectory tenants, Mfa mfa, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
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
        CodeRequest request, ClaimsPrincipal principal, HttpContext http, UserDirectory users, Mfa mfa, AccountSecurity security,
        TimeProvider time, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
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
        await security.AfterChangeAsync(caller.Tenant, user, "auth.mfa.enabled", MailKind.MfaEnabled, caller.SessionId, ClientIp(http), cancellationToken);
        return TypedResults.Ok(new BackupCodeList(codes));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DisableTotp(
        PasswordRequest request, ClaimsPrincipal principal, HttpContext http, UserDirectory users, AccountSecurity security,
        TimeProvider time, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
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
        await security.AfterChangeAsync(caller.Tenant, user, "auth.mfa.disabled", MailKind.MfaDisabled, caller.SessionId, ClientIp(http), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Ok<BackupCodeList>, ProblemHttpResult>> RegenerateBackupCodes(
        [Microsoft.AspNetCore.Mvc.FromBody(EmptyBodyBehavior = Microsoft.AspNetCore.Mvc.ModelBinding.EmptyBodyBehavior.Allow)] PasswordRequest? request,
        ClaimsPrincipal principal, HttpContext http, UserDirectory users, AccountSecurity security, Mfa mfa, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
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
        await security.AfterChangeAsync(caller.Tenant, user, "auth.mfa.backup_codes_regenerated", null, caller.SessionId, ClientIp(http), cancellationToken);
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

    private static async Task RecordFailureAsync(TenantId tenant, string email, UserEntity? user, string reason, string? ip,
        Lockouts lockouts, EventPublisher events, CancellationToken cancellationToken)
    {
        var lockout = await lockouts.RecordFailureAsync(tenant, email, cancellationToken);
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

    internal static string? ClientIp(HttpContext http) => http.Connection.RemoteIpAddress?.ToString();

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
