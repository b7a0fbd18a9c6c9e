using System.Buffers;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;

namespace Platform.Functions.Backups;

/// <summary>
/// Writes and reads a backup's files. A table's part is a consistent snapshot of the tenant's partition: rows written
/// while it is read are either in it or not, never half of one transaction (<see cref="WriteTableAsync"/>).
/// </summary>
public sealed class BackupFiles(StorageAccount storage, BackupStore store, IOptions<StorageLayout> layout, TenantDirectory tenants, IServiceProvider services)
{
    /// <summary>Changed rows a snapshot re-reads at most before it gives up (and the activity's retry starts over).</summary>
    public const int MaxChangedRows = 50_000;

    /// <summary>Rounds of reconciling before a partition that never stops changing fails the part.</summary>
    private const int MaxRounds = 20;

    public const string TenantPart = "tenant";

    /// <summary>
    /// Runs between a table's first pass and its reconciling (tests only: a write there is a write "while the backup
    /// runs", at a chosen point instead of a lucky one).
    /// </summary>
    internal Func<TenantId, string, Task>? AfterFirstPass { get; set; }

    /// <summary>
    /// Runs before a restore writes a part (tests only: a part that fails on purpose, to see a restore over the tenant
    /// roll back, or fail to).
    /// </summary>
    internal Func<RestorePartInput, Task>? BeforeRestoringPart { get; set; }
    public const string BlobsPrefix = "blobs:";

    /// <summary>The part of job history summaries (see <see cref="WriteJobsAsync"/>).</summary>
    public const string JobsPart = "jobs";

    /// <summary>Every part a backup of this deployment holds, by the capabilities' declarations.</summary>
    public IReadOnlyList<(string Name, string Kind)> PlannedParts() =>
        [
            (TenantPart, "tenant"),
            .. layout.Value.TenantData.Select(t => (t, "table")),
            .. layout.Value.TenantBlobs.Select(c => (BlobsPrefix + c, "blobs")),
            .. services.GetService<TaskHubClient>() is null ? [] : new[] { (JobsPart, "jobs") },
        ];

    public static string FileOf(string name, string kind) => kind switch
    {
        "table" => $"tables/{name}.ndjson.gz",
        "blobs" => $"blobs/{name[BlobsPrefix.Length..]}.ndjson.gz",
        "jobs" => $"{JobsPart}.ndjson.gz",
        _ => $"{TenantPart}.ndjson.gz",
    };

    public Task<BackupPart> WritePartAsync(TenantId tenant, string backupId, byte[] key, string name, string kind, CancellationToken cancellationToken) => kind switch
    {
        "table" when layout.Value.TenantData.Contains(name) => WriteTableAsync(tenant, backupId, key, name, cancellationToken),
        "blobs" when layout.Value.TenantBlobs.Contains(name[BlobsPrefix.Length..]) => WriteBlobsAsync(tenant, backupId, key, name, cancellationToken),
        "tenant" => WriteTenantAsync(tenant, backupId, key, cancellationToken),
        "jobs" when name == JobsPart => WriteJobsAsync(tenant, backupId, key, cancellationToken),
        _ => throw new InvalidOperationException($"This deployment has no backup part '{name}' of kind '{kind}'."),
    };

