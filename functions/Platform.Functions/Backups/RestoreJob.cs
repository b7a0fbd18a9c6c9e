using Azure;
using Azure.Data.Tables;
using Microsoft.DurableTask;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;

namespace Platform.Functions.Backups;

/// <param name="TargetTenantId">The new tenant's id, chosen when the restore was asked for (the same on every replay).</param>
public sealed record RestoreParameters(string BackupId, string TargetTenantId, string TargetSlug);

public sealed record RestoreStepInput(string SourceTenantId, string BackupId, string TargetTenantId, string TargetSlug, DateTimeOffset At);

public sealed record RestorePartInput(RestoreStepInput Restore, BackupPart Part);

public sealed record RestoreFinishInput(RestoreStepInput Restore, JobActor Actor, long Rows);

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
        var step = new RestoreStepInput(input.TenantId, p.BackupId, p.TargetTenantId, p.TargetSlug, context.CurrentUtcDateTime);
        run.Report("verifying");
        var check = await context.CallActivityAsync<BackupVerifyResult>(BackupVerify.Name, new BackupVerifyInput(input.TenantId, p.BackupId, context.CurrentUtcDateTime), Retried);
        if (!check.Ok)
        {
            return run.Finish(JobOutcome.Failed) with { Error = $"Backup {p.BackupId} is damaged ({check.Part}: {check.Reason}); nothing was restored." };
        }

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
}

/// <summary>Reserves the slug for the new tenant (its slug row, without the tenant row) and reads the verified manifest's parts.</summary>
public sealed class RestorePrepare(StorageAccount storage, BackupStore store, BackupFiles files) : TaskActivity<RestoreStepInput, List<BackupPart>>
{
    public const string Name = "restores.prepare";

    public override async Task<List<BackupPart>> RunAsync(TaskActivityContext context, RestoreStepInput input)
    {
        var table = storage.Table(TenantDirectory.TableName);
        var slug = new TenantSlugEntity { PartitionKey = TenantDirectory.Partition, RowKey = TenantSlugEntity.KeyFor(input.TargetSlug), TenantId = input.TargetTenantId };
        try
        {
            await table.AddEntityAsync(slug);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            var held = await table.GetEntityAsync<TenantSlugEntity>(TenantDirectory.Partition, slug.RowKey);
            if (held.Value.TenantId != input.TargetTenantId)
            {
                throw new InvalidOperationException($"The slug '{input.TargetSlug}' was taken by another tenant meanwhile; nothing was restored.");
            }
        }

        var source = new TenantId(input.SourceTenantId);
        var row = await store.GetAsync(source, input.BackupId, CancellationToken.None)
            ?? throw new InvalidOperationException($"Backup {input.BackupId} was deleted.");
        var key = store.Unwrap(source, input.BackupId, row.WrappedKey);
        var manifest = await files.ReadManifestAsync(source, input.BackupId, key, row.Sha256, CancellationToken.None);
        return [.. manifest.Parts];
    }
}

/// <summary>
/// Writes one part into the new tenant: rows in transactions of up to 98 (through the tenant partition, so logged rows
/// log their change), each changed by its table's sandbox rule; blobs under the new tenant's name. Upserts: a re-run
/// writes the same rows again.
/// </summary>
public sealed class RestorePart(StorageAccount storage, BackupStore store, BackupFiles files, IOptions<StorageLayout> layout) : TaskActivity<RestorePartInput, long>
{
    public const string Name = "restores.part";

    private const int Batch = 98;

