using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace Platform.Functions.Docs;

/// <summary>The OpenAPI document of every public route at <c>/api/openapi/v1.json</c> and an explorer at <c>/api/docs</c>.</summary>
public static class DocsExtensions
{
    public const string DocumentRoute = "/api/openapi/{documentName}.json";

    public static IHostApplicationBuilder AddApiDocs(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenApi("v1", options =>
        {
            ProblemResponses.Configure(options);
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Platform API",
                    Version = "v1",
                    Description = "Multi-tenant backend for accounts, inventory and background work. " +
                        "Errors are RFC 9457 problem details with a machine-readable `code` and a `traceId`; " +
                        "every operation lists the problem responses it can give.",
                };
                return Task.CompletedTask;
            });
        });
        return builder;
    }

    public static WebApplication MapApiDocs(this WebApplication app)
    {
        app.MapOpenApi(DocumentRoute);
        app.MapScalarApiReference("/api/docs", options => options
            .WithTitle("Platform API")
            .WithOpenApiRoutePattern(DocumentRoute));
        return app;
    }
}
