using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Hosting;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Webhooks.Receivers;

public static class ReceiversExtensions
{
    /// <summary>Incoming webhook receivers: their tables, payload container, queue function and the hook's rate limit.</summary>
    public static IHostApplicationBuilder AddWebhookReceivers(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<ReceiverOptions>(ReceiverOptions.Section);
        services.AddOutboundHttp();
        services.AddStorageTable(ReceiverStore.TableName);
        services.AddEventOutbox(ReceiverStore.TableName);
        services.AddTenantData(ReceiverStore.TableName, sandbox: (row, _) =>
        {
            if (row.RowKey.StartsWith(ReceiverEntity.KeyPrefix, StringComparison.Ordinal))
            {
                row[nameof(ReceiverEntity.SandboxCopy)] = true;
            }
        });
        services.AddStorageTable(ReceiverStore.IndexTableName);
        services.AddStorageContainer(ReceiverStore.PayloadContainer);
        services.AddSingleton<ReceiverStore>();
        services.AddSingleton<IEventSubscriber, ReceiverRestoreIndexer>();
        services.AddSingleton<IRowExpiry, MessageExpiry>();
        services.AddQueueFunction<ReceiptProcessor>(ReceiptProcessor.FunctionName, ReceiverStore.QueueName);
        services.AddQueueFunction<ReceiverCleanup>(ReceiverCleanup.FunctionName, ReceiverCleanup.QueueName);

        // Per receiver, all senders together: the URL is public, so this bounds what one leaked URL or a runaway
        // sender can make us store and process. Unknown ids are limited the same way (each id its own window).
        services.Configure<RateLimiterOptions>(limiter => limiter.AddPolicy(HookEndpoint.RateLimitPolicy, http =>
        {
            var permits = http.RequestServices.GetRequiredService<IOptions<ReceiverOptions>>().Value.RequestsPerMinute;
            var receiver = http.Request.RouteValues["receiverId"] as string ?? "";
            return RateLimitPartition.GetFixedWindowLimiter(
                $"{(receiver.Length <= 32 ? receiver : receiver[..32])}:{permits}",
                _ => new FixedWindowRateLimiterOptions { PermitLimit = permits, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 });
        }));

        // Before that, and before the id is looked at: per client address, then per instance. The middleware runs the
        // global limiter ahead of the route's, so a refused request creates no per-id window; chained, a request the
        // address limit refuses spends nothing of the instance's allowance. Chained with any other global limiter.
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<ReceiverOptions>>((limiter, receivers) =>
        {
            var hooks = HookLimiter(receivers.Value);
            limiter.GlobalLimiter = limiter.GlobalLimiter is { } other ? PartitionedRateLimiter.CreateChained(other, hooks) : hooks;
        });
        return builder;
    }

    private static PartitionedRateLimiter<HttpContext> HookLimiter(ReceiverOptions options)
    {
        static bool IsHook(HttpContext http) => http.GetEndpoint()?.Metadata.GetMetadata<HookEndpoint.Marker>() is not null;
        static FixedWindowRateLimiterOptions PerMinute(int permits) =>
            new() { PermitLimit = permits, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 };

        var perIp = options.RequestsPerMinutePerIp;
        var perInstance = options.RequestsPerMinutePerInstance;
        return PartitionedRateLimiter.CreateChained(
            PartitionedRateLimiter.Create<HttpContext, string>(http => IsHook(http)
                ? RateLimitPartition.GetFixedWindowLimiter("ip:" + ClientKey(http.Connection.RemoteIpAddress), _ => PerMinute(perIp))
                : RateLimitPartition.GetNoLimiter("")),
            PartitionedRateLimiter.Create<HttpContext, string>(http => IsHook(http)
                ? RateLimitPartition.GetFixedWindowLimiter("instance", _ => PerMinute(perInstance))
                : RateLimitPartition.GetNoLimiter("")));
    }

    /// <summary>The client's address (after the forwarded-headers middleware); an IPv6 client by its /64, which one holder gets whole.</summary>
    private static string ClientKey(IPAddress? address)
    {
        if (address is null)
        {
            return "";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    /// <summary><c>/api/v1/webhooks/receivers</c> and the public hook <c>/api/v1/hooks/{receiverId}</c>.</summary>
    public static IEndpointRouteBuilder MapWebhookReceivers(this IEndpointRouteBuilder app)
    {
        ReceiversEndpoints.Map(app);
        HookEndpoint.Map(app);
        return app;
    }
}