    public override async Task<long> RunAsync(TaskActivityContext context, RestorePartInput input)
    {
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
            case "table" when layout.Value.TenantData.Contains(part.Name):
                var partition = storage.TenantTable(part.Name).For(target);
                var rule = layout.Value.SandboxRules.GetValueOrDefault(part.Name);
                var batch = new List<TableTransactionAction>(Batch);
                await foreach (var line in lines)
                {
                    var entity = BackupRows.Read(line, target.Value);
                    rule?.Invoke(entity, restore.At);
                    batch.Add(new TableTransactionAction(TableTransactionActionType.UpsertReplace, entity));
                    if (batch.Count == Batch)
                    {
                        await partition.SubmitTransactionAsync(batch, CancellationToken.None);
                        written += batch.Count;
                        batch.Clear();
                    }
                }

                if (batch.Count > 0)
                {
                    await partition.SubmitTransactionAsync(batch, CancellationToken.None);
                    written += batch.Count;
                }

                break;
            case "blobs" when layout.Value.TenantBlobs.Contains(part.Name[BackupFiles.BlobsPrefix.Length..]):
                var container = storage.Container(part.Name[BackupFiles.BlobsPrefix.Length..]);
                await foreach (var line in lines)
                {
                    var name = line.GetProperty("name").GetString()!;
                    await container.GetBlobClient($"{target.Value}/{name}").UploadAsync(BinaryData.FromBytes(line.GetProperty("data").GetBytesFromBase64()),
                        new Azure.Storage.Blobs.Models.BlobUploadOptions { HttpHeaders = new() { ContentType = line.GetProperty("contentType").GetString() } });
                    written++;
                }

                break;
            case "tenant":
                // Written last, by RestoreFinish: the tenant row is what makes the copy visible.
                break;
            default:
                throw new InvalidOperationException($"This deployment cannot restore part '{part.Name}' ({part.Kind}).");
        }

        return written;
    }
}

/// <summary>
/// Makes the new tenant exist: its directory row (the backup's name and plan, the new id and slug), then announces
/// <c>restore.succeeded</c> in the tenant the backup came from (audited there).
/// </summary>
public sealed class RestoreFinish(StorageAccount storage, BackupStore store, BackupFiles files, EventPublisher events) : TaskActivity<RestoreFinishInput, bool>
{
    public const string Name = "restores.finish";

    public override async Task<bool> RunAsync(TaskActivityContext context, RestoreFinishInput input)
    {
        var restore = input.Restore;
        var source = new TenantId(restore.SourceTenantId);
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
        tenant.PartitionKey = TenantDirectory.Partition;
        tenant.RowKey = TenantEntity.KeyFor(restore.TargetTenantId);
        tenant[nameof(TenantEntity.Id)] = restore.TargetTenantId;
        tenant[nameof(TenantEntity.Slug)] = restore.TargetSlug;
        tenant[nameof(TenantEntity.CreatedAt)] = restore.At;
        tenant["RestoredFrom"] = $"{restore.SourceTenantId}/{restore.BackupId}";
        await storage.Table(TenantDirectory.TableName).UpsertEntityAsync(tenant, TableUpdateMode.Replace);

        await events.PublishAsync(source, new PlatformEvent("restore.succeeded", input.Actor.ToCaller(source).Actor, "backup", restore.BackupId,
            new Dictionary<string, object?>
            {
                ["target"] = "new",
                ["targetTenantId"] = restore.TargetTenantId,
                ["targetTenantSlug"] = restore.TargetSlug,
                ["entities"] = input.Rows,
            })
        {
            StableId = Ids.Derived(restore.At, $"restore.succeeded\n{restore.SourceTenantId}\n{restore.BackupId}\n{restore.TargetTenantId}"),
        },
            CancellationToken.None);
        return true;
    }
}

/// <summary>Deletes what a failed or cancelled restore wrote into the new tenant (every declared table and container) and frees the slug.</summary>
public sealed class RestoreAbandon(StorageAccount storage, IOptions<StorageLayout> layout) : TaskActivity<RestoreStepInput, bool>
{
    public const string Name = "restores.abandon";

    public override async Task<bool> RunAsync(TaskActivityContext context, RestoreStepInput input)
    {
        var target = new TenantId(input.TargetTenantId);
        var directory = storage.Table(TenantDirectory.TableName);
        if ((await directory.GetEntityIfExistsAsync<TableEntity>(TenantDirectory.Partition, TenantEntity.KeyFor(target.Value))).HasValue)
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

        var slug = await directory.GetEntityIfExistsAsync<TenantSlugEntity>(TenantDirectory.Partition, TenantSlugEntity.KeyFor(input.TargetSlug));
        if (slug.HasValue && slug.Value!.TenantId == target.Value)
        {
            await directory.DeleteEntityAsync(TenantDirectory.Partition, slug.Value.RowKey, slug.Value.ETag);
        }

        return true;
    }
}
