using System.Diagnostics;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.IdentityModel.JsonWebTokens;
using Platform.Functions.Auth;
using Platform.Functions.Storage;

namespace Platform.Functions.Usage;

/// <summary>
/// Meters every request under <c>/api/v1</c> that a tenant's caller made: tenant, caller (API key or user), endpoint
/// template, status class and latency, recorded in memory by <see cref="UsageMeter"/>. It is the outermost middleware
/// (an <see cref="IStartupFilter"/> puts it first), so the latency covers the whole pipeline and the status is the one
/// sent, after the exception handler and status-code pages. Requests without a tenant (anonymous, failed
/// authentication, sign-up and sign-in) are not metered at all: they belong to nobody's usage.
/// </summary>
internal sealed class UsageMetering(RequestDelegate next, UsageMeter meter, TimeProvider time)
{
    private static readonly PathString Api = "/api/v1";

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments(Api, StringComparison.OrdinalIgnoreCase))
        {
            await next(context);
            return;
        }

        var started = Stopwatch.GetTimestamp();
        var failed = true;
        try
        {
            await next(context);
            failed = false;
        }
        finally
        {
            Record(context, started, failed ? StatusCodes.Status500InternalServerError : context.Response.StatusCode);
        }
    }

    private void Record(HttpContext context, long started, int status)
    {
        var user = context.User;
        if (user.FindFirst(AccessTokens.TenantClaim)?.Value is not { } tid || !TenantId.TryParse(tid, out var tenant) ||
            user.FindFirst(AccessTokens.SessionClaim)?.Value is not { Length: > 0 } session)
        {
            return;
        }

        var isApiKey = session.StartsWith(SessionGuard.SessionlessPrefix, StringComparison.Ordinal);
        var callerId = isApiKey ? session[SessionGuard.SessionlessPrefix.Length..] : user.FindFirst(JwtRegisteredClaimNames.Sub)?.Value;
        if (string.IsNullOrEmpty(callerId))
        {
            return;
        }

        // The exception handler clears the endpoint before it writes its 500; the feature keeps the one that failed.
        var endpoint = context.GetEndpoint() ?? context.Features.Get<IExceptionHandlerFeature>()?.Endpoint;
        var microseconds = (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
        // Only a matched route names the method: an unmatched request's method is whatever the caller sent.
        var method = endpoint is RouteEndpoint ? context.Request.Method : "";
        var key = new UsageKey(tenant, UsageFlusher.MinuteOf(time.GetUtcNow()), isApiKey, callerId, endpoint, method);
        meter.Record(key, status, microseconds);
    }
}

/// <summary>Puts <see cref="UsageMetering"/> in front of the whole pipeline, when metering is on.</summary>
internal sealed class UsageMeteringStartup : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMiddleware<UsageMetering>();
        next(app);
    };
}
