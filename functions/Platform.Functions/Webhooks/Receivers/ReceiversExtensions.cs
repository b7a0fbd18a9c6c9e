using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
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
        services.AddMemoryCache();
        services.AddStorageTable(ReceiverStore.TableName);
        services.AddStorageTable(ReceiverStore.IndexTableName);
        services.AddStorageContainer(ReceiverStore.PayloadContainer);
        services.AddSingleton<ReceiverStore>();
        services.AddSingleton<IRowExpiry, MessageExpiry>();
        services.AddQueueFunction<ReceiptProcessor>(ReceiptProcessor.FunctionName, ReceiverStore.QueueName);

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
        return builder;
    }

    /// <summary><c>/api/v1/webhooks/receivers</c> and the public hook <c>/api/v1/hooks/{receiverId}</c>.</summary>
    public static IEndpointRouteBuilder MapWebhookReceivers(this IEndpointRouteBuilder app)
    {
        ReceiversEndpoints.Map(app);
        HookEndpoint.Map(app);
        return app;
    }
}
