using Platform.Functions.Hosting;
using Platform.Functions.Triggers;

namespace Platform.Functions.Audit;

public static class AuditExtensions
{
    public static IHostApplicationBuilder AddAudit(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<AuditOptions>(AuditOptions.Section);
        builder.Services.AddTimerFunction<AuditRetention>("AuditRetention", "0 30 3 * * *");
        return builder;
    }

    /// <summary><c>/api/v1/audit</c>.</summary>
    public static RouteGroupBuilder MapAudit(this IEndpointRouteBuilder app) => AuditEndpoints.MapRoutes(app);
}
