namespace Platform.Functions.Http;

/// <summary>
/// Headers every response carries. The API returns only JSON, so its policy forbids everything a browser could
/// do with a response; the interactive docs page (a script-driven explorer) gets a policy that lets it run.
/// </summary>
internal sealed class SecurityHeaders(RequestDelegate next)
{
    private const string ApiPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
    private const string DocsPolicy = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'";

    public Task InvokeAsync(HttpContext context)
    {
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        headers["Cross-Origin-Resource-Policy"] = "same-origin";
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()";
        headers.ContentSecurityPolicy = context.Request.Path.StartsWithSegments("/api/docs") ? DocsPolicy : ApiPolicy;
        if (context.Request.IsHttps)
        {
            headers.StrictTransportSecurity = "max-age=31536000; includeSubDomains";
        }

        if (context.Request.Path.StartsWithSegments("/api/v1"))
        {
            headers.CacheControl = "no-store";
        }

        return next(context);
    }
}
