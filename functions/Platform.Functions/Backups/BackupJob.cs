using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;

namespace Platform.Functions.Backups;

/// <summary>Settings under <c>Platform:Backups</c>.</summary>
public sealed class BackupOptions
{
    public const string Section = "Platform:Backups";

    /// <summary>How long a backup started by hand (or before a restore) is kept before housekeeping deletes it.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan ManualRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Scheduled backups kept: the newest of each of this many days, ISO weeks and months (see <see cref="BackupRetentionPolicy"/>).</summary>
    [Range(0, 366)]
    public int KeepDaily { get; set; } = 7;

    [Range(0, 520)]
    public int KeepWeekly { get; set; } = 4;

    [Range(0, 120)]
    public int KeepMonthly { get; set; } = 12;

    /// <summary>
    /// When every new tenant's "Daily backup" schedule runs (5-field cron in <see cref="DailyScheduleTimeZone"/>), made
    /// at sign-up; tenants change, pause or delete it through /api/v1/schedules. Empty: new tenants get none.
    /// </summary>
    public string DailySchedule { get; set; } = "0 2 * * *";

    /// <summary>The IANA time zone <see cref="DailySchedule"/> is read in.</summary>
    public string DailyScheduleTimeZone { get; set; } = "UTC";

    /// <summary>
    /// Whether each tenant's schedule takes a minute of its own within the hour (from a hash of its id) when
    /// <see cref="DailySchedule"/>'s minute is a single number, so that tenants' backups do not all start at once.
    /// </summary>
    public bool DailyScheduleSpread { get; set; } = true;

    /// <summary>6-field cron (UTC) of the <c>BackupRetention</c> timer.</summary>
    public string RetentionSchedule { get; set; } = "0 45 * * * *";

    /// <summary>
    /// How long a backup or restore holds the tenant's backup lock at most: a holder that crashed blocks the next one
    /// this long. Longer than the longest backup or restore should take.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan LockTimeout { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Parts one backup job writes at once.</summary>
    [Range(1, 16)]
    public int PartParallelism { get; set; } = 4;
}

/// <param name="Kind"><c>manual</c>, <c>scheduled</c> or <c>pre-restore</c>.</param>
public sealed record BackupParameters(string Kind = BackupParameters.Manual)
{
    public const string Manual = "manual";
    public const string Scheduled = "scheduled";
    public const string PreRestore = "pre-restore";
}

public sealed record BackupVerifyParameters(string BackupId);

public sealed record BackupBeginInput(JobInput<BackupParameters> Job, DateTimeOffset At);

public sealed record BackupPartInput(string TenantId, string BackupId, string Name, string Kind);

public sealed record BackupSealInput(string TenantId, string BackupId, DateTimeOffset CreatedAt, IReadOnlyList<BackupPart> Parts);

public sealed record BackupVerifyInput(string TenantId, string BackupId, DateTimeOffset At);

/// <param name="Part">The damaged part (or <c>manifest</c>, <c>key</c>) when not <paramref name="Ok"/>.</param>
/// <param name="SchemaVersion">The manifest's schema version (when it opened).</param>
public sealed record BackupVerifyResult(bool Ok, string? Part, string? Reason, int Tables, long Entities, long Bytes, int? SchemaVersion = null);

public sealed record BackupFinishInput(string TenantId, string BackupId, JobActor Actor, bool Succeeded, string? Error, string? Part, DateTimeOffset At);

/// <summary>
/// A backup: record it (with its own key), write every part (a few at once, each a consistent snapshot of one table
/// partition or one container of the tenant), seal the manifest, then read everything back and check it. Only a
/// backup whose check passed is <c>verified</c> and announced as <c>backup.succeeded</c>; any failure marks it failed
/// and announces <c>backup.failed</c>. Each activity can run again after a crash: it rewrites its file whole.
/// </summary>
public sealed class BackupOrchestrator : JobOrchestrator<BackupParameters>
{
    public const string Name = "backup";

