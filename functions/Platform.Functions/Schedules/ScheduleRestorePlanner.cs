using Platform.Functions.Backups;
using Platform.Functions.Events;
using Platform.Functions.Storage;

namespace Platform.Functions.Schedules;

/// <summary>
/// After a restore over a tenant, writes the due-index row of each enabled schedule again. The due index is
/// platform-wide and no backup holds it, so a schedule the restore brought back (deleted since the backup) would
/// otherwise never run. A next run the backup names in the past runs once, as any missed occurrence does, and
/// planning is idempotent (the same occurrence is the same row), so a redelivered event changes nothing.
/// </summary>
public sealed class ScheduleRestorePlanner(ScheduleCommands schedules) : IEventSubscriber
{
    public async Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken)
    {
        if (!events.Any(e => RestoreEvents.ReplacedTenant(e.Event)))
        {
            return;
        }

        foreach (var schedule in await schedules.ListAsync(tenant, cancellationToken))
        {
            if (schedule is { Enabled: true, NextRunAt: { } next })
            {
                await schedules.PlanAsync(tenant, schedule.Id, next, cancellationToken);
            }
        }
    }
}