    /// <summary>
    /// The tenant's partition of <paramref name="table"/>, as it was at one moment. The rows are streamed into the part
    /// as they are read; whatever changed meanwhile is found afterwards and re-read until one round finds nothing more
    /// changed, and only then, if anything did, the part is rewritten with those rows' final state. A round:
    /// <list type="number">
    /// <item>Rows under the table's <see cref="ChangeLog"/>: its position is read before the scan, and each round reads
    /// the entries after the last position, which name every logged row a transaction touched since.</item>
    /// <item>Every other row: a pass reads only keys and ETags (a row-key range query that skips the logged prefixes)
    /// and compares them with what was read; rows that differ, appeared or are gone are named.</item>
    /// </list>
    /// The named rows are re-read and the next round starts. A round that names nothing proves that no logged row
    /// changed between the re-reads and its log read, and no other row between its read and that round's pass (which
    /// comes after the log read): the part is the partition as it was at that log read, so a transaction is in it
    /// whole or not at all.
    /// </summary>
    public async Task<BackupPart> WriteTableAsync(TenantId tenant, string backupId, byte[] key, string table, CancellationToken cancellationToken)
    {
        var partition = storage.TenantTable(table).For(tenant);
        var loggedPrefixes = layout.Value.ChangeLogged.TryGetValue(table, out var prefixes) ? prefixes : [];
        var start = loggedPrefixes.Length > 0 ? await ChangeLog.PositionAsync(partition, cancellationToken) : null;
        var etags = new Dictionary<string, ETag>(StringComparer.Ordinal);
        var file = FileOf(table, "table");
        var blob = store.File(tenant, backupId, file);
        var context = BackupFormat.Context(tenant.Value, backupId, file);

        var (count, bytes, sha) = await WriteLinesAsync(blob, key, context, async (emit, ct) =>
        {
            long rows = 0;
            await foreach (var row in partition.QueryAsync<TableEntity>(maxPerPage: 1000, cancellationToken: ct))
            {
                if (BackupRows.IsPlumbing(row.RowKey))
                {
                    continue;
                }

                if (!ChangeLog.IsLogged(row.RowKey, loggedPrefixes))
                {
                    etags.Add(row.RowKey, row.ETag);
                }

                await emit(row);
                rows++;
            }

            return rows;
        }, cancellationToken);

        if (AfterFirstPass is { } hook)
        {
            await hook(tenant, table);
        }

        var changed = await ReconcileAsync(partition, loggedPrefixes, start, etags, cancellationToken);
        if (changed.Count == 0)
        {
            return new BackupPart(table, "table", file, count, bytes, sha);
        }

        // Rewrite: the first pass's lines without the changed rows, then the changed rows as they finally are.
        var rewritten = FileOf(table + ".r", "table");
        var rewrittenBlob = store.File(tenant, backupId, rewritten);
        var result = await WriteLinesAsync(rewrittenBlob, key, BackupFormat.Context(tenant.Value, backupId, rewritten), async (emit, ct) =>
        {
            long rows = 0;
            await foreach (var line in ReadLinesAsync(blob, key, context, table, ct))
            {
                if (!changed.ContainsKey(BackupRows.KeyOf(line)))
                {
                    await emit(BackupRows.Read(line, tenant.Value));
                    rows++;
                }
            }

            foreach (var row in changed.Values)
            {
                if (row is not null && !BackupRows.IsPlumbing(row.RowKey))
                {
                    await emit(row);
                    rows++;
                }
            }

            return rows;
        }, cancellationToken);
        await blob.DeleteIfExistsAsync(cancellationToken: cancellationToken);
        return new BackupPart(table, "table", rewritten, result.Count, result.Bytes, result.Sha256);
    }

    /// <summary>The rows that changed since the scan, each as it finally is (null: deleted); see <see cref="WriteTableAsync"/>.</summary>
    private static async Task<Dictionary<string, TableEntity?>> ReconcileAsync(
        TenantPartition partition, string[] loggedPrefixes, LogPosition? position, Dictionary<string, ETag> etags, CancellationToken cancellationToken)
    {
        var changed = new Dictionary<string, TableEntity?>(StringComparer.Ordinal);
        var unlogged = UnloggedRows(loggedPrefixes);
        for (var round = 0; round < MaxRounds && changed.Count <= MaxChangedRows; round++)
        {
            var named = new HashSet<string>(StringComparer.Ordinal);
            if (position is not null)
            {
                var read = await ChangeLog.Read(partition, position, "", MaxChangedRows, cancellationToken)
                    ?? throw new InvalidOperationException($"The {partition.Table} rows changed too much (or for too long) while they were read; the part starts over.");
                named.UnionWith(read.Keys);
                position = read.Last;
            }

            var differ = new HashSet<string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            await foreach (var row in partition.QueryWhereAsync<TableEntity>(unlogged, 1000, ["RowKey"], cancellationToken))
            {
                if (BackupRows.IsPlumbing(row.RowKey) || ChangeLog.IsLogged(row.RowKey, loggedPrefixes))
                {
                    continue;
                }

                seen.Add(row.RowKey);
                if (!etags.TryGetValue(row.RowKey, out var known) || known != row.ETag)
                {
                    differ.Add(row.RowKey);
                }
            }

            differ.UnionWith(etags.Keys.Where(k => !seen.Contains(k)));
            if (named.Count == 0 && differ.Count == 0)
            {
                return changed;
            }

            named.UnionWith(differ);
            await ReReadAsync(partition, named, changed, cancellationToken);
            foreach (var key in differ)
            {
                if (changed[key] is { } row)
                {
                    etags[key] = row.ETag;
                }
                else
                {
                    etags.Remove(key);
                }
            }
        }

        throw new InvalidOperationException($"The {partition.Table} rows kept changing while they were read; the part starts over.");
    }

