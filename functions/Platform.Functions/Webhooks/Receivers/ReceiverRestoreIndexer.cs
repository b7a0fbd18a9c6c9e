using Platform.Functions.Backups;
using Platform.Functions.Events;
using Platform.Functions.Storage;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>After a restore over a tenant, gives each of its receivers its index row again (<see cref="ReceiverStore.IndexAgainAsync"/>).</summary>
public sealed class ReceiverRestoreIndexer(ReceiverStore receivers) : IEventSubscriber
{
    public async Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken)
    {
        if (events.Any(e => RestoreEvents.ReplacedTenant(e.Event)))
        {
            await receivers.IndexAgainAsync(tenant, cancellationToken);
        }
    }
}
