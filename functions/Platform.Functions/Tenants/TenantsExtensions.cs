using Platform.Functions.Storage;

namespace Platform.Functions.Tenants;

public static class TenantsExtensions
{
    public static IHostApplicationBuilder AddTenants(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(TenantDirectory.TableName);
        builder.Services.AddSingleton<TenantDirectory>();
        builder.Services.AddSingleton<TenantSignUp>();
        builder.Services.AddSingleton<DemoData>();
        builder.Services.AddHostedService<DemoTenant>();
        return builder;
    }

    /// <summary><c>/api/v1/tenants</c>: sign-up.</summary>
    public static RouteGroupBuilder MapTenants(this IEndpointRouteBuilder app) => TenantsEndpoints.MapRoutes(app);
}
