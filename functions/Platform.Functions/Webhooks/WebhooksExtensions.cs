using Platform.Functions.Events;
using Platform.Functions.Hosting;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Webhooks;

public static class WebhooksExtensions
{
    public const string DeliveryFunction = "WebhookDeliveries";

    /// <summary>Outgoing webhooks: the guarded client, the <c>webhooks</c> table, the fan-out subscriber, the delivery queue function and the lane sweep timer.</summary>
    public static IHostApplicationBuilder AddWebhooks(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOutboundHttp();
        services.AddValidatedOptions<WebhookOptions>(WebhookOptions.Section);
        services.AddStorageTable(WebhookDirectory.TableName);
        services.AddEventOutbox(WebhookDirectory.TableName);
        // A sandbox copy of the tenant must not deliver to the live tenant's receivers: its endpoints start disabled.
        services.AddTenantData(WebhookDirectory.TableName, sandbox: (row, at) =>
        {
            if (row.ContainsKey(nameof(EndpointEntity.Enabled)))
            {
                row[nameof(EndpointEntity.Enabled)] = false;
                row[nameof(EndpointEntity.DisabledReason)] = "restored_sandbox";
                row[nameof(EndpointEntity.DisabledAt)] = at;
            }
        });
        services.AddSingleton<WebhookDirectory>();
        services.AddSingleton<ISandboxResealer, SandboxEndpointSecret>();
        services.AddSingleton<WebhookCommands>();
        services.AddSingleton<WebhookDeliveries>();
        services.AddSingleton<WebhookAdminMail>();
        services.AddSingleton<WebhookFanOut>();
        services.AddSingleton<IEventSubscriber>(sp => sp.GetRequiredService<WebhookFanOut>());
        services.AddQueueFunction<WebhookLane>(DeliveryFunction, WebhookDeliveries.QueueName);
        services.AddStorageTable(WebhookLaneSweep.TableName);
        services.AddTimerFunction<WebhookLaneSweep>(WebhookLaneSweep.FunctionName, WebhookLaneSweep.Schedule);
        return builder;
    }

    public static RouteGroupBuilder MapWebhooks(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(WebhookEndpoints.Path).WithTags("Webhooks");
        WebhookEndpoints.Map(group);
        return group;
    }
}
