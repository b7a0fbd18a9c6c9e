using Azure;
using Azure.Data.Tables;
using Microsoft.DurableTask;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;

namespace Platform.Functions.Backups;

/// <param name="TargetTenantId">The new tenant's id, chosen when the restore was asked for (the same on every replay); the
/// backup's own tenant when <paramref name="TargetSlug"/> is null (a restore over the live tenant).</param>
/// <param name="PreRestoreBackupId">The id of the automatic backup taken before a restore over the live tenant.</param>
public sealed record RestoreParameters(string BackupId, string TargetTenantId, string? TargetSlug, string? PreRestoreBackupId = null);

/// <param name="TargetSlug">Null: the rows replace the target tenant's own (a restore over the live tenant, or its rollback).</param>
public sealed record RestoreStepInput(string SourceTenantId, string BackupId, string TargetTenantId, string? TargetSlug, DateTimeOffset At);

/// <param name="Replace">Rows (and blobs) of the target that the backup does not hold are deleted: the tenant becomes the snapshot.</param>
public sealed record RestorePartInput(RestoreStepInput Restore, BackupPart Part, bool Replace = false);

public sealed record RestoreFinishInput(RestoreStepInput Restore, JobActor Actor, long Rows);

public sealed record RestoreFailedInput(RestoreStepInput Restore, JobActor Actor, string PreRestoreBackupId, string Error);

/// <summary>
/// A restore into a new (sandbox) tenant: verify the whole backup first (a damaged one restores nothing), reserve the
/// slug, write every part into the new tenant's partitions, and only then write the tenant's directory row, which
/// is what makes a tenant exist (sign-in by slug finds it through that row). Until then the copy is invisible, and a
/// failed or cancelled restore deletes what it wrote and frees the slug.
/// </summary>
public sealed class RestoreOrchestrator : JobOrchestrator<RestoreParameters>
{
    public const string Name = "restore";

