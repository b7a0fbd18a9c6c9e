using Platform.Functions.Hosting;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;

namespace Platform.Functions.Http;

public static class HttpExtensions
{
    /// <summary>Problem details for every error, JSON conventions of the contract, and request limits.</summary>
    public static IHostApplicationBuilder AddPlatformHttp(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<HttpLimitsOptions>(HttpLimitsOptions.Section);

        services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
            context.ProblemDetails.Status = status;
            context.ProblemDetails.Extensions.TryAdd("code", Problems.DefaultCode(status));
            context.ProblemDetails.Type ??= status == StatusCodes.Status429TooManyRequests
                ? "https://www.rfc-editor.org/rfc/rfc6585#section-4"
                : "about:blank";
            context.ProblemDetails.Title ??= Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status);
            context.ProblemDetails.Detail ??= context.ProblemDetails.Title;
            context.ProblemDetails.Extensions["traceId"] = Problems.TraceId(context.HttpContext);
            context.ProblemDetails.Instance ??= context.HttpContext.Request.Path;
        });
        services.AddExceptionHandler<ExceptionProblems>();
        services.AddSingleton<ContinuationTokens>();

        // Bad requests detected while binding (malformed JSON, wrong content type, missing body) are thrown so
        // that ExceptionProblems can answer with a specific code instead of an empty 400.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
            o.SerializerOptions.Converters.Add(new UtcTimestamps());
            o.SerializerOptions.Converters.Add(new FiniteDoubles());
            o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
            o.SerializerOptions.MaxDepth = 32;
        });
        services.Configure<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>(o =>
        {
            o.AddServerHeader = false;
            o.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            o.Limits.MaxRequestLineSize = 8 * 1024;
        });
        return builder;
    }

    public static WebApplication UsePlatformHttp(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseMiddleware<SecurityHeaders>();
        app.UseRouting();
        app.UseMiddleware<RequestBodyLimit>();
        return app;
    }
}

public sealed class HttpLimitsOptions
{
    public const string Section = "Platform:Http";

    /// <summary>Largest request body a route accepts unless it declares its own limit (imports do).</summary>
    [System.ComponentModel.DataAnnotations.Range(1024, 1024L * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;
}

/// <summary>
/// Enforces the body limit of the matched route (its <see cref="IRequestSizeLimitMetadata"/>, else the default):
/// a declared length over it is refused before any byte is read, and Kestrel stops an undeclared (chunked) body
/// at the same limit while it streams.
/// </summary>
internal sealed class RequestBodyLimit(RequestDelegate next, IOptions<HttpLimitsOptions> options, IProblemDetailsService problems)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var limit = context.GetEndpoint()?.Metadata.GetMetadata<IRequestSizeLimitMetadata>()?.MaxRequestBodySize
            ?? options.Value.MaxRequestBodyBytes;

        if (context.Request.ContentLength > limit)
        {
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            await problems.WriteAsync(new ProblemDetailsContext
            {
                HttpContext = context,
                ProblemDetails =
                {
                    Status = StatusCodes.Status413PayloadTooLarge,
                    Title = "Request body too large",
                    Detail = $"This route accepts at most {limit} bytes.",
                    Extensions = { ["code"] = "payload_too_large", ["limit"] = limit },
                },
            });
            return;
        }

        var feature = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>();
        if (feature is { IsReadOnly: false })
        {
            feature.MaxRequestBodySize = limit;
        }

        await next(context);
    }
}

/// <summary>Maps exceptions to problems: bad input to its 4xx, everything else to a 500 that reveals nothing.</summary>
internal sealed partial class ExceptionProblems(IProblemDetailsService problems, ILogger<ExceptionProblems> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var (status, code, title, detail) = exception switch
        {
            BadHttpRequestException { StatusCode: 413 } => (413, "payload_too_large", "Request body too large", "The request body is larger than this route accepts."),
            BadHttpRequestException { StatusCode: 415 } => (415, "unsupported_media_type", "Unsupported media type", "Send the body as application/json."),
            BadHttpRequestException { InnerException: JsonException json } => (400, "invalid_json", "Malformed JSON", JsonDetail(json)),
            BadHttpRequestException { StatusCode: 400 } bad when bad.Message.Contains("body", StringComparison.OrdinalIgnoreCase) =>
                (400, "invalid_body", "Invalid request body", "The request body is missing or cannot be read."),
            BadHttpRequestException bad => (bad.StatusCode, Problems.DefaultCode(bad.StatusCode), "Bad request", "The request could not be understood."),
            OperationCanceledException when context.RequestAborted.IsCancellationRequested => (499, "client_closed_request", "Client closed request", null),
            // A conditional write lost a race with another request: the caller should read again, not see a 500.
            Azure.RequestFailedException { Status: 412 } => (412, "precondition_failed", "Precondition failed", "The resource changed while this request was handled; read it again and retry."),
            Azure.RequestFailedException { Status: 409 } => (409, "conflict", "Conflict", "The resource changed while this request was handled; retry."),
            Platform.Functions.Identity.Passwords.PasswordHashingBusyException => (503, "busy", "Busy", "Too many sign-ins are being checked right now; retry in a moment."),
            Platform.Functions.Auth.LockoutContendedException => (503, "busy", "Busy", "Too many sign-ins are being checked right now; retry in a moment."),
            _ => (500, "internal_error", "Internal server error", "An unexpected error occurred. Quote the traceId when reporting it."),
        };

        if (status >= 500)
        {
            LogUnhandled(logger, exception, context.Request.Method, context.Request.Path);
        }

        context.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails = { Status = status, Title = title, Detail = detail, Extensions = { ["code"] = code } },
        });
    }

    // Position only: the parser's message can quote the payload, which may hold secrets.
    private static string JsonDetail(JsonException json) =>
        json.LineNumber is { } line ? $"The body is not valid JSON (line {line + 1}, byte {json.BytePositionInLine + 1})." : "The body is not valid JSON.";

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception on {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string method, string path);
}
