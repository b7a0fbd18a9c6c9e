using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Schedules;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;

namespace Platform.Functions.Backups;

/// <summary>
/// Gives every new tenant its daily backup: on <c>tenant.created</c>, a schedule of <c>backup</c> jobs at
/// <see cref="BackupOptions.DailySchedule"/>, acting for the admin who signed up, which the tenant changes, pauses or
/// deletes through /api/v1/schedules like any schedule of its own. It follows the event rather than being called by
/// the sign-up so a crash between the two loses nothing: the event is relayed until it is handled, and the schedule
/// takes the event's id, so a second delivery finds it made.
/// </summary>
public sealed partial class DefaultBackupSchedule(
    ScheduleCommands schedules, TenantDirectory tenants, IOptions<BackupOptions> options, ILogger<DefaultBackupSchedule> logger)
    : IEventSubscriber
{
    public const string Name = "Daily backup";

    public async Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken)
    {
        var backups = options.Value;
        if (string.IsNullOrEmpty(backups.DailySchedule))
        {
            return;
        }

        foreach (var published in events)
        {
            // A sign-up that failed after its admin's write (the tenant's row deleted again) still relays its events:
            // a tenant without a directory row gets no schedule, which would otherwise back it up every night.
            if (published.Event is not { Type: "tenant.created", Actor: { Type: "user", Id: { } admin } } ||
                await tenants.GetAsync(tenant, cancellationToken) is null)
            {
                continue;
            }

            var validation = new Validation();
            var input = ScheduleInput.Read(JsonSerializer.SerializeToElement(new
            {
                name = Name,
                cron = backups.DailyScheduleSpread ? Spread(backups.DailySchedule, tenant) : backups.DailySchedule,
                timeZone = backups.DailyScheduleTimeZone,
                target = new { job = new { type = BackupOrchestrator.Name } },
            }, JsonSerializerOptions.Web), validation);

            // Made as the schedule itself acting for the admin, the way its runs act: the admin's rights are checked as
            // for a schedule they made, and the audit trail names the schedule on their behalf.
            var caller = new Caller(tenant, admin, SessionGuard.SessionlessPrefix + Caller.ScheduleKeyPrefix + published.Id);
            // A refusal is the deployment's setting or the tenant's limit, not a passing fault: delivering again would not help.
            if (!validation.IsValid)
            {
                LogRefused(logger, tenant.Value, "the schedule is invalid");
            }
            else if ((await schedules.CreateAsync(caller, input, published.Id, cancellationToken)).Failed(out var refused, out _))
            {
                LogRefused(logger, tenant.Value, refused.Message);
            }
        }
    }

    /// <summary>
    /// The cron with its minute field (when a single number) replaced by a minute of the tenant's own, taken from a
    /// hash of its id: thousands of tenants' backups then start spread over the hour instead of all at once.
    /// </summary>
    public static string Spread(string cron, TenantId tenant)
    {
        var fields = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 5 || !int.TryParse(fields[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
        {
            return cron;
        }

        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(tenant.Value));
        fields[0] = (BitConverter.ToUInt32(hash, 0) % 60).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return string.Join(' ', fields);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Tenant {Tenant} got no daily backup schedule: {Reason}")]
    private static partial void LogRefused(ILogger logger, string tenant, string reason);
}