    protected override async Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<RestoreParameters> input, JobRun run)
    {
        var p = input.Parameters;
        // While it runs, its source backup and its pre-restore backup cannot be deleted, and no backup or other restore starts.
        var lockInput = new BackupLockInput(input.TenantId, input.JobId, Name, p.PreRestoreBackupId is { } preId ? [p.BackupId, preId] : [p.BackupId], context.CurrentUtcDateTime);
        return await BackupLockHold.HoldingAsync(context, lockInput, run, "nothing was restored.", () => RestoreAsync(context, input, run));
    }

    private static async Task<JobOutcome> RestoreAsync(TaskOrchestrationContext context, JobInput<RestoreParameters> input, JobRun run)
    {
        var p = input.Parameters;
        var step = new RestoreStepInput(input.TenantId, p.BackupId, p.TargetTenantId, p.TargetSlug, context.CurrentUtcDateTime);
        run.Report("verifying");
        var check = await context.CallActivityAsync<BackupVerifyResult>(BackupVerify.Name, new BackupVerifyInput(input.TenantId, p.BackupId, context.CurrentUtcDateTime), Retried);
        if (!check.Ok)
        {
            return run.Finish(JobOutcome.Failed) with { Error = $"Backup {p.BackupId} is damaged ({check.Part}: {check.Reason}); nothing was restored." };
        }

        if (check.SchemaVersion != BackupFormat.SchemaVersion)
        {
            // Rows of another schema would be written as they are, under code that reads them differently.
            return run.Finish(JobOutcome.Failed) with
            {
                Error = $"Backup {p.BackupId} holds data of schema version {check.SchemaVersion}; this deployment restores schema version {BackupFormat.SchemaVersion} only. Nothing was restored.",
            };
        }

        return p.TargetSlug is null
            ? await InPlaceAsync(context, input, run, step)
            : await IntoNewTenantAsync(context, input, run, step);
    }

    private static async Task<JobOutcome> IntoNewTenantAsync(TaskOrchestrationContext context, JobInput<RestoreParameters> input, JobRun run, RestoreStepInput step)
    {
        var p = input.Parameters;
        try
        {
            var parts = await context.CallActivityAsync<List<BackupPart>>(RestorePrepare.Name, step, Retried);
            run.Total = parts.Count;
            long rows = 0;
            foreach (var part in parts)
            {
                if (run.CancelRequested)
                {
                    await context.CallActivityAsync<bool>(RestoreAbandon.Name, step, Retried);
                    return run.Finish(JobOutcome.Cancelled) with { Note = "Cancelled; what was written was deleted and the slug freed." };
                }

                run.Report("restoring " + part.Name);
                rows += await context.CallActivityAsync<long>(RestorePart.Name, new RestorePartInput(step, part), Retried);
                run.Count(1, 0);
            }

            run.Report("publishing");
            await context.CallActivityAsync<bool>(RestoreFinish.Name, new RestoreFinishInput(step, input.Actor, rows), Retried);
            return run.Finish(JobOutcome.Succeeded) with
            {
                Note = $"Backup {p.BackupId} was restored into the new tenant '{p.TargetSlug}' ({p.TargetTenantId}): {rows} rows.",
                Figures = new Dictionary<string, double> { ["entities"] = rows },
            };
        }
        catch (TaskFailedException)
        {
            try
            {
                await context.CallActivityAsync<bool>(RestoreAbandon.Name, step, Retried);
            }
            catch (TaskFailedException)
            {
                // The tenant row was never written: what is left is invisible, and the slug stays reserved.
            }

            throw;
        }
    }

    /// <summary>The first line of an error, bounded (storage errors carry their whole response).</summary>
    private static string Short(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length <= 300 ? line : line[..300] + "...";
    }

    /// <summary>
    /// Over the live tenant: an automatic <c>pre-restore</c> backup first (written and verified by this job; if it
    /// fails, nothing is touched), then each part replaces the tenant's rows. A failure part-way puts the pre-restore
    /// backup back the same way, so the tenant ends as the snapshot or as it was, not half of each.
    /// </summary>
    private static async Task<JobOutcome> InPlaceAsync(TaskOrchestrationContext context, JobInput<RestoreParameters> input, JobRun run, RestoreStepInput step)
    {
        var p = input.Parameters;
        var preId = p.PreRestoreBackupId!;
        run.Report("pre-restore backup " + preId);
        var pre = new JobInput<BackupParameters>(input.TenantId, preId, input.Actor, new BackupParameters(BackupParameters.PreRestore));
        var at = context.CurrentUtcDateTime;
        try
        {
            var plan = await context.CallActivityAsync<BackupPlan>(BackupBegin.Name, new BackupBeginInput(pre, at), Retried);
            if (plan.Finished == BackupEntity.Failed)
            {
                return run.Finish(JobOutcome.Failed) with { Error = $"The pre-restore backup {preId} of this job failed, so nothing was restored; start a new restore." };
            }

            // A retried restore whose pre-restore backup already succeeded keeps it as it is: it is the only copy of
            // the tenant as it was before this restore first ran.
            if (plan.Finished is null)
            {
                var written = await Task.WhenAll(plan.Parts.Select(part =>
                    context.CallActivityAsync<BackupPart>(BackupWritePart.Name, new BackupPartInput(input.TenantId, preId, part.Name, part.Kind), Retried)));
                await context.CallActivityAsync<string>(BackupSeal.Name, new BackupSealInput(input.TenantId, preId, at, written), Retried);
                var check = await context.CallActivityAsync<BackupVerifyResult>(BackupVerify.Name, new BackupVerifyInput(input.TenantId, preId, context.CurrentUtcDateTime), Retried);
                if (!check.Ok)
                {
                    throw new InvalidOperationException($"The pre-restore backup did not read back intact: {check.Part}: {check.Reason}");
                }

                await context.CallActivityAsync<bool>(BackupFinish.Name, new BackupFinishInput(input.TenantId, preId, input.Actor, true, null, null, context.CurrentUtcDateTime), Retried);
            }
        }
        catch (Exception e) when (e is TaskFailedException or InvalidOperationException)
        {
            var error = $"The pre-restore backup {preId} failed, so nothing was restored: {(e as TaskFailedException)?.FailureDetails.ErrorMessage ?? e.Message}";
            await context.CallActivityAsync<bool>(BackupFinish.Name, new BackupFinishInput(input.TenantId, preId, input.Actor, false, error, null, context.CurrentUtcDateTime), Retried);
            return run.Finish(JobOutcome.Failed) with { Error = error };
        }

        if (run.CancelRequested)
        {
            // The last moment a restore over the live tenant can stop: once rows are replaced it runs to the end (or rolls back).
            return run.Finish(JobOutcome.Cancelled) with { Note = $"Cancelled before anything was replaced; the pre-restore backup {preId} is kept." };
        }

        var parts = await context.CallActivityAsync<List<BackupPart>>(RestorePrepare.Name, step, Retried);
        run.Total = parts.Count;
        long rows = 0;
        try
        {
            foreach (var part in parts)
            {
                run.Report("replacing " + part.Name);
                rows += await context.CallActivityAsync<long>(RestorePart.Name, new RestorePartInput(step, part, Replace: true), Retried);
                run.Count(1, 0);
            }
        }
        catch (TaskFailedException failed)
        {
            run.Report("rolling back to " + preId);
            var why = failed.FailureDetails.InnerFailure?.ErrorMessage ?? failed.FailureDetails.ErrorMessage;
            var back = step with { BackupId = preId };
            try
            {
                foreach (var part in await context.CallActivityAsync<List<BackupPart>>(RestorePrepare.Name, back, Retried))
                {
                    await context.CallActivityAsync<long>(RestorePart.Name, new RestorePartInput(back, part, Replace: true), Retried);
                }
            }
            catch (TaskFailedException rollback)
            {
                // The tenant is now part snapshot, part as it was: say so first, and which backup puts it back.
                var error = $"The restore failed part-way and putting the tenant back failed too, so the tenant's data is mixed: " +
                    $"restore the pre-restore backup {preId} over this tenant to put it back as it was. Restore: {Short(why)} Rollback: " +
                    Short(rollback.FailureDetails.InnerFailure?.ErrorMessage ?? rollback.FailureDetails.ErrorMessage);
                await context.CallActivityAsync<bool>(RestoreFailed.Name, new RestoreFailedInput(step, input.Actor, preId, error), Retried);
                return run.Finish(JobOutcome.Failed) with { Error = error };
            }

            var rolledBack = $"The restore failed part-way; the tenant was put back from the pre-restore backup {preId}. Restore: {Short(why)}";
            await context.CallActivityAsync<bool>(RestoreFailed.Name, new RestoreFailedInput(step, input.Actor, preId, rolledBack), Retried);
            return run.Finish(JobOutcome.Failed) with { Error = rolledBack };
        }

        run.Report("publishing");
        await context.CallActivityAsync<bool>(RestoreFinish.Name, new RestoreFinishInput(step, input.Actor, rows), Retried);
        return run.Finish(JobOutcome.Succeeded) with
        {
            Note = $"Backup {p.BackupId} replaced the tenant's data ({rows} rows); its state before is backup {preId}.",
            Figures = new Dictionary<string, double> { ["entities"] = rows },
        };
    }
}

