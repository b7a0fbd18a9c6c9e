using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;
using Platform.Functions.Events;
using Platform.Functions.Storage;

namespace Platform.Functions.Auth;

/// <summary>How a caller proved who they are.</summary>
public enum CallerKind
{
    /// <summary>A person with a session: a Platform access token or an Entra ID token.</summary>
    User,

    /// <summary>An API key acting for the user who created it, narrowed to the key's scopes.</summary>
    ApiKey,
}

/// <summary>
/// The authenticated caller of a request: its tenant, the user it acts for, the session (or <c>apikey:{id}</c>), an
/// API key's scopes and the client address. Handlers take it as a parameter (bound from the authenticated principal
/// by <see cref="BindAsync"/>), so no handler reads claims, and every event names the real actor.
/// </summary>
public sealed record Caller(TenantId Tenant, string UserId, string SessionId)
{
    /// <summary>The scopes an API key was issued with; null for a user's session (all of the user's permissions).</summary>
    public IReadOnlySet<string>? Scopes { get; init; }

    /// <summary>The client address the request came from (for audit), when known.</summary>
    public string? Ip { get; init; }

    public CallerKind Kind => SessionId.StartsWith(SessionGuard.SessionlessPrefix, StringComparison.Ordinal) ? CallerKind.ApiKey : CallerKind.User;

    /// <summary>The API key's id when the caller is a key, else null.</summary>
    public string? ApiKeyId => Kind == CallerKind.ApiKey ? SessionId[SessionGuard.SessionlessPrefix.Length..] : null;

    /// <summary>Who the audit trail and webhooks name as having done what this caller does.</summary>
    public Actor Actor => ApiKeyId is { } keyId
        ? keyId.StartsWith(ReceiverKeyPrefix, StringComparison.Ordinal)
            ? new Actor("receiver", keyId[ReceiverKeyPrefix.Length..], Ip) { OnBehalfOf = UserId }
            : keyId.StartsWith(ScheduleKeyPrefix, StringComparison.Ordinal)
                ? new Actor("schedule", keyId[ScheduleKeyPrefix.Length..], Ip) { OnBehalfOf = UserId }
                : new Actor("apikey", keyId, Ip) { OnBehalfOf = UserId }
        : Actor.User(UserId, Ip);

    /// <summary>
    /// A webhook receiver acts like an API key of its creator (session <c>apikey:receiver:{id}</c>, narrowed to the
    /// receiver's scopes) but is named as itself in the audit trail. Key ids are alphanumeric, so none starts so.
    /// </summary>
    public const string ReceiverKeyPrefix = "receiver:";

    /// <summary>
    /// A schedule's runs act the same way (session <c>apikey:schedule:{id}</c>): as the user who set its target, with no
    /// session, so the user's standing and permissions are checked afresh at every run; named as the schedule.
    /// </summary>
    public const string ScheduleKeyPrefix = "schedule:";

    /// <summary>The caller a principal names, or null when it names no complete one (anonymous, malformed claims).</summary>
    public static Caller? From(ClaimsPrincipal? principal, string? ip = null) =>
        principal?.FindFirst(AccessTokens.TenantClaim)?.Value is { } tid && TenantId.TryParse(tid, out var tenant) &&
        principal.FindFirst(JwtRegisteredClaimNames.Sub)?.Value is { Length: > 0 } user &&
        principal.FindFirst(AccessTokens.SessionClaim)?.Value is { Length: > 0 } session
            ? new Caller(tenant, user, session)
            {
                Ip = ip,
                Scopes = principal.FindFirst(ScopesClaim)?.Value is { } scopes
                    ? scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal)
                    : null,
            }
            : null;

    /// <summary>Claim carrying an API key's scopes, space-separated.</summary>
    public const string ScopesClaim = "scopes";

    /// <summary>
    /// Binds the handler parameter. Routes that take a <see cref="Caller"/> require authentication, so a missing one is
    /// a route declared without it: answered 401 rather than run anonymously.
    /// </summary>
    public static ValueTask<Caller?> BindAsync(HttpContext http) =>
        ValueTask.FromResult<Caller?>(From(http.User, ClientIp(http)) ?? throw new BadHttpRequestException("This route needs a signed-in caller.", StatusCodes.Status401Unauthorized));

    public static string? ClientIp(HttpContext http) => http.Connection.RemoteIpAddress?.ToString();
}
