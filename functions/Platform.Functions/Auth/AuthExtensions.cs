using Platform.Functions.Hosting;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Housekeeping;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Auth;

/// <summary>Per-IP limits on the anonymous routes that cost us work or mail (<c>Platform:RateLimits</c>).</summary>
public sealed class RateLimitOptions
{
    public const string Section = "Platform:RateLimits";

    [Range(1, 100_000)]
    public int SignUpsPerHourPerIp { get; set; } = 20;

    [Range(1, 100_000)]
    public int ForgotPasswordPerHourPerIp { get; set; } = 10;

    /// <summary>Generous for people behind one NAT; it bounds how fast one address can make us run Argon2.</summary>
    [Range(1, 1_000_000)]
    public int LoginsPerHourPerIp { get; set; } = 600;
}

public static class AuthExtensions
{
    public const string SignUpRateLimit = "sign-up";
    public const string ForgotPasswordRateLimit = "forgot-password";
    public const string LoginRateLimit = "login";
    public const string CredentialScheme = "Credential";
    public const string ApiKeyScheme = "ApiKey";
    public const string ApiKeyHeader = "X-Api-Key";

    private static string SelectScheme(HttpContext context)
    {
        var authorization = context.Request.Headers.Authorization.ToString();
        if (context.Request.Headers.ContainsKey(ApiKeyHeader) || authorization.StartsWith(ApiKeyScheme + " ", StringComparison.OrdinalIgnoreCase))
        {
            return ApiKeyScheme;
        }

        if (Entra.IsConfigured(context.RequestServices.GetRequiredService<IConfiguration>()) &&
            authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            if (IssuerOf(authorization[7..].Trim()) is { } issuer && issuer != context.RequestServices.GetRequiredService<AccessTokens>().Issuer)
            {
                return Entra.Scheme;
            }
        }

        return JwtBearerDefaults.AuthenticationScheme;
    }

    /// <summary>
    /// The unverified issuer of a JWT, only to pick the scheme that validates it; null for anything that is not one.
    /// CanReadToken checks the shape alone, so a token such as <c>a.b.c</c> passes it and then fails to decode.
    /// </summary>
    private static string? IssuerOf(string token)
    {
        var handler = new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler();
        if (!handler.CanReadToken(token))
        {
            return null;
        }

        try
        {
            return handler.ReadJsonWebToken(token).Issuer;
        }
        catch (ArgumentException)
        {
            // SecurityTokenMalformedException is an ArgumentException: the header or payload is not base64url JSON.
            return null;
        }
    }

    public static IHostApplicationBuilder AddPlatformAuth(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<AuthOptions>(AuthOptions.Section);
        services.AddValidatedOptions<RateLimitOptions>(RateLimitOptions.Section);
        services.AddMemoryCache();
        services.AddPasswords();
        services.AddStorageTable(Sessions.TableName);
        services.AddEventOutbox(Sessions.TableName);
        services.AddStorageTable(Lockouts.TableName);
        services.AddStorageTable(UserTokens.TableName);
        services.AddEventOutbox(UserTokens.TableName);
        services.AddSingleton<KeyMaterial>();
        services.AddHostedService<KeyMaterialCheck>();
        services.AddSingleton<AccessTokens>();
        services.AddSingleton<SessionGuard>();
        services.AddSingleton<Sessions>();
        services.AddSingleton<Lockouts>();
        services.AddSingleton<IRowExpiry, LockoutExpiry>();
        services.AddSingleton<IRowExpiry, SessionExpiry>();
        services.AddSingleton<UserTokens>();
        services.AddSingleton<AccountMail>();
        services.AddSingleton<PasswordResetRequests>();
        services.AddQueueFunction<PasswordResetMailer>("PasswordResets", PasswordResetRequests.QueueName);
        services.AddSingleton<AccountSecurity>();
        services.AddSingleton<AccountCommands>();
        services.AddSingleton<SecretBox>();
        services.AddSingleton<Mfa>();

        // One default scheme that hands each request to the scheme its credential belongs to: an API key
        // (Authorization: ApiKey ... or X-Api-Key), an Entra ID token (a bearer token from another issuer, when
        // Entra is configured), or a Platform access token.
        services.AddAuthentication(CredentialScheme)
            .AddJwtBearer()
            .AddPolicyScheme(CredentialScheme, "Platform credentials", policy => policy.ForwardDefaultSelector = SelectScheme);
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme).Configure<AccessTokens>((bearer, tokens) => tokens.Configure(bearer));
        services.AddAuthorization();

        services.AddRateLimiter(limiter =>
        {
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                var http = context.HttpContext;
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
                http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                http.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = { Status = 429, Title = "Too many requests", Detail = "Slow down and retry after the time in Retry-After.", Extensions = { ["code"] = "rate_limited" } },
                });
            };
            limiter.AddPolicy(SignUpRateLimit, http => PerIpPerHour(http, o => o.SignUpsPerHourPerIp));
            limiter.AddPolicy(ForgotPasswordRateLimit, http => PerIpPerHour(http, o => o.ForgotPasswordPerHourPerIp));
            limiter.AddPolicy(LoginRateLimit, http => PerIpPerHour(http, o => o.LoginsPerHourPerIp));
        });

        // Under the Functions host every request arrives from the host on loopback; the caller's address is in
        // X-Forwarded-For. Only loopback proxies are trusted (the default), so nobody else can claim an address.
        services.Configure<ForwardedHeadersOptions>(o => o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto);
        return builder;
    }

    /// <summary>Sign-in with Microsoft Entra ID tokens, when <c>AzureAd:ClientId</c> is configured; the trust and link rows always.</summary>
    public static IHostApplicationBuilder AddEntra(this IHostApplicationBuilder builder) => Entra.Add(builder);

    /// <summary><c>/api/v1/auth</c>: sign-in, tokens, sessions, password reset, email verification, MFA.</summary>
    public static RouteGroupBuilder MapAuth(this IEndpointRouteBuilder app) => AuthEndpoints.MapRoutes(app);

    /// <summary><c>/api/v1/tenant/entra</c> and <c>/api/v1/users/{id}/entra</c>.</summary>
    public static RouteGroupBuilder MapEntra(this IEndpointRouteBuilder app) => Entra.MapRoutes(app);

    public static WebApplication UsePlatformAuth(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        return app;
    }

    private static RateLimitPartition<string> PerIpPerHour(HttpContext http, Func<RateLimitOptions, int> limit)
    {
        var permits = limit(http.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value);
        return RateLimitPartition.GetFixedWindowLimiter(
            $"{http.Connection.RemoteIpAddress}:{permits}",
            _ => new FixedWindowRateLimiterOptions { PermitLimit = permits, Window = TimeSpan.FromHours(1), QueueLimit = 0 });
    }

    /// <summary>Loads the keys during start, so a missing or malformed key stops the process with its message.</summary>
    private sealed class KeyMaterialCheck(KeyMaterial keys) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.FromResult(keys.KeyId);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