/// <summary>Reserves the slug for the new tenant (its slug row, without the tenant row) and reads the verified manifest's parts.</summary>
public sealed class RestorePrepare(BackupStore store, BackupFiles files, TenantDirectory tenants) : TaskActivity<RestoreStepInput, List<BackupPart>>
{
    public const string Name = "restores.prepare";

    public override async Task<List<BackupPart>> RunAsync(TaskActivityContext context, RestoreStepInput input)
    {
        if (input.TargetSlug is not null)
        {
            await ReserveAsync(input);
        }

        var source = new TenantId(input.SourceTenantId);
        var row = await store.GetAsync(source, input.BackupId, CancellationToken.None)
            ?? throw new InvalidOperationException($"Backup {input.BackupId} was deleted.");
        var key = store.Unwrap(source, input.BackupId, row.WrappedKey);
        var manifest = await files.ReadManifestAsync(source, input.BackupId, key, row.Sha256, CancellationToken.None);
        return [.. manifest.Parts];
    }

    private async Task ReserveAsync(RestoreStepInput input)
    {
        if (!await tenants.ReserveSlugAsync(input.TargetSlug!, input.TargetTenantId, CancellationToken.None))
        {
            throw new InvalidOperationException($"The slug '{input.TargetSlug}' was taken by another tenant meanwhile; nothing was restored.");
        }
    }
}

