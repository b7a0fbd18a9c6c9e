using System.Security.Claims;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Hosting;
using Platform.Functions.Storage;

namespace Platform.Functions.Auth;

/// <summary>
/// Short-lived JWT access tokens (ES256, <c>typ: at+jwt</c>) carrying the user (<c>sub</c>), tenant (<c>tid</c>) and
/// session (<c>sid</c>). Validation pins the algorithm and type, checks issuer, audience and lifetime with 30 s of
/// clock skew, and then asks <see cref="SessionGuard"/> whether the session and user still stand.
/// </summary>
public sealed class AccessTokens(KeyMaterial keys, IOptions<AuthOptions> options, IOptions<PlatformOptions> platform, TimeProvider time)
{
    public const string TokenType = "at+jwt";
    public const string TenantClaim = "tid";
    public const string SessionClaim = "sid";
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    public string Issuer => options.Value.Issuer ?? platform.Value.PublicBaseUrl.ToString().TrimEnd('/');

    public TimeSpan Lifetime => options.Value.AccessTokenLifetime;

    public string Issue(TenantId tenant, string userId, string sessionId)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = options.Value.Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + Lifetime,
            TokenType = TokenType,
            SigningCredentials = new SigningCredentials(keys.SigningKey, SecurityAlgorithms.EcdsaSha256),
            Claims = new Dictionary<string, object>
            {
                [JwtRegisteredClaimNames.Sub] = userId,
                [TenantClaim] = tenant.Value,
                [SessionClaim] = sessionId,
                [JwtRegisteredClaimNames.Jti] = Ids.New(time),
            },
        });
    }

    internal void Configure(JwtBearerOptions bearer)
    {
        bearer.MapInboundClaims = false;
        bearer.RequireHttpsMetadata = false;
        bearer.TimeProvider = time;
        bearer.TokenValidationParameters = new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = options.Value.Audience,
            IssuerSigningKey = keys.SigningKey,
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            ValidTypes = [TokenType],
            ClockSkew = TimeSpan.FromSeconds(30),
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            NameClaimType = JwtRegisteredClaimNames.Sub,

            // Judged by the app's clock (TimeProvider) rather than the library's, so it is the same clock that issued it.
            LifetimeValidator = (notBefore, expires, _, parameters) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return expires is { } exp && now <= exp + parameters.ClockSkew && (notBefore is not { } nbf || nbf <= now + parameters.ClockSkew);
            },
        };
        bearer.Events = new JwtBearerEvents
        {
            OnTokenValidated = async context =>
            {
                var guard = context.HttpContext.RequestServices.GetRequiredService<SessionGuard>();
                if (Caller.From(context.Principal) is not { } caller ||
                    !await guard.IsValidAsync(caller, context.HttpContext.RequestAborted))
                {
                    context.Fail("The session has ended.");
                }
            },
        };
    }
}
