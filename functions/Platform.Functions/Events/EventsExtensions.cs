using Platform.Functions.Hosting;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Events;

public static class EventsExtensions
{
    public static IHostApplicationBuilder AddEvents(this IHostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<EventsOptions>(EventsOptions.Section);
        builder.Services.AddStorageTable(AuditTrail.TableName);
        builder.Services.AddTenantData(AuditTrail.TableName, history: true);
        builder.Services.AddEventOutbox(EventPublisher.TableName);
        builder.Services.AddSingleton<MonotonicIds>();
        builder.Services.AddSingleton<EventRelay>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EventRelay>());
        builder.Services.AddQueueFunction<EventRelayCovers>("EventRelay", EventRelay.QueueName);
        builder.Services.AddSingleton<AuditTrail>();
        builder.Services.AddSingleton<IEventSubscriber>(sp => sp.GetRequiredService<AuditTrail>());
        builder.Services.AddSingleton<EventPublisher>();
        return builder;
    }

    /// <summary>
    /// Registers a table (if not already) whose partitions carry an event outbox, so its writes can commit their events
    /// with them (<see cref="EventPublisher.CommitAsync"/>).
    /// </summary>
    public static IServiceCollection AddEventOutbox(this IServiceCollection services, string table) =>
        services.AddStorageTable(table).Configure<StorageLayout>(layout => layout.Outboxes.Add(table));
}
