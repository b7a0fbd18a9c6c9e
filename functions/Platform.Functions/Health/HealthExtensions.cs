using Platform.Functions.Storage;

namespace Platform.Functions.Health;

public static class HealthExtensions
{
    /// <summary>Readiness checks of each storage service the app needs (liveness needs none).</summary>
    public static IHostApplicationBuilder AddHealth(this IHostApplicationBuilder builder)
    {
        builder.Services.AddHealthChecks()
            .AddCheck<HealthEndpoints.StorageReady>("storage", tags: [HealthEndpoints.ReadyTag], timeout: HealthEndpoints.CheckTimeout)
            .AddCheck<HealthEndpoints.TableStorageCheck>("tables", tags: [HealthEndpoints.ReadyTag], timeout: HealthEndpoints.CheckTimeout)
            .AddCheck<HealthEndpoints.BlobStorageCheck>("blobs", tags: [HealthEndpoints.ReadyTag], timeout: HealthEndpoints.CheckTimeout)
            .AddCheck<HealthEndpoints.QueueStorageCheck>("queues", tags: [HealthEndpoints.ReadyTag], timeout: HealthEndpoints.CheckTimeout);
        return builder;
    }

    /// <summary><c>/api/health/live</c> and <c>/api/health/ready</c>.</summary>
    public static RouteGroupBuilder MapHealth(this IEndpointRouteBuilder app) => HealthEndpoints.MapRoutes(app);
}
