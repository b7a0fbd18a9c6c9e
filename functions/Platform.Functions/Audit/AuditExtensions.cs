using Platform.Functions.Hosting;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Roles;
using Platform.Functions.Triggers;

namespace Platform.Functions.Audit;

public static class AuditExtensions
{
    public static IHostApplicationBuilder AddAudit(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<AuditOptions>(AuditOptions.Section);
        builder.Services.AddTimerFunction<AuditRetention>("AuditRetention", "0 30 3 * * *");
        builder.Services.AddExportKind<AuditExport>(AuditExport.Kind, Permissions.AuditRead);
        return builder;
    }

    /// <summary><c>/api/v1/audit</c>.</summary>
    public static RouteGroupBuilder MapAudit(this IEndpointRouteBuilder app) => AuditEndpoints.MapRoutes(app);
}