/// <summary>
/// Writes one part into the new tenant: rows in transactions of up to 98 rows and 3.5 MiB (through the tenant partition, so logged rows
/// log their change), each changed by its table's sandbox rule; blobs under the new tenant's name. Upserts: a re-run
/// writes the same rows again.
/// </summary>
public sealed class RestorePart(StorageAccount storage, BackupStore store, BackupFiles files, IOptions<StorageLayout> layout, IEnumerable<ISandboxResealer> resealers)
    : TaskActivity<RestorePartInput, long>
{
    public const string Name = "restores.part";

    private const int Batch = 98;

    /// <summary>What one transaction may carry of rows, by their size on the wire: under the 4 MiB a transaction may be, with room for its framing.</summary>
    public const long BatchBytes = 3_584 * 1024;

    /// <summary>
    /// A generous estimate of a row's size in a transaction's body: its JSON, each property with its type annotation,
    /// non-ASCII characters counted as escaped (6 bytes), binary as base64, plus the action's own headers.
    /// </summary>
    public static long WireSize(TableEntity entity)
    {
        long size = 512 + (2 * (entity.PartitionKey.Length + entity.RowKey.Length));
        foreach (var (name, value) in entity)
        {
            size += 64 + (2L * name.Length) + value switch
            {
                string text => Utf8Escaped(text),
                byte[] bytes => ((bytes.Length + 2) / 3 * 4) + 2,
                BinaryData data => ((data.ToMemory().Length + 2) / 3 * 4) + 2,
                _ => 48,
            };
        }

        return size;
    }

    private static long Utf8Escaped(string text)
    {
        long size = 2;
        foreach (var c in text)
        {
            size += c is >= ' ' and < (char)0x7F and not ('"' or '\\' or '<' or '>' or '&' or '\'' or '+') ? 1 : 6;
        }

        return size;
    }

    public override async Task<long> RunAsync(TaskActivityContext context, RestorePartInput input)
    {
        if (files.BeforeRestoringPart is { } fault)
        {
            await fault(input);
        }

        var restore = input.Restore;
        var part = input.Part;
        var source = new TenantId(restore.SourceTenantId);
        var target = new TenantId(restore.TargetTenantId);
        var row = await store.GetAsync(source, restore.BackupId, CancellationToken.None)
            ?? throw new InvalidOperationException($"Backup {restore.BackupId} was deleted.");
        var key = store.Unwrap(source, restore.BackupId, row.WrappedKey);
        var lines = files.ReadLinesAsync(store.File(source, restore.BackupId, part.File), key, BackupFormat.Context(source.Value, restore.BackupId, part.File), part.Name, CancellationToken.None);
        long written = 0;
        switch (part.Kind)
        {
            case "table" when input.Replace && (layout.Value.History.Contains(part.Name) || layout.Value.Credentials.Contains(part.Name)):
                // A record of what happened (audit, usage) is not rolled back over the live tenant: it keeps what
                // happened since the backup, the restore included. Nor are credentials (API keys): one revoked or
                // rotated since must not authenticate again.
                break;
            case "table" when layout.Value.TenantData.Contains(part.Name):
                var partition = storage.TenantTable(part.Name).For(target);
                var rule = layout.Value.SandboxRules.GetValueOrDefault(part.Name);
                var batch = new List<TableTransactionAction>(Batch);
                long batchBytes = 0;
                var kept = new HashSet<string>(StringComparer.Ordinal);
                var sandbox = restore.TargetSlug is not null;
                var resealing = resealers.Where(r => r.Table == part.Name).ToList();
                await foreach (var line in lines)
                {
                    var entity = BackupRows.Read(line, target.Value);
                    kept.Add(entity.RowKey);
                    if (sandbox)
                    {
                        rule?.Invoke(entity, restore.At);
                        foreach (var resealer in resealing)
                        {
                            resealer.Reseal(entity, source, target);
                        }
                    }

                    // A transaction carries at most 100 actions and 4 MiB: rows of ~64 KB fill it long before 98 of them.
                    var size = WireSize(entity);
                    if (batch.Count > 0 && batchBytes + size > BatchBytes)
                    {
                        await partition.SubmitTransactionAsync(batch, CancellationToken.None);
                        written += batch.Count;
                        batch.Clear();
                        batchBytes = 0;
                    }

                    batch.Add(new TableTransactionAction(TableTransactionActionType.UpsertReplace, entity));
                    batchBytes += size;
                    if (batch.Count == Batch)
                    {
                        await partition.SubmitTransactionAsync(batch, CancellationToken.None);
                        written += batch.Count;
                        batch.Clear();
                        batchBytes = 0;
                    }
                }

                if (batch.Count > 0)
                {
                    await partition.SubmitTransactionAsync(batch, CancellationToken.None);
                    written += batch.Count;
                }

                if (input.Replace)
                {
                    await DeleteOthersAsync(partition, kept);
                }

                break;
            case "blobs" when layout.Value.TenantBlobs.Contains(part.Name[BackupFiles.BlobsPrefix.Length..]):
                var container = storage.Container(part.Name[BackupFiles.BlobsPrefix.Length..]);
                var blobs = new HashSet<string>(StringComparer.Ordinal);
                await foreach (var line in lines)
                {
                    var name = line.GetProperty("name").GetString()!;
                    blobs.Add($"{target.Value}/{name}");
                    await container.GetBlobClient($"{target.Value}/{name}").UploadAsync(BinaryData.FromBytes(line.GetProperty("data").GetBytesFromBase64()),
                        new Azure.Storage.Blobs.Models.BlobUploadOptions { HttpHeaders = new() { ContentType = line.GetProperty("contentType").GetString() } });
                    written++;
                }

                if (input.Replace)
                {
                    await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, target.Value + "/", CancellationToken.None))
                    {
                        if (!blobs.Contains(blob.Name))
                        {
                            await container.DeleteBlobIfExistsAsync(blob.Name);
                        }
                    }
                }

                break;
            case "tenant":
                // A new tenant's row is written last, by RestoreFinish (it is what makes the copy visible); over the
                // live tenant its row (slug, name) stays as it is.
                break;
            case "jobs":
                // Job history is kept for the record only: jobs are the engine's instances, not the tenant's rows.
                break;
            default:
                throw new InvalidOperationException($"This deployment cannot restore part '{part.Name}' ({part.Kind}).");
        }

        return written;
    }

    /// <summary>Deletes the partition's rows the backup does not hold (plumbing aside), through the partition so logged rows log it.</summary>
    private static async Task DeleteOthersAsync(TenantPartition partition, HashSet<string> kept)
    {
        var extra = new List<string>();
        await foreach (var row in partition.QueryWhereAsync<TableEntity>($"RowKey ge {""}", 1000, ["RowKey"], CancellationToken.None))
        {
            if (!BackupRows.IsPlumbing(row.RowKey) && !kept.Contains(row.RowKey))
            {
                extra.Add(row.RowKey);
            }
        }

        foreach (var chunk in extra.Chunk(Batch))
        {
            await partition.SubmitTransactionAsync([.. chunk.Select(k => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(partition.Tenant.Value, k), ETag.All))], CancellationToken.None);
        }
    }
}