    protected override async Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<BackupParameters> input, JobRun run)
    {
        var lockInput = new BackupLockInput(input.TenantId, input.JobId, Name, [input.JobId], context.CurrentUtcDateTime);
        return await BackupLockHold.HoldingAsync(context, lockInput, run, "this backup did not start.", () => BackUpAsync(context, input, run));
    }

    private static async Task<JobOutcome> BackUpAsync(TaskOrchestrationContext context, JobInput<BackupParameters> input, JobRun run)
    {
        var at = context.CurrentUtcDateTime;
        try
        {
            run.Report("planning");
            var plan = await context.CallActivityAsync<BackupPlan>(BackupBegin.Name, new BackupBeginInput(input, at), Retried);
            if (plan.Finished is { } finished)
            {
                // A retried job whose backup already ended: its files are what they are; rewriting them would swap a
                // backup someone may rely on for a different one under the same id.
                return run.Finish(JobOutcome.Failed) with { Error = $"Backup {input.JobId} already ended ({finished}); start a new backup instead." };
            }

            run.Total = plan.Parts.Count;
            var parts = new List<BackupPart>();
            foreach (var batch in plan.Parts.Chunk(Math.Max(1, plan.Parallelism)))
            {
                if (run.CancelRequested)
                {
                    return await FailAsync(context, input, run, JobOutcome.Cancelled, "The backup was cancelled before all its parts were written.", null);
                }

                run.Report("writing " + string.Join(", ", batch.Select(p => p.Name)));
                var written = await Task.WhenAll(batch.Select(p =>
                    context.CallActivityAsync<BackupPart>(BackupWritePart.Name, new BackupPartInput(input.TenantId, input.JobId, p.Name, p.Kind), Retried)));
                parts.AddRange(written);
                run.Count(written.Length, 0);
                run.Report("written " + parts.Count + " of " + plan.Parts.Count);
            }

            run.Report("sealing");
            await context.CallActivityAsync<string>(BackupSeal.Name, new BackupSealInput(input.TenantId, input.JobId, at, parts), Retried);
            run.Report("verifying");
            var check = await context.CallActivityAsync<BackupVerifyResult>(BackupVerify.Name, new BackupVerifyInput(input.TenantId, input.JobId, context.CurrentUtcDateTime), Retried);
            if (!check.Ok)
            {
                return await FailAsync(context, input, run, JobOutcome.Failed, $"The backup did not read back intact: {check.Part}: {check.Reason}", check.Part);
            }

            await context.CallActivityAsync<bool>(BackupFinish.Name,
                new BackupFinishInput(input.TenantId, input.JobId, input.Actor, true, null, null, context.CurrentUtcDateTime), Retried);
            return run.Finish(JobOutcome.Succeeded) with
            {
                Note = $"Backup {input.JobId}: {check.Tables} parts, {check.Entities} rows, {check.Bytes} bytes, verified.",
                Figures = new Dictionary<string, double> { ["tables"] = check.Tables, ["entities"] = check.Entities, ["bytes"] = check.Bytes },
            };
        }
        catch (TaskFailedException failed)
        {
            var error = failed.FailureDetails.InnerFailure?.ErrorMessage ?? failed.FailureDetails.ErrorMessage;
            await FailAsync(context, input, run, JobOutcome.Failed, error, null);
            throw;
        }
    }

    private static async Task<JobOutcome> FailAsync(TaskOrchestrationContext context, JobInput<BackupParameters> input, JobRun run, string status, string error, string? part)
    {
        try
        {
            await context.CallActivityAsync<bool>(BackupFinish.Name,
                new BackupFinishInput(input.TenantId, input.JobId, input.Actor, false, error.Length <= 1000 ? error : error[..1000], part, context.CurrentUtcDateTime), Retried);
        }
        catch (TaskFailedException)
        {
            // The job's own failure is what the caller sees; the row stays 'running' until housekeeping clears it.
        }

        return run.Finish(status) with { Error = error };
    }
}

/// <param name="Finished">The status of a backup row that had already ended (a retried job): nothing may be written.</param>
public sealed record BackupPlan(IReadOnlyList<BackupPlannedPart> Parts, int Parallelism, string? Finished = null);

public sealed record BackupPlannedPart(string Name, string Kind);

/// <summary>
/// Records the backup as running, with a new key of its own; a run after a crash keeps the row (and key) it made. A row
/// that already ended (succeeded or failed) is never reopened: the plan says so and the caller writes nothing.
/// </summary>
public sealed class BackupBegin(BackupStore store, BackupFiles files, IOptions<BackupOptions> options) : TaskActivity<BackupBeginInput, BackupPlan>
{
    public const string Name = "backups.begin";

