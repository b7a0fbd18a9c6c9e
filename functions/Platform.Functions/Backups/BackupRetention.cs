using System.Globalization;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Triggers;

namespace Platform.Functions.Backups;

/// <summary>
/// Which scheduled backups a tenant keeps, grandfather-father-son: the newest of each of the last
/// <c>KeepDaily</c> days that have one, of the last <c>KeepWeekly</c> ISO weeks, and of the last <c>KeepMonthly</c>
/// months (UTC). A backup kept for several reasons counts once.
/// </summary>
public static class BackupRetentionPolicy
{
    public enum Reason
    {
        Daily,
        Weekly,
        Monthly,
    }

    /// <summary>The kept backups, each with the longest reason it is kept for.</summary>
    public static Dictionary<string, Reason> Keep(IEnumerable<BackupEntity> scheduled, int daily, int weekly, int monthly)
    {
        var newestFirst = scheduled.OrderByDescending(b => b.CreatedAt).ToList();
        var keep = new Dictionary<string, Reason>(StringComparer.Ordinal);

        void Take(Func<DateTimeOffset, string> bucket, int count, Reason reason)
        {
            foreach (var newest in newestFirst.GroupBy(b => bucket(b.CreatedAt.ToUniversalTime())).Take(count).Select(g => g.First()))
            {
                keep[newest.Id] = reason;
            }
        }

        // Shortest first, so a backup kept by a longer rule ends with that reason.
        Take(at => at.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), daily, Reason.Daily);
        Take(at => $"{ISOWeek.GetYear(at.UtcDateTime)}-W{ISOWeek.GetWeekOfYear(at.UtcDateTime):D2}", weekly, Reason.Weekly);
        Take(at => at.ToString("yyyy-MM", CultureInfo.InvariantCulture), monthly, Reason.Monthly);
        return keep;
    }
}

/// <summary>
/// The <c>BackupRetention</c> timer: per tenant, deletes the scheduled backups the retention policy no longer keeps
/// and every other backup whose <c>expiresAt</c> passed (files first, then the row; <c>backup.deleted</c> by the
/// system), and moves the <c>expiresAt</c> of kept scheduled backups to what their rule gives them. Running backups
/// are left alone. Safe on several instances at once: deleting what is gone finds nothing.
/// </summary>
public sealed partial class BackupRetention(
    TenantDirectory tenants, BackupStore store, BackupLocks locks, EventPublisher events, IOptions<BackupOptions> options, TimeProvider time,
    ILogger<BackupRetention> logger)
    : ITimerHandler
{
    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var deleted = 0;
        await foreach (var tenant in tenants.AllIdsAsync(cancellationToken))
        {
            deleted += await SweepAsync(tenant, now, cancellationToken);
        }

        if (deleted > 0)
        {
            LogDeleted(logger, deleted);
        }
    }

    /// <summary>One tenant's sweep; returns how many backups it deleted.</summary>
    public async Task<int> SweepAsync(TenantId tenant, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var backups = await store.ListAsync(tenant, int.MaxValue, cancellationToken);
        var scheduled = backups.Where(b => b.Kind == BackupParameters.Scheduled && b.Status == BackupEntity.Succeeded).ToList();
        var keep = BackupRetentionPolicy.Keep(scheduled, o.KeepDaily, o.KeepWeekly, o.KeepMonthly);
        var deleted = 0;
        // A restore's source and pre-restore backups stay while it runs, whatever their age.
        var held = await locks.HeldAsync(tenant, now, cancellationToken);
        foreach (var backup in backups.Where(b => b.Status != BackupEntity.Running && held?.Protects(b.Id, now) != true))
        {
            DateTimeOffset? expires = backup.ExpiresAt;
            if (backup.Kind == BackupParameters.Scheduled && backup.Status == BackupEntity.Succeeded)
            {
                expires = keep.TryGetValue(backup.Id, out var reason)
                    ? backup.CreatedAt + reason switch
                    {
                        BackupRetentionPolicy.Reason.Monthly => TimeSpan.FromDays(31 * o.KeepMonthly),
                        BackupRetentionPolicy.Reason.Weekly => TimeSpan.FromDays(7 * o.KeepWeekly),
                        _ => TimeSpan.FromDays(o.KeepDaily),
                    }
                    : now;
            }

            if (expires is { } at && at <= now)
            {
                await store.DeleteAsync(tenant, backup.Id, cancellationToken);
                await events.PublishAsync(tenant, new PlatformEvent("backup.deleted", Actor.System, "backup", backup.Id,
                    new Dictionary<string, object?> { ["kind"] = backup.Kind, ["createdAt"] = backup.CreatedAt, ["reason"] = "retention" })
                {
                    StableId = Ids.Derived(now, $"backup.deleted\n{tenant.Value}\n{backup.Id}"),
                },
                    cancellationToken);
                deleted++;
            }
            else if (expires != backup.ExpiresAt)
            {
                backup.ExpiresAt = expires;
                try
                {
                    await store.Rows(tenant).UpdateAsync(backup, backup.ETag, cancellationToken);
                }
                catch (Azure.RequestFailedException e) when (e.Status is 404 or 412)
                {
                    // Deleted or changed meanwhile (a verification): the next sweep looks again.
                }
            }
        }

        return deleted;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Backup retention deleted {Count} backups")]
    private static partial void LogDeleted(ILogger logger, int count);
}