/// <summary>
/// Makes the new tenant exist: its directory row (the backup's name and plan, the new id and slug), then announces
/// <c>restore.succeeded</c> in the tenant the backup came from (audited there).
/// </summary>
public sealed class RestoreFinish(BackupStore store, BackupFiles files, EventPublisher events, TenantDirectory tenants, Sessions sessions)
    : TaskActivity<RestoreFinishInput, bool>
{
    public const string Name = "restores.finish";

    public override async Task<bool> RunAsync(TaskActivityContext context, RestoreFinishInput input)
    {
        var restore = input.Restore;
        var source = new TenantId(restore.SourceTenantId);
        int? sessionsEnded = null;
        if (restore.TargetSlug is not null)
        {
            await WriteTenantRowAsync(restore, source);
        }
        else
        {
            // Passwords, roles and MFA are the backup's now: a session opened under what was replaced must not outlive
            // it (a password changed since the backup, a role taken away since). Everyone signs in again, the
            // restorer included. Idempotent: a retried finish finds the sessions ended.
            sessionsEnded = await sessions.RevokeEveryoneAsync(source, CancellationToken.None);
        }

        await events.PublishAsync(source, new PlatformEvent(RestoreEvents.Succeeded, input.Actor.ToCaller(source).Actor, "backup", restore.BackupId,
            new Dictionary<string, object?>
            {
                ["target"] = restore.TargetSlug is null ? "same" : "new",
                ["targetTenantId"] = restore.TargetTenantId,
                ["targetTenantSlug"] = restore.TargetSlug,
                ["entities"] = input.Rows,
                ["sessionsEnded"] = sessionsEnded,
            })
        {
            StableId = Ids.Derived(restore.At, $"restore.succeeded\n{restore.SourceTenantId}\n{restore.BackupId}\n{restore.TargetTenantId}"),
        },
            CancellationToken.None);
        return true;
    }

    private async Task WriteTenantRowAsync(RestoreStepInput restore, TenantId source)
    {
        var row = await store.GetAsync(source, restore.BackupId, CancellationToken.None)
            ?? throw new InvalidOperationException($"Backup {restore.BackupId} was deleted.");
        var key = store.Unwrap(source, restore.BackupId, row.WrappedKey);
        var manifest = await files.ReadManifestAsync(source, restore.BackupId, key, row.Sha256, CancellationToken.None);
        var tenantPart = manifest.Parts.Single(p => p.Kind == "tenant");
        TableEntity? original = null;
        await foreach (var line in files.ReadLinesAsync(store.File(source, restore.BackupId, tenantPart.File), key,
            BackupFormat.Context(source.Value, restore.BackupId, tenantPart.File), tenantPart.Name, CancellationToken.None))
        {
            original = BackupRows.Read(line, TenantDirectory.Partition);
        }

        var tenant = original ?? new TableEntity();
        tenant.RowKey = TenantEntity.KeyFor(restore.TargetTenantId);
        tenant[nameof(TenantEntity.Id)] = restore.TargetTenantId;
        tenant[nameof(TenantEntity.Slug)] = restore.TargetSlug;
        tenant[nameof(TenantEntity.CreatedAt)] = restore.At;
        tenant["RestoredFrom"] = $"{restore.SourceTenantId}/{restore.BackupId}";
        await tenants.PutRowAsync(tenant, CancellationToken.None);
    }
}