    public override async Task<BackupPlan> RunAsync(TaskActivityContext context, BackupBeginInput input)
    {
        var job = input.Job;
        var tenant = job.Tenant;
        var existing = await store.GetAsync(tenant, job.JobId, CancellationToken.None);
        if (existing is { Status: not BackupEntity.Running })
        {
            return new BackupPlan([], options.Value.PartParallelism, existing.Status);
        }

        if (existing is null)
        {
            var (_, wrapped) = store.NewKey(tenant, job.JobId);
            var row = new BackupEntity
            {
                RowKey = BackupEntity.KeyFor(job.JobId),
                Id = job.JobId,
                Kind = job.Parameters.Kind,
                Status = BackupEntity.Running,
                CreatedAt = input.At,
                // A scheduled backup is kept at least a day's worth of its rule; the retention sweep moves it on.
                ExpiresAt = input.At + (job.Parameters.Kind == BackupParameters.Scheduled ? TimeSpan.FromDays(Math.Max(1, options.Value.KeepDaily)) : options.Value.ManualRetention),
                WrappedKey = wrapped,
            };
            try
            {
                await store.Rows(tenant).AddAsync(row, CancellationToken.None);
            }
            catch (Azure.RequestFailedException e) when (e.Status == 409)
            {
                // A first run got as far as the row: its key stays the backup's key.
            }
        }

        return new BackupPlan([.. files.PlannedParts().Select(p => new BackupPlannedPart(p.Name, p.Kind))], options.Value.PartParallelism);
    }
}

/// <summary>Writes one part (a table partition, a container's blobs, or the tenant's row), whole, under the backup's key.</summary>
public sealed class BackupWritePart(BackupStore store, BackupFiles files) : TaskActivity<BackupPartInput, BackupPart>
{
    public const string Name = "backups.part";

    public override async Task<BackupPart> RunAsync(TaskActivityContext context, BackupPartInput input)
    {
        var tenant = new TenantId(input.TenantId);
        var row = await store.GetAsync(tenant, input.BackupId, CancellationToken.None)
            ?? throw new InvalidOperationException($"Backup {input.BackupId} has no row; it was deleted while it ran.");
        EnsureRunning(row);
        var key = store.Unwrap(tenant, input.BackupId, row.WrappedKey);
        return await files.WritePartAsync(tenant, input.BackupId, key, input.Name, input.Kind, CancellationToken.None);
    }

    /// <summary>A finished backup's files are never rewritten.</summary>
    internal static void EnsureRunning(BackupEntity row)
    {
        if (row.Status != BackupEntity.Running)
        {
            throw new InvalidOperationException($"Backup {row.Id} already ended ({row.Status}); its files are not rewritten.");
        }
    }
}

/// <summary>Writes the manifest and records the backup's figures and digest on its row (not yet verified).</summary>
public sealed class BackupSeal(BackupStore store, BackupFiles files) : TaskActivity<BackupSealInput, string>
{
    public const string Name = "backups.seal";

    public override async Task<string> RunAsync(TaskActivityContext context, BackupSealInput input)
    {
        var tenant = new TenantId(input.TenantId);
        var row = await store.GetAsync(tenant, input.BackupId, CancellationToken.None)
            ?? throw new InvalidOperationException($"Backup {input.BackupId} has no row; it was deleted while it ran.");
        BackupWritePart.EnsureRunning(row);
        var key = store.Unwrap(tenant, input.BackupId, row.WrappedKey);
        var manifest = new BackupManifest(BackupFormat.FormatVersion, BackupFormat.SchemaVersion, input.TenantId, input.BackupId, input.CreatedAt, input.Parts);
        var (bytes, sha) = await files.WriteManifestAsync(tenant, key, manifest, CancellationToken.None);
        row.Tables = input.Parts.Count;
        row.Entities = input.Parts.Sum(p => p.Count);
        row.Bytes = input.Parts.Sum(p => p.Bytes) + bytes;
        row.Sha256 = sha;
        row.Parts = JsonSerializer.Serialize(input.Parts, BackupManifest.Json);
        row.Verified = false;
        await store.Rows(tenant).UpsertAsync(row, CancellationToken.None);
        return sha;
    }
}

/// <summary>
/// Reads the whole backup back: the key opens, the manifest is this backup's and hashes to the row's digest, and every
/// part opens segment by segment, hashes to the manifest's SHA-256 and holds its count of rows. Records the outcome on
/// the row (<c>verified</c>, or the damaged part and why). Damage is an answer, not an error: the activity succeeds.
/// </summary>
public sealed class BackupVerify(BackupStore store, BackupFiles files) : TaskActivity<BackupVerifyInput, BackupVerifyResult>
{
    public const string Name = "backups.verify";