    /// <summary>A filter for the row keys outside the logged prefixes: ranges between them, so the pass skips logged rows.</summary>
    private static FormattableString UnloggedRows(string[] loggedPrefixes)
    {
        if (loggedPrefixes.Length == 0)
        {
            return $"RowKey ge {""}";
        }

        // Each prefix p covers [p, p with its last character incremented); the complement is the gaps between them.
        var ranges = loggedPrefixes.Order(StringComparer.Ordinal).Select(p => (From: p, To: p[..^1] + (char)(p[^1] + 1))).ToList();
        var parts = new List<string>();
        var args = new List<object?>();
        parts.Add($"RowKey lt {{{args.Count}}}");
        args.Add(ranges[0].From);
        for (var i = 0; i < ranges.Count - 1; i++)
        {
            parts.Add($"(RowKey ge {{{args.Count}}} and RowKey lt {{{args.Count + 1}}})");
            args.Add(ranges[i].To);
            args.Add(ranges[i + 1].From);
        }

        parts.Add($"RowKey ge {{{args.Count}}}");
        args.Add(ranges[^1].To);
        return System.Runtime.CompilerServices.FormattableStringFactory.Create(string.Join(" or ", parts), [.. args]);
    }

    private static async Task ReReadAsync(TenantPartition partition, IEnumerable<string> keys, Dictionary<string, TableEntity?> into, CancellationToken cancellationToken)
    {
        var rows = new System.Collections.Concurrent.ConcurrentDictionary<string, TableEntity?>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (key, ct) =>
            rows[key] = await partition.GetAsync<TableEntity>(key, ct));
        foreach (var (key, row) in rows)
        {
            into[key] = row;
        }
    }

    /// <summary>Every blob of the tenant in a container (named <c>{tenant}/...</c>): one line each, with its content type and bytes.</summary>
    private async Task<BackupPart> WriteBlobsAsync(TenantId tenant, string backupId, byte[] key, string name, CancellationToken cancellationToken)
    {
        var container = storage.Container(name[BlobsPrefix.Length..]);
        var file = FileOf(name, "blobs");
        var prefix = tenant.Value + "/";
        var (count, bytes, sha) = await WriteRawLinesAsync(store.File(tenant, backupId, file), key, BackupFormat.Context(tenant.Value, backupId, file), async (emit, ct) =>
        {
            long blobs = 0;
            await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, ct))
            {
                BlobDownloadResult content;
                try
                {
                    content = (await container.GetBlobClient(item.Name).DownloadContentAsync(ct)).Value;
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    continue;
                }

                await emit(writer =>
                {
                    writer.WriteStartObject();
                    writer.WriteString("name", item.Name[prefix.Length..]);
                    writer.WriteString("contentType", content.Details.ContentType);
                    writer.WriteBase64String("data", content.Content.ToMemory().Span);
                    writer.WriteEndObject();
                });
                blobs++;
            }

            return blobs;
        }, cancellationToken);
        return new BackupPart(name, "blobs", file, count, bytes, sha);
    }

    /// <summary>The tenant's own row of the tenant directory (name, slug, settings): what a restore needs to make a tenant.</summary>
    private async Task<BackupPart> WriteTenantAsync(TenantId tenant, string backupId, byte[] key, CancellationToken cancellationToken)
    {
        var row = await tenants.RowAsync(tenant, cancellationToken);
        var file = FileOf(TenantPart, "tenant");
        var (count, bytes, sha) = await WriteLinesAsync(store.File(tenant, backupId, file), key, BackupFormat.Context(tenant.Value, backupId, file), async (emit, ct) =>
        {
            if (row is null)
            {
                return 0;
            }

            await emit(row);
            return 1;
        }, cancellationToken);
        return new BackupPart(TenantPart, "tenant", file, count, bytes, sha);
    }

    /// <summary>
    /// The tenant's job history as summaries, one line a job: type, status, times, counts, error and note (not its
    /// parameters or files). Kept for the record: a restore writes none of it back, since jobs are the durable
    /// engine's instances rather than rows of the tenant.
    /// </summary>
    private async Task<BackupPart> WriteJobsAsync(TenantId tenant, string backupId, byte[] key, CancellationToken cancellationToken)
    {
        var client = services.GetRequiredService<TaskHubClient>();
        var jobs = services.GetRequiredService<JobCommands>();
        var file = FileOf(JobsPart, "jobs");
        var (count, bytes, sha) = await WriteLinesAsync(store.File(tenant, backupId, file), key, BackupFormat.Context(tenant.Value, backupId, file), async (emit, ct) =>
        {
            long rows = 0;
            var query = new OrchestrationQuery(InstanceIdPrefix: JobIds.TenantPrefix(tenant), FetchInputsAndOutputs: true);
            await foreach (var instance in client.GetAllInstancesAsync(query).WithCancellation(ct))
            {
                if (!JobIds.TryParse(instance.InstanceId, out var owner, out var jobId) || owner != tenant)
                {
                    continue;
                }

                var job = await jobs.ViewAsync(tenant, instance, jobId, ct);
                var row = new TableEntity(tenant.Value, "job:" + job.Id)
                {
                    ["Type"] = job.Type,
                    ["Status"] = job.Status,
                    ["CreatedAt"] = job.CreatedAt,
                    ["Total"] = job.Progress.Total,
                    ["Succeeded"] = job.Progress.Succeeded,
                    ["Failed"] = job.Progress.Failed,
                };
                foreach (var (name, value) in new (string, object?)[] { ("StartedAt", job.StartedAt), ("FinishedAt", job.FinishedAt), ("Error", job.Error), ("Note", job.Note) })
                {
                    if (value is not null)
                    {
                        row[name] = value;
                    }
                }

                await emit(row);
                rows++;
            }

            return rows;
        }, cancellationToken);
        return new BackupPart(JobsPart, "jobs", file, count, bytes, sha);
    }

    private static Task<(long Count, long Bytes, string Sha256)> WriteLinesAsync(
        BlobClient blob, byte[] key, string context, Func<Func<TableEntity, Task>, CancellationToken, Task<long>> produce, CancellationToken cancellationToken) =>
        WriteRawLinesAsync(blob, key, context, (emit, ct) => produce(row => emit(writer => BackupRows.Write(writer, row)), ct), cancellationToken);

    /// <summary>Streams NDJSON lines through gzip and sealing into the blob: one segment in memory at a time.</summary>
    private static async Task<(long Count, long Bytes, string Sha256)> WriteRawLinesAsync(
        BlobClient blob, byte[] key, string context, Func<Func<Action<Utf8JsonWriter>, Task>, CancellationToken, Task<long>> produce, CancellationToken cancellationToken)
    {
        await using var output = await blob.OpenWriteAsync(overwrite: true, cancellationToken: cancellationToken);
        using var sealing = new SealingStream(output, key, context);
        long count;
        await using (var gzip = new GZipStream(sealing, CompressionLevel.Fastest, leaveOpen: true))
        {
            var buffer = new ArrayBufferWriter<byte>(4096);
            await using var writer = new Utf8JsonWriter(buffer);
            count = await produce(async write =>
            {
                buffer.ResetWrittenCount();
                writer.Reset(buffer);
                write(writer);
                await writer.FlushAsync(cancellationToken);
                await gzip.WriteAsync(buffer.WrittenMemory, cancellationToken);
                gzip.WriteByte((byte)'\n');
            }, cancellationToken);
        }

        await sealing.FinishAsync(cancellationToken);
        return (count, sealing.StoredBytes, sealing.Sha256!);
    }

    /// <summary>The lines of a part, each checked as its segment opens; damage is a <see cref="BackupIntegrityException"/> naming <paramref name="part"/>.</summary>
    public async IAsyncEnumerable<JsonElement> ReadLinesAsync(BlobClient blob, byte[] key, string context, string part, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var opening = await OpenAsync(blob, key, context, part, cancellationToken);
        await using var gzip = new GZipStream(opening, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        while (true)
        {
            string? line;
            try
            {
                line = await reader.ReadLineAsync(cancellationToken);
            }
            catch (InvalidDataException)
            {
                throw new BackupIntegrityException(part, "the data is not valid compressed NDJSON");
            }

            if (line is null)
            {
                break;
            }

            using var document = JsonDocument.Parse(line);
            yield return document.RootElement.Clone();
        }

        await opening.DrainAsync(cancellationToken);
    }

    /// <summary>
    /// Checks one part against the manifest: every segment opens, the stored bytes hash to the recorded SHA-256, and
    /// it holds the recorded number of lines.
    /// </summary>
    public async Task<long> VerifyPartAsync(TenantId tenant, string backupId, byte[] key, BackupPart part, CancellationToken cancellationToken)
    {
        var blob = store.File(tenant, backupId, part.File);
        await using var opening = await OpenAsync(blob, key, BackupFormat.Context(tenant.Value, backupId, part.File), part.Name, cancellationToken);
        long lines = 0;
        await using (var gzip = new GZipStream(opening, CompressionMode.Decompress, leaveOpen: true))
        {
            var buffer = new byte[1 << 16];
            try
            {
                int read;
                while ((read = await gzip.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    lines += buffer.AsSpan(0, read).Count((byte)'\n');
                }
            }
            catch (InvalidDataException)
            {
                throw new BackupIntegrityException(part.Name, "the data is not valid compressed NDJSON");
            }
        }

        await opening.DrainAsync(cancellationToken);
        if (!string.Equals(opening.Sha256, part.Sha256, StringComparison.Ordinal))
        {
            throw new BackupIntegrityException(part.Name, "its SHA-256 differs from the manifest's");
        }

        if (lines != part.Count)
        {
            throw new BackupIntegrityException(part.Name, $"it holds {lines} rows, the manifest says {part.Count}");
        }

        return opening.StoredBytes;
    }

    /// <summary>Writes the manifest, sealed like the parts; its stored bytes' SHA-256 is the backup's.</summary>
    public async Task<(long Bytes, string Sha256)> WriteManifestAsync(TenantId tenant, byte[] key, BackupManifest manifest, CancellationToken cancellationToken)
    {
        var blob = store.File(tenant, manifest.BackupId, BackupManifest.File);
        await using var output = await blob.OpenWriteAsync(overwrite: true, cancellationToken: cancellationToken);
        using var sealing = new SealingStream(output, key, BackupFormat.Context(tenant.Value, manifest.BackupId, BackupManifest.File));
        await sealing.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(manifest, BackupManifest.Json), cancellationToken);
        await sealing.FinishAsync(cancellationToken);
        return (sealing.StoredBytes, sealing.Sha256!);
    }

    /// <summary>
    /// Reads the manifest and checks that it is this backup's: it must open under this backup's key and context, hash to
    /// the row's SHA-256, and name this tenant and backup. A manifest copied from another backup or tenant fails here.
    /// </summary>
    public async Task<BackupManifest> ReadManifestAsync(TenantId tenant, string backupId, byte[] key, string? expectedSha256, CancellationToken cancellationToken)
    {
        var blob = store.File(tenant, backupId, BackupManifest.File);
        await using var opening = await OpenAsync(blob, key, BackupFormat.Context(tenant.Value, backupId, BackupManifest.File), BackupManifest.File, cancellationToken);
        using var plain = new MemoryStream();
        await opening.CopyToAsync(plain, cancellationToken);
        if (expectedSha256 is not null && !string.Equals(opening.Sha256, expectedSha256, StringComparison.Ordinal))
        {
            throw new BackupIntegrityException(BackupManifest.File, "its SHA-256 differs from the backup's");
        }

        BackupManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<BackupManifest>(plain.ToArray(), BackupManifest.Json);
        }
        catch (JsonException)
        {
            manifest = null;
        }

        if (manifest is null || manifest.FormatVersion != BackupFormat.FormatVersion || manifest.Parts is null)
        {
            throw new BackupIntegrityException(BackupManifest.File, "not a manifest this version can read");
        }

        if (manifest.TenantId != tenant.Value || manifest.BackupId != backupId)
        {
            throw new BackupIntegrityException(BackupManifest.File, "it belongs to another tenant or backup");
        }

        return manifest;
    }

    private static async Task<OpeningStream> OpenAsync(BlobClient blob, byte[] key, string context, string part, CancellationToken cancellationToken)
    {
        try
        {
            return new OpeningStream(await blob.OpenReadAsync(cancellationToken: cancellationToken), key, context, part);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new BackupIntegrityException(part, "its file is missing");
        }
    }
}