/// <summary>What other capabilities read from the restore events.</summary>
public static class RestoreEvents
{
    public const string Succeeded = "restore.succeeded";

    /// <summary>
    /// A restore over this tenant finished: its rows are the backup's now, and what capabilities keep about them
    /// outside the tenant's partitions (platform-wide indexes, which no backup holds) has to follow.
    /// </summary>
    public static bool ReplacedTenant(PlatformEvent e) =>
        e.Type == Succeeded && e.Changes?.GetValueOrDefault("target")?.ToString() == "same";
}

/// <summary>Announces (and so audits) <c>restore.failed</c> in the tenant: a restore over it that failed part-way, with what became of the data.</summary>
public sealed class RestoreFailed(EventPublisher events) : TaskActivity<RestoreFailedInput, bool>
{
    public const string Name = "restores.failed";

    public override async Task<bool> RunAsync(TaskActivityContext context, RestoreFailedInput input)
    {
        var restore = input.Restore;
        var source = new TenantId(restore.SourceTenantId);
        await events.PublishAsync(source, new PlatformEvent("restore.failed", input.Actor.ToCaller(source).Actor, "backup", restore.BackupId,
            new Dictionary<string, object?> { ["target"] = "same", ["preRestoreBackupId"] = input.PreRestoreBackupId, ["error"] = input.Error })
        {
            StableId = Ids.Derived(restore.At, $"restore.failed\n{restore.SourceTenantId}\n{restore.BackupId}\n{input.PreRestoreBackupId}"),
        },
            CancellationToken.None);
        return true;
    }
}

/// <summary>Deletes what a failed or cancelled restore wrote into the new tenant (every declared table and container) and frees the slug.</summary>
public sealed class RestoreAbandon(StorageAccount storage, IOptions<StorageLayout> layout, TenantDirectory tenants) : TaskActivity<RestoreStepInput, bool>
{
    public const string Name = "restores.abandon";

    public override async Task<bool> RunAsync(TaskActivityContext context, RestoreStepInput input)
    {
        if (input.TargetSlug is null)
        {
            // Never for the live tenant: a failed restore over it is rolled back from its pre-restore backup instead.
            return false;
        }

        var target = new TenantId(input.TargetTenantId);
        if (await tenants.RowAsync(target, CancellationToken.None) is not null)
        {
            // The restore finished after all (a replayed failure): the tenant is visible and stays.
            return false;
        }

        foreach (var table in layout.Value.TenantData)
        {
            var client = storage.Table(table);
            var keys = new List<string>();
            await foreach (var row in client.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {target.Value}"), 1000, ["RowKey"]))
            {
                keys.Add(row.RowKey);
            }

            foreach (var chunk in keys.Chunk(100))
            {
                await client.SubmitTransactionAsync(chunk.Select(k => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(target.Value, k), ETag.All)));
            }
        }

        foreach (var name in layout.Value.TenantBlobs)
        {
            var container = storage.Container(name);
            await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, target.Value + "/", CancellationToken.None))
            {
                await container.DeleteBlobIfExistsAsync(blob.Name);
            }
        }

        await tenants.ReleaseSlugAsync(input.TargetSlug!, target.Value, CancellationToken.None);

        return true;
    }
}