    public override async Task<BackupVerifyResult> RunAsync(TaskActivityContext context, BackupVerifyInput input)
    {
        var tenant = new TenantId(input.TenantId);
        var row = await store.GetAsync(tenant, input.BackupId, CancellationToken.None)
            ?? throw new InvalidOperationException($"Backup {input.BackupId} has no row; it was deleted.");
        BackupVerifyResult result;
        try
        {
            result = await CheckAsync(tenant, row, CancellationToken.None);
        }
        catch (BackupIntegrityException damaged)
        {
            result = new BackupVerifyResult(false, damaged.File, damaged.Reason, row.Tables, row.Entities, row.Bytes);
        }

        row.Verified = result.Ok;
        row.VerifiedAt = input.At;
        row.FailedPart = result.Ok ? null : $"{result.Part}: {result.Reason}";
        await store.Rows(tenant).UpsertAsync(row, CancellationToken.None);
        return result;
    }

    private async Task<BackupVerifyResult> CheckAsync(TenantId tenant, BackupEntity row, CancellationToken cancellationToken)
    {
        var key = store.Unwrap(tenant, row.Id, row.WrappedKey);
        var manifest = await files.ReadManifestAsync(tenant, row.Id, key, row.Sha256, cancellationToken);
        long bytes = 0;
        foreach (var part in manifest.Parts)
        {
            bytes += await files.VerifyPartAsync(tenant, row.Id, key, part, cancellationToken);
        }

        return new BackupVerifyResult(true, null, null, manifest.Parts.Count, manifest.Parts.Sum(p => p.Count), bytes, manifest.SchemaVersion);
    }
}

/// <summary>Marks the backup succeeded or failed and announces it (<c>backup.succeeded</c> / <c>backup.failed</c>, audited), once per backup.</summary>
public sealed class BackupFinish(BackupStore store, EventPublisher events) : TaskActivity<BackupFinishInput, bool>
{
    public const string Name = "backups.finish";

    public override async Task<bool> RunAsync(TaskActivityContext context, BackupFinishInput input)
    {
        var tenant = new TenantId(input.TenantId);
        var row = await store.GetAsync(tenant, input.BackupId, CancellationToken.None);
        if (row is { Status: BackupEntity.Running })
        {
            row.Status = input.Succeeded ? BackupEntity.Succeeded : BackupEntity.Failed;
            row.Error = input.Error;
            await store.Rows(tenant).UpsertAsync(row, CancellationToken.None);
        }

        var type = input.Succeeded ? "backup.succeeded" : "backup.failed";
        await events.PublishAsync(tenant, new PlatformEvent(type, input.Actor.ToCaller(tenant).Actor, "backup", input.BackupId,
            input.Succeeded
                ? new Dictionary<string, object?>
                {
                    ["kind"] = row?.Kind,
                    ["tables"] = row?.Tables,
                    ["entities"] = row?.Entities,
                    ["bytes"] = row?.Bytes,
                    ["sha256"] = row?.Sha256,
                }
                : new Dictionary<string, object?> { ["kind"] = row?.Kind, ["error"] = input.Error, ["part"] = input.Part })
        {
            StableId = Ids.Derived(input.At, $"{type}\n{input.TenantId}\n{input.BackupId}"),
        },
            CancellationToken.None);
        return true;
    }
}

/// <summary>Checks a backup again later (<c>POST /api/v1/backups/{id}/verify</c>); a damaged one fails the job naming the part.</summary>
public sealed class BackupVerifyOrchestrator : JobOrchestrator<BackupVerifyParameters>
{
    public const string Name = "backup.verify";

    protected override async Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<BackupVerifyParameters> input, JobRun run)
    {
        run.Total = 1;
        run.Report("verifying");
        var check = await context.CallActivityAsync<BackupVerifyResult>(BackupVerify.Name,
            new BackupVerifyInput(input.TenantId, input.Parameters.BackupId, context.CurrentUtcDateTime), Retried);
        if (!check.Ok)
        {
            run.Count(0, 1);
            return run.Finish(JobOutcome.Failed) with { Error = $"Backup {input.Parameters.BackupId} is damaged: {check.Part}: {check.Reason}" };
        }

        run.Count(1, 0);
        return run.Finish(JobOutcome.Succeeded) with
        {
            Note = $"Backup {input.Parameters.BackupId} is intact: {check.Tables} parts, {check.Entities} rows, {check.Bytes} bytes.",
            Figures = new Dictionary<string, double> { ["tables"] = check.Tables, ["entities"] = check.Entities, ["bytes"] = check.Bytes },
        };
    }
}
