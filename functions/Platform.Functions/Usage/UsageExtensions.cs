using Platform.Functions.Hosting;
using Platform.Functions.Reports;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Usage;

public static class UsageExtensions
{
    /// <summary>Usage metering (middleware, in-memory meter, flusher, hourly rollup), <c>GET /api/v1/usage</c> and the <c>usage</c> report type.</summary>
    public static IHostApplicationBuilder AddUsage(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<UsageOptions>(UsageOptions.Section);
        services.AddStorageTable(UsageStore.TableName);
        services.AddTenantData(UsageStore.TableName, history: true);
        services.AddSingleton<UsageStore>();
        services.AddSingleton<UsageMeter>();
        services.AddSingleton<UsageFlusher>();
        services.AddHostedService(sp => sp.GetRequiredService<UsageFlusher>());
        services.AddTimerFunction<UsageRollup>(UsageRollup.FunctionName, UsageRollup.Schedule);
        services.AddOptions<ReportTypeCatalog>();
        services.AddReportType<UsageReport>(UsageReport.Type);

        // Read from the configuration here, not from options: the pipeline is built before options are resolved.
        if (builder.Configuration.GetValue($"{UsageOptions.Section}:{nameof(UsageOptions.Enabled)}", true))
        {
            services.AddSingleton<IStartupFilter, UsageMeteringStartup>();
        }

        return builder;
    }

    /// <summary><c>/api/v1/usage</c>.</summary>
    public static RouteGroupBuilder MapUsage(this IEndpointRouteBuilder app) => UsageEndpoints.MapRoutes(app);
}
