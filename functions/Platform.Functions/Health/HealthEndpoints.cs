using System.Text.Json;
using Azure;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Platform.Functions.Storage;

namespace Platform.Functions.Health;

/// <summary>
/// <c>/api/health/live</c>: the process runs. <c>/api/health/ready</c>: Table, Blob and Queue storage answer and
/// the app's tables, containers and queues exist; 503 with the failing check otherwise. Each check is bounded
/// by a timeout so the probe answers in seconds even when storage hangs.
/// </summary>
public static class HealthEndpoints
{
    internal const string ReadyTag = "ready";
    internal static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(3);


    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/health").WithTags("Health");
        group.MapGet("/live", () => TypedResults.Ok(new LiveStatus("healthy")))
            .WithName("GetLiveness").WithSummary("The process is running.");
        group.MapHealthChecks("/ready", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = WriteReadiness,
        });
        return group;
    }

    public sealed record LiveStatus(string Status);

    private static Task WriteReadiness(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        var body = new
        {
            status = report.Status == HealthStatus.Healthy ? "healthy" : "unhealthy",
            durationMs = Math.Round(report.TotalDuration.TotalMilliseconds, 1),
            checks = report.Entries.ToDictionary(
                e => e.Key,
                e => new
                {
                    status = e.Value.Status == HealthStatus.Healthy ? "healthy" : "unhealthy",
                    durationMs = Math.Round(e.Value.Duration.TotalMilliseconds, 1),
                    detail = e.Value.Description,
                }),
        };
        return JsonSerializer.SerializeAsync(context.Response.Body, body, JsonOptions, context.RequestAborted);
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    /// <summary>Turns a storage failure into an unhealthy result whose detail names the cause but no secrets.</summary>
    private static async Task<HealthCheckResult> Probe(string what, Func<CancellationToken, Task> probe, CancellationToken cancellationToken)
    {
        try
        {
            await probe(cancellationToken);
            return HealthCheckResult.Healthy($"{what} answered.");
        }
        catch (OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy($"{what} did not answer within {CheckTimeout.TotalSeconds:0} s.");
        }
        catch (RequestFailedException ex)
        {
            return HealthCheckResult.Unhealthy($"{what} answered {ex.Status} {ex.ErrorCode}.");
        }
        catch (Exception ex) when (ex is AggregateException or HttpRequestException or IOException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy($"{what} is unreachable: {ex.GetBaseException().Message}");
        }
    }

    internal sealed class StorageReady(StorageInitializer initializer) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(initializer.IsComplete
                ? HealthCheckResult.Healthy("Every table, container and queue exists.")
                : HealthCheckResult.Unhealthy("Tables, containers and queues are not created yet; retrying until storage answers."));
    }

    internal sealed class TableStorageCheck(StorageAccount storage) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Probe("Table storage", async ct =>
            {
                await foreach (var _ in storage.TableService.QueryAsync(maxPerPage: 1, cancellationToken: ct).AsPages(pageSizeHint: 1))
                {
                    break;
                }
            }, cancellationToken);
    }

    internal sealed class BlobStorageCheck(StorageAccount storage) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Probe("Blob storage", async ct =>
            {
                await foreach (var _ in storage.BlobService.GetBlobContainersAsync(cancellationToken: ct).AsPages(pageSizeHint: 1))
                {
                    break;
                }
            }, cancellationToken);
    }

    internal sealed class QueueStorageCheck(StorageAccount storage) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Probe("Queue storage", async ct =>
            {
                await foreach (var _ in storage.QueueService.GetQueuesAsync(cancellationToken: ct).AsPages(pageSizeHint: 1))
                {
                    break;
                }
            }, cancellationToken);
    }
}
