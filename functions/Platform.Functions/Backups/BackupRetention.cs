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
            try
            {
                deleted += await SweepAsync(tenant, now, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One tenant's trouble must not hold up the others' retention (or their keys' re-sealing).
                LogTenantFailed(logger, ex, tenant.Value);
            }
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
        await FailAbandonedAsync(tenant, backups, held, now, cancellationToken);
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
            else
            {
                // A key sealed under a previous data-encryption key is sealed afresh under the current one, so the
                // previous key can be retired once every tenant has been swept.
                var rewrapped = Rewrapped(tenant, backup);
                if (expires == backup.ExpiresAt && rewrapped is null)
                {
                    continue;
                }

                backup.ExpiresAt = expires;
                backup.WrappedKey = rewrapped ?? backup.WrappedKey;
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

    /// <summary>
    /// Fails the backups still <c>running</c> after the lock's timeout without a lock naming them: their job ended
    /// without recording how (its last step failed past its retries, or the job was terminated), and no backup runs
    /// longer than its lock. Otherwise such a row stayed running for ever, listed as in progress and never expired.
    /// </summary>
    private async Task FailAbandonedAsync(TenantId tenant, List<BackupEntity> backups, BackupLockEntity? held, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var o = options.Value;
        foreach (var backup in backups.Where(b => b.Status == BackupEntity.Running && now - b.CreatedAt > o.LockTimeout && held?.Protects(b.Id, now) != true))
        {
            backup.Status = BackupEntity.Failed;
            backup.Error = $"The backup did not finish within {o.LockTimeout} (its job ended without recording its outcome); its files are incomplete.";
            backup.ExpiresAt = now + o.ManualRetention;
            try
            {
                await store.Rows(tenant).UpdateAsync(backup, backup.ETag, cancellationToken);
            }
            catch (Azure.RequestFailedException e) when (e.Status is 404 or 412)
            {
                // Finished or deleted meanwhile: whatever it is now stands.
                backup.Status = BackupEntity.Running;
                continue;
            }

            await events.PublishAsync(tenant, new PlatformEvent("backup.failed", Actor.System, "backup", backup.Id,
                new Dictionary<string, object?> { ["kind"] = backup.Kind, ["error"] = backup.Error, ["part"] = null })
            {
                StableId = Ids.Derived(backup.CreatedAt, $"backup.failed\n{tenant.Value}\n{backup.Id}\nabandoned"),
            },
                cancellationToken);
        }
    }

    /// <summary>The backup's key sealed afresh under the current data-encryption key when a previous one sealed it; null otherwise (or when it opens with none: verification says so).</summary>
    private string? Rewrapped(TenantId tenant, BackupEntity backup)
    {
        if (string.IsNullOrEmpty(backup.WrappedKey))
        {
            return null;
        }

        try
        {
            return store.RewrappedKey(tenant, backup.Id, backup.WrappedKey);
        }
        catch (BackupIntegrityException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backup retention of tenant {Tenant} failed; the next sweep tries again")]
    private static partial void LogTenantFailed(ILogger logger, Exception exception, string tenant);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backup retention deleted {Count} backups")]
    private static partial void LogDeleted(ILogger logger, int count);
}
