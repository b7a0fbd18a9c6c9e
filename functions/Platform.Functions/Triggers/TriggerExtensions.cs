using Platform.Functions.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Triggers;

public static class TriggerExtensions
{
    public const string StateContainer = "triggers";

    /// <summary>
    /// The function catalog, the invoker both trigger paths share, and - unless the Functions host owns the
    /// triggers - the standalone timer and queue runtime.
    /// </summary>
    public static IHostApplicationBuilder AddPlatformTriggers(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<TriggerOptions>(TriggerOptions.Section)
            .PostConfigure<IConfiguration>((o, configuration) => o.Standalone ??= string.IsNullOrEmpty(configuration[FunctionsHost.PortVariable]));
        services.AddSingleton<FunctionCatalog>();
        services.AddSingleton<FunctionInvoker>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddStorageContainer(StateContainer);
        // The host must wait for the drain, or in-flight messages would stay hidden for their whole lease.
        services.AddOptions<HostOptions>().Configure<IOptions<TriggerOptions>>((host, triggers) =>
            host.ShutdownTimeout = TimeSpan.FromTicks(Math.Max(host.ShutdownTimeout.Ticks, (triggers.Value.DrainTimeout + TimeSpan.FromSeconds(10)).Ticks)));
        services.AddHostedService<TimerRuntime>();
        services.AddHostedService<QueueRuntime>();

        return builder;
    }

    /// <summary><c>POST /{FunctionName}</c> for each declared timer and queue function (the Functions host's calls).</summary>
    public static RouteGroupBuilder MapFunctionInvocations(this IEndpointRouteBuilder app) => InvocationEndpoints.MapRoutes(app);
}
