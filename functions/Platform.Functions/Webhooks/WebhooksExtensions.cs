namespace Platform.Functions.Webhooks;

public static class WebhooksExtensions
{
    /// <summary>Outgoing webhooks: the SSRF-guarded client.</summary>
    public static IHostApplicationBuilder AddWebhooks(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOutboundHttp();
        return builder;
    }
}
