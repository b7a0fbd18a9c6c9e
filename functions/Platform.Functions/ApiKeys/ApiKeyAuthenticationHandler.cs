using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Roles;

namespace Platform.Functions.ApiKeys;

/// <summary>
/// The <c>ApiKey</c> authentication scheme: <c>Authorization: ApiKey &lt;key&gt;</c> or <c>X-Api-Key: &lt;key&gt;</c>
/// (the <c>Credential</c> policy scheme forwards such requests here). A valid key becomes a principal shaped like an
/// access token's - <c>sub</c> (the creator), <c>tid</c>, <c>sid</c> = <c>apikey:{id}</c> - plus <c>scopes</c>, the key's
/// permissions, which <see cref="CallerPermissions"/> intersects with the creator's current ones. Anything else
/// fails authentication (401, problem body from the status-code pages), without saying which check failed.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    ApiKeyStore keys,
    ApiKeyUsage usage,
    SessionGuard guard,
    TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    private const string Invalid = "The API key is missing, malformed, unknown, expired or revoked.";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!TryReadKey(Request, out var text))
        {
            return text is null ? AuthenticateResult.NoResult() : AuthenticateResult.Fail(Invalid);
        }

        if (await keys.AuthenticateAsync(text, Context.RequestAborted) is not { } key)
        {
            return AuthenticateResult.Fail(Invalid);
        }

        var caller = new Caller(key.Tenant, key.CreatedBy, SessionGuard.SessionlessPrefix + key.KeyId);

        // The creator must still stand (not deleted or locked), exactly as for an access token of theirs.
        if (!await guard.IsValidAsync(caller, Context.RequestAborted))
        {
            return AuthenticateResult.Fail(Invalid);
        }

        usage.Record(key.Tenant, key.KeyId, time.GetUtcNow());
        var identity = new ClaimsIdentity(
            [
                new Claim(JwtRegisteredClaimNames.Sub, caller.UserId),
                new Claim(AccessTokens.TenantClaim, caller.Tenant.Value),
                new Claim(AccessTokens.SessionClaim, caller.SessionId),
                new Claim(Caller.ScopesClaim, string.Join(' ', key.Permissions)),
            ],
            Scheme.Name,
            JwtRegisteredClaimNames.Sub,
            roleType: null);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = AuthExtensions.ApiKeyScheme;
        return Task.CompletedTask;
    }

    /// <summary>
    /// The presented key: false with a null text when the request carries none, false with a text when what it
    /// carries cannot be one key (several values, two different keys, far too long).
    /// </summary>
    private static bool TryReadKey(HttpRequest request, out string? text)
    {
        const int MaxLength = 256;
        string? fromAuthorization = null;
        var authorization = request.Headers.Authorization;
        if (authorization.Count > 0)
        {
            var value = authorization.Count == 1 ? authorization[0] ?? "" : "";
            if (value.StartsWith(AuthExtensions.ApiKeyScheme + " ", StringComparison.OrdinalIgnoreCase))
            {
                fromAuthorization = value[(AuthExtensions.ApiKeyScheme.Length + 1)..].Trim();
            }
        }

        string? fromHeader = null;
        if (request.Headers.TryGetValue(AuthExtensions.ApiKeyHeader, out var header))
        {
            fromHeader = header.Count == 1 ? (header[0] ?? "").Trim() : "";
        }

        text = fromAuthorization ?? fromHeader;
        if (text is null)
        {
            return false;
        }

        return text.Length is > 0 and <= MaxLength && (fromAuthorization is null || fromHeader is null || string.Equals(fromAuthorization, fromHeader, StringComparison.Ordinal));
    }
}
