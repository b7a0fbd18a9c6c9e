using Azure;
using Azure.Data.Tables;
using Microsoft.DurableTask;
using Microsoft.Extensions.Options;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;

namespace Platform.Functions.Backups;

/// <summary>
/// The one backup or restore running for a tenant: row <c>lock</c> in the tenant's partition of the <c>backups</c>
/// table (not listed: backups are <c>b:</c> rows). It names the job holding it and the backups that job reads or
/// writes, which cannot be deleted (by hand or by retention) while it is held. A holder that crashed without releasing
/// it blocks the next one only until <see cref="ExpiresAt"/>; the next starter then takes it over (ETag-checked).
/// </summary>
public sealed class BackupLockEntity : ITableEntity
{
    public const string Key = "lock";

    public string PartitionKey { get; set; } = "";

    public string RowKey { get; set; } = Key;

    public DateTimeOffset? Timestamp { get; set; }

    public ETag ETag { get; set; }

    /// <summary>The job id holding the lock.</summary>
    public string Holder { get; set; } = "";

    /// <summary><c>backup</c> or <c>restore</c>.</summary>
    public string Kind { get; set; } = "";

    /// <summary>Ids of the backups the holder uses (space-separated): the backup being written, or a restore's source and pre-restore backup.</summary>
    public string Backups { get; set; } = "";

    public DateTimeOffset ExpiresAt { get; set; }

    public bool Protects(string backupId, DateTimeOffset now) => ExpiresAt > now && Backups.Split(' ').Contains(backupId, StringComparer.Ordinal);
}

/// <param name="Holder">The job that holds the lock when <paramref name="Acquired"/> is false.</param>
public sealed record BackupLockResult(bool Acquired, string? Holder, string? Kind);

public sealed record BackupLockInput(string TenantId, string JobId, string Kind, IReadOnlyList<string> Backups, DateTimeOffset At);

/// <summary>Takes, re-takes (same holder) and releases a tenant's backup lock.</summary>
public sealed class BackupLocks(BackupStore store, IOptions<BackupOptions> options)
{
    /// <summary>Takes the lock for <paramref name="input"/>'s job: free, expired, or already its own. Otherwise names who holds it.</summary>
    public async Task<BackupLockResult> AcquireAsync(BackupLockInput input, CancellationToken cancellationToken)
    {
        var rows = store.Rows(new TenantId(input.TenantId));
        var wanted = new BackupLockEntity
        {
            PartitionKey = input.TenantId,
            Holder = input.JobId,
            Kind = input.Kind,
            Backups = string.Join(' ', input.Backups),
            ExpiresAt = input.At + options.Value.LockTimeout,
        };
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var held = await rows.GetAsync<BackupLockEntity>(BackupLockEntity.Key, cancellationToken);
            try
            {
                if (held is null)
                {
                    await rows.AddAsync(wanted, cancellationToken);
                    return new BackupLockResult(true, null, null);
                }

                if (held.Holder != input.JobId && held.ExpiresAt > input.At)
                {
                    return new BackupLockResult(false, held.Holder, held.Kind);
                }

                // Its own (a retried or replayed job), or a crashed holder's that expired: taken over, only if unchanged.
                await rows.UpdateAsync(wanted, held.ETag, cancellationToken);
                return new BackupLockResult(true, null, null);
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412 or 404)
            {
                // Someone else took or released it between the read and the write: read again.
            }
        }

        var now = await rows.GetAsync<BackupLockEntity>(BackupLockEntity.Key, cancellationToken);
        return new BackupLockResult(false, now?.Holder, now?.Kind);
    }

    /// <summary>Releases the lock if <paramref name="jobId"/> still holds it.</summary>
    public async Task ReleaseAsync(TenantId tenant, string jobId, CancellationToken cancellationToken)
    {
        var rows = store.Rows(tenant);
        if (await rows.GetAsync<BackupLockEntity>(BackupLockEntity.Key, cancellationToken) is { } held && held.Holder == jobId)
        {
            try
            {
                await rows.DeleteAsync(BackupLockEntity.Key, held.ETag, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status is 404 or 412)
            {
                // Taken over after it expired, or gone: not ours any more.
            }
        }
    }

    /// <summary>The lock, if one is held (not expired) at <paramref name="now"/>.</summary>
    public async Task<BackupLockEntity?> HeldAsync(TenantId tenant, DateTimeOffset now, CancellationToken cancellationToken) =>
        await store.Rows(tenant).GetAsync<BackupLockEntity>(BackupLockEntity.Key, cancellationToken) is { } held && held.ExpiresAt > now ? held : null;

    /// <summary>The problem a caller gets when another backup or restore holds the lock.</summary>
    public static Http.CommandError Busy(BackupLockResult result) =>
        Http.CommandError.Conflict("backup_running", $"Another {result.Kind ?? "backup"} of this tenant is running (job {result.Holder}); wait for it to finish.");
}

/// <summary>Takes the tenant's backup lock for a job (see <see cref="BackupLocks"/>); an answer, not an error, when it is held.</summary>
public sealed class BackupLockAcquire(BackupLocks locks) : TaskActivity<BackupLockInput, BackupLockResult>
{
    public const string Name = "backups.lock";

    public override Task<BackupLockResult> RunAsync(TaskActivityContext context, BackupLockInput input) => locks.AcquireAsync(input, CancellationToken.None);
}

/// <summary>How a backup or restore orchestration holds the tenant's lock for its whole run.</summary>
public static class BackupLockHold
{
    /// <summary>
    /// Takes the lock for the job, runs <paramref name="work"/> and releases the lock whatever happens; when another
    /// backup or restore holds it, the job fails at once with <paramref name="notStarted"/> after the holder.
    /// </summary>
    public static async Task<JobOutcome> HoldingAsync(
        TaskOrchestrationContext context, BackupLockInput lockInput, JobRun run, string notStarted, Func<Task<JobOutcome>> work)
    {
        var held = await context.CallActivityAsync<BackupLockResult>(BackupLockAcquire.Name, lockInput, JobOrchestrator<BackupParameters>.Retried);
        if (!held.Acquired)
        {
            return run.Finish(JobOutcome.Failed) with { Error = $"Another {held.Kind} of this tenant is running (job {held.Holder}); {notStarted}" };
        }

        try
        {
            return await work();
        }
        finally
        {
            await context.CallActivityAsync<bool>(BackupLockRelease.Name, lockInput, JobOrchestrator<BackupParameters>.Retried);
        }
    }
}

/// <summary>Releases the tenant's backup lock if the job still holds it.</summary>
public sealed class BackupLockRelease(BackupLocks locks) : TaskActivity<BackupLockInput, bool>
{
    public const string Name = "backups.unlock";

    public override async Task<bool> RunAsync(TaskActivityContext context, BackupLockInput input)
    {
        await locks.ReleaseAsync(new TenantId(input.TenantId), input.JobId, CancellationToken.None);
        return true;
    }
}
