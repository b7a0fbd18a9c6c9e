using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Http;
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
        LoginRequest request, HttpContext http, AccountCommands commands, CancellationToken cancellationToken) =>
        (await commands.SignInAsync(request.Tenant, request.Email, request.Password, request.Otp, Caller.ClientIp(http), http.Request.Headers.UserAgent.ToString(), cancellationToken))
            .ToResult(http, response => TypedResults.Ok(response));

    internal static async Task<Results<Ok<TokenResponse>, ProblemHttpResult>> Refresh(
        RefreshRequest request, HttpContext http, Sessions sessions, UserDirectory users, AccessTokens tokens, CancellationToken cancellationToken)
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
        // A reuse revokes the session and commits its auth.refresh_token.reused event with that write.
        var result = await sessions.RefreshAsync(request.RefreshToken, user, presented.Tenant, session, presented.Hash, Caller.ClientIp(http), cancellationToken);
        switch (result.Outcome)
        {
            case RefreshOutcome.Reused:
                return Problems.Create(401, "refresh_token_reused", "Refresh token reused",
                    "This refresh token was already used; the session has been revoked. Sign in again.");
            case RefreshOutcome.Refreshed:
                return TypedResults.Ok(Tokens(tokens, presented.Tenant, presented.UserId, session.Id, result.RefreshToken!));
            default:
                return InvalidRefreshToken();
        }
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Logout(
        Caller caller, AccountCommands commands, CancellationToken cancellationToken) =>
        (await commands.SignOutAsync(caller, cancellationToken)).ToResult(_ => TypedResults.NoContent());

    internal static async Task<Ok<PagedList<SessionView>>> ListSessions(Caller caller, Sessions sessions, CancellationToken cancellationToken)
    {
        var items = (await sessions.ListAsync(caller.Tenant, caller.UserId, cancellationToken))
            .OrderByDescending(s => s.LastSeenAt)
            .Select(s => new SessionView(s.Id, s.CreatedAt, s.LastSeenAt, s.UserAgent, s.Ip, s.Id == caller.SessionId))
            .ToList();
        return TypedResults.Ok(new PagedList<SessionView>(items, null));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RevokeSession(
        string id, Caller caller, AccountCommands commands, CancellationToken cancellationToken) =>
        (await commands.RevokeSessionAsync(caller, id, cancellationToken)).ToResult(_ => TypedResults.NoContent());

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
        TokenRequest request, HttpContext http, AccountCommands commands, CancellationToken cancellationToken) =>
        (await commands.VerifyEmailAsync(request.Token, Caller.ClientIp(http), cancellationToken)).ToResult(_ => TypedResults.NoContent());

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
        Caller caller, AccountCommands commands, CancellationToken cancellationToken) =>
        (await commands.SetUpTotpAsync(caller, cancellationToken)).ToResult(setup => TypedResults.Ok(setup));

    internal static async Task<Results<Ok<BackupCodeList>, ProblemHttpResult>> EnableTotp(
        CodeRequest request, Caller caller, HttpContext http, AccountCommands commands, CancellationToken cancellationToken) =>
        (await commands.EnableTotpAsync(caller, request.Code, request.Password, cancellationToken)).ToResult(http, codes => TypedResults.Ok(codes));

    internal static async Task<Results<NoContent, ProblemHttpResult>> DisableTotp(
        PasswordRequest request, Caller caller, HttpContext http, AccountCommands commands, CancellationToken cancellationToken) =>
        (await commands.DisableTotpAsync(caller, request.Password, cancellationToken)).ToResult(http, _ => TypedResults.NoContent());

    internal static async Task<Results<Ok<BackupCodeList>, ProblemHttpResult>> RegenerateBackupCodes(
        [Microsoft.AspNetCore.Mvc.FromBody(EmptyBodyBehavior = Microsoft.AspNetCore.Mvc.ModelBinding.EmptyBodyBehavior.Allow)] PasswordRequest? request,
        Caller caller, HttpContext http, AccountCommands commands, CancellationToken cancellationToken) =>
        (await commands.RegenerateBackupCodesAsync(caller, request?.Password, cancellationToken)).ToResult(http, codes => TypedResults.Ok(codes));

    internal static TokenResponse Tokens(AccessTokens tokens, TenantId tenant, string userId, string sessionId, string refreshToken) =>
        new(tokens.Issue(tenant, userId, sessionId), refreshToken, "Bearer", (int)tokens.Lifetime.TotalSeconds, sessionId);

    private static ProblemHttpResult InvalidRefreshToken() =>
        Problems.Create(401, "invalid_refresh_token", "Invalid refresh token", "The refresh token is unknown, expired or revoked. Sign in again.");

    private static ProblemHttpResult InvalidToken() => AccountCommands.InvalidToken.ToProblem();
}
