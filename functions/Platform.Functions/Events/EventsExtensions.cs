using Platform.Functions.Storage;

namespace Platform.Functions.Events;

public static class EventsExtensions
{
    public static IHostApplicationBuilder AddEvents(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(AuditTrail.TableName);
        builder.Services.AddSingleton<AuditTrail>();
        builder.Services.AddSingleton<IEventSubscriber>(sp => sp.GetRequiredService<AuditTrail>());
        builder.Services.AddSingleton<EventPublisher>();
        return builder;
    }
}
