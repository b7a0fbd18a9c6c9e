using Platform.Functions.Hosting;
using System.Globalization;
using System.Security.Claims;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Triggers;
using Platform.Functions.Users;

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
