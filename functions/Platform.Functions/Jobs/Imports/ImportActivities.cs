using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Storage.Blobs.Models;
using Microsoft.DurableTask;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Jobs.Files;

namespace Platform.Functions.Jobs.Imports;

/// <summary>
/// One row as a chunk file stores it: its number in the uploaded file, its cells, and its secret cells (passwords)
/// sealed with the app's data key, bound to the job, row and column.
/// </summary>
internal sealed record ChunkRow(
    [property: JsonPropertyName("n")] long Number,
    [property: JsonPropertyName("v")] Dictionary<string, string?> Values,
    [property: JsonPropertyName("s")] Dictionary<string, string>? Sealed = null)
{
    public static string Binding(string tenant, string jobId, long row, string column) => $"import:{tenant}:{jobId}:{row}:{column.ToLowerInvariant()}";
}

/// <summary>A failed row as a chunk's error file stores it: what failed, and the row itself (so retry can re-import it).</summary>
internal sealed record FailedRow(
    [property: JsonPropertyName("n")] long Number,
    [property: JsonPropertyName("column")] string? Column,
    [property: JsonPropertyName("value")] string? Value,
    [property: JsonPropertyName("message")] string? Message,
    [property: JsonPropertyName("v")] Dictionary<string, string?> Values);

internal static class ChunkJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static async IAsyncEnumerable<T> ReadLinesAsync<T>(Stream stream, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                yield return JsonSerializer.Deserialize<T>(line, Options)!;
            }
        }
    }
}

/// <summary>
/// Reads the upload once, streamed, and writes it as chunk files of at most <see cref="ImportParameters.ChunkRows"/>
/// rows (or <see cref="ImportParameters.ChunkBytes"/>): the chunks are what the apply activities name. A file that
/// cannot be read (broken quoting, a bad header, a zip bomb ...) ends here with a message for the job's error. Run
/// twice it writes the same chunks again.
/// </summary>
public sealed class ImportSplit(JobFiles files, SecretBox secrets, IServiceProvider services) : TaskActivity<JobInput<ImportParameters>, ImportSplit.Result>
{
    public const string Name = "import.split";

    /// <summary>
    /// Splits at once per instance: each holds an xlsx's shared strings or a parse buffer, so the instance's memory
    /// stays bounded however many imports arrive together.
    /// </summary>
    private static readonly SemaphoreSlim Splitting = new(2);

    /// <param name="InFileOrder">The kind's rows may depend on earlier rows: chunks go one at a time.</param>
    public sealed record Result(long Rows, int Chunks, string? Error, bool InFileOrder = false);

    public override async Task<Result> RunAsync(TaskActivityContext context, JobInput<ImportParameters> input)
    {
        // A split that finished (a re-run after a crash, a resumed job) is read back, not redone: its upload is gone.
        var manifest = files.Named(input.Tenant, input.JobId, "split.json");
        if (await ReadAsync<Result>(manifest) is { } done)
        {
            return done;
        }

        await Splitting.WaitAsync();
        try
        {
            var result = await SplitAsync(input);
            await manifest.UploadAsync(BinaryData.FromObjectAsJson(result, ChunkJson.Options), overwrite: true);

            // The chunks hold everything now, secrets sealed: the plain upload is not kept.
            await files.Upload(input.Tenant, input.JobId).DeleteIfExistsAsync();
            return result;
        }
        finally
        {
            Splitting.Release();
        }
    }

    internal static async Task<T?> ReadAsync<T>(Azure.Storage.Blobs.BlobClient blob)
    {
        try
        {
            return (await blob.DownloadContentAsync()).Value.Content.ToObjectFromJson<T>(ChunkJson.Options);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return default;
        }
    }

    private async Task<Result> SplitAsync(JobInput<ImportParameters> input)
    {
        var parameters = input.Parameters;
        var kind = services.GetRequiredKeyedService<IImportKind>(parameters.Kind);
        var sensitive = kind.Columns.Where(c => c.Sensitive).Select(c => c.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);

        // Rows repeat their columns: each name is checked against the kind once, not once per cell.
        var accepted = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var chunks = 0;
        long rows = 0;
        var buffer = new MemoryStream();
        var spare = new MemoryStream();
        using var json = new Utf8JsonWriter(buffer);
        var inChunk = 0;

        // The chunk written last is still on its way while the next one fills: reading and writing overlap, and at
        // most two chunks' buffers (2 x ChunkBytes) are held.
        Task uploading = Task.CompletedTask;

        // A file error ends the split whatever became of the chunk still uploading: its chunks are never applied.
        async Task SettledAsync()
        {
            try
            {
                await uploading;
            }
            catch (RequestFailedException)
            {
            }
        }

        async Task FlushAsync()
        {
            if (inChunk == 0)
            {
                return;
            }

            await uploading;
            var full = buffer;
            full.Position = 0;
            uploading = files.Chunk(input.Tenant, input.JobId, chunks).UploadAsync(full, overwrite: true, CancellationToken.None);
            (buffer, spare) = (spare, full);
            buffer.SetLength(0);
            json.Reset(buffer);
            chunks++;
            inChunk = 0;
        }

        try
        {
            await foreach (var row in SourceRowsAsync(input))
            {
                foreach (var column in row.Values.Keys)
                {
                    if (!accepted.Contains(column) && !(kind.Accepts(column) && accepted.Add(column)))
                    {
                        await SettledAsync();
                        return new Result(0, 0, $"Row {row.Number}: unknown column '{Clip(column)}'. The {parameters.Kind} columns are: {string.Join(", ", kind.Columns.Select(c => c.Name))}.");
                    }
                }

                var stored = row;
                if (sensitive.Count > 0 && row.Values.Any(v => v.Value is not null && sensitive.Contains(v.Key)))
                {
                    var values = new Dictionary<string, string?>(row.Values, StringComparer.OrdinalIgnoreCase);
                    var sealedCells = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                    foreach (var column in sensitive)
                    {
                        if (values.Remove(column, out var secret) && secret is not null)
                        {
                            sealedCells[column] = secrets.Seal(Encoding.UTF8.GetBytes(secret), ChunkRow.Binding(input.TenantId, input.JobId, row.Number, column));
                        }
                    }

                    stored = row with { Values = values, Sealed = sealedCells };
                }

                JsonSerializer.Serialize(json, stored, ChunkJson.Options);
                json.Flush();
                json.Reset(buffer);
                buffer.WriteByte((byte)'\n');
                rows++;
                inChunk++;
                if (inChunk >= parameters.ChunkRows || buffer.Length >= parameters.ChunkBytes)
                {
                    await FlushAsync();
                }
            }

            await FlushAsync();
            await uploading;
        }
        catch (TabularFileException bad)
        {
            await SettledAsync();
            return new Result(0, 0, bad.Message);
        }

        return new Result(rows, chunks, null, kind.KeepsFileOrder);
    }

    private async IAsyncEnumerable<ChunkRow> SourceRowsAsync(JobInput<ImportParameters> input)
    {
        if (input.Parameters.RetryOf is { } earlier)
        {
            // A retry re-imports the rows the earlier job reported failed, with their original row numbers.
            var split = await ReadAsync<Result>(files.Named(input.Tenant, earlier, "split.json"))
                ?? throw new TabularFileException("The job this retries is no longer kept (finished jobs are purged after the retention period).");
            for (var chunk = 0; chunk < split.Chunks; chunk++)
            {
                var errors = files.ChunkErrors(input.Tenant, earlier, chunk);
                Stream stream;
                try
                {
                    stream = (await errors.DownloadStreamingAsync(cancellationToken: CancellationToken.None)).Value.Content;
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    continue;
                }

                await using (stream)
                {
                    await foreach (var failed in ChunkJson.ReadLinesAsync<FailedRow>(stream, CancellationToken.None))
                    {
                        yield return new ChunkRow(failed.Number, failed.Values);
                    }
                }
            }
        }
        else
        {
            await foreach (var row in UploadedRowsAsync(input))
            {
                yield return row;
            }
        }
    }

    private async IAsyncEnumerable<ChunkRow> UploadedRowsAsync(JobInput<ImportParameters> input)
    {
        var format = Enum.Parse<TabularFormat>(input.Parameters.Format, ignoreCase: true);
        var blob = files.Upload(input.Tenant, input.JobId);

        // CSV and JSON are read front to back: one streamed download (the SDK resumes it where it broke off). An xlsx
        // is a zip read at random: a seekable stream that fetches the ranges asked for.
        await using var upload = format == TabularFormat.Xlsx
            ? await blob.OpenReadAsync(new BlobOpenReadOptions(allowModifications: false))
            : (await blob.DownloadStreamingAsync()).Value.Content;
        await foreach (var row in TabularReader.ReadAsync(upload, format, new TabularLimits(), CancellationToken.None))
        {
            // The readers give each row a dictionary of its own, already keyed without regard to case.
            var values = row.Values is Dictionary<string, string?> own && ReferenceEquals(own.Comparer, StringComparer.OrdinalIgnoreCase)
                ? own
                : new Dictionary<string, string?>(row.Values, StringComparer.OrdinalIgnoreCase);
            yield return new ChunkRow(row.Number, values);
        }
    }

    private static string Clip(string text) => text.Length <= 64 ? text : text[..64] + "…";
}

/// <summary>
/// Applies one chunk through its kind (the owning capability's commands) and records the outcome: first the failed
/// rows, then the chunk's result. A chunk whose result exists was applied already (a re-run after a crash or a
/// resumed job): its recorded result is returned and nothing is applied again.
/// </summary>
public sealed class ImportApply(JobFiles files, SecretBox secrets, IServiceProvider services) : TaskActivity<ImportApply.Request, ImportApply.Result>
{
    public const string Name = "import.apply";

    public sealed record Request(JobInput<ImportParameters> Job, int Chunk);

    public sealed record Result(int Rows, int Succeeded, int Failed);

    public override async Task<Result> RunAsync(TaskActivityContext context, Request request)
    {
        var job = request.Job;
        var recorded = files.ChunkResult(job.Tenant, job.JobId, request.Chunk);
        try
        {
            var existing = await recorded.DownloadContentAsync();
            return existing.Value.Content.ToObjectFromJson<Result>(ChunkJson.Options)!;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }

        var rows = new List<TabularRow>();
        await using (var chunk = (await files.Chunk(job.Tenant, job.JobId, request.Chunk).DownloadStreamingAsync()).Value.Content)
        {
            await foreach (var row in ChunkJson.ReadLinesAsync<ChunkRow>(chunk, CancellationToken.None))
            {
                var values = new Dictionary<string, string?>(row.Values, StringComparer.OrdinalIgnoreCase);
                foreach (var (column, sealedText) in row.Sealed ?? [])
                {
                    values[column] = Encoding.UTF8.GetString(secrets.Open(sealedText, ChunkRow.Binding(job.TenantId, job.JobId, row.Number, column)));
                }

                rows.Add(new TabularRow(row.Number, values));
            }
        }

        var kind = services.GetRequiredKeyedService<IImportKind>(job.Parameters.Kind);
        var outcomes = await kind.ApplyAsync(new ImportBatch(job.Caller, job.JobId, job.Parameters.Mode, job.Parameters.DryRun, rows), CancellationToken.None);

        var byNumber = rows.ToDictionary(r => r.Number);
        var failed = outcomes.Where(o => !o.Succeeded).ToList();
        if (failed.Count > 0)
        {
            // Failed rows are kept for the error report and for retry, secrets (passwords) never.
            var sensitive = kind.Columns.Where(c => c.Sensitive).Select(c => c.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var errors = new MemoryStream();
            foreach (var outcome in failed)
            {
                var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
                if (byNumber.TryGetValue(outcome.Row, out var row))
                {
                    foreach (var (column, value) in row.Values)
                    {
                        if (!sensitive.Contains(column))
                        {
                            values[column] = value;
                        }
                    }
                }

                var shown = outcome.Column is { } failedColumn && sensitive.Contains(failedColumn) ? null : outcome.Value;
                await JsonSerializer.SerializeAsync(errors, new FailedRow(outcome.Row, outcome.Column, shown, outcome.Message, values), ChunkJson.Options);
                errors.WriteByte((byte)'\n');
            }

            errors.Position = 0;
            await files.ChunkErrors(job.Tenant, job.JobId, request.Chunk).UploadAsync(errors, overwrite: true);
        }
        else
        {
            // A run cut off after recording failures that this run no longer has must not leave them behind.
            await files.ChunkErrors(job.Tenant, job.JobId, request.Chunk).DeleteIfExistsAsync();
        }

        var result = new Result(rows.Count, outcomes.Count - failed.Count, failed.Count);
        await recorded.UploadAsync(BinaryData.FromObjectAsJson(result, ChunkJson.Options), overwrite: true);
        return result;
    }
}

/// <summary>Joins the chunks' failed rows into one CSV error report: row, column, value, message.</summary>
public sealed class ImportReport(JobFiles files) : TaskActivity<ImportReport.Request, JobFile>
{
    public const string Name = "import.report";

    public sealed record Request(string TenantId, string JobId, int Chunks);

    public static readonly IReadOnlyList<string> Columns = ["row", "column", "value", "message"];

    public override async Task<JobFile> RunAsync(TaskActivityContext context, Request request)
    {
        var tenant = new Storage.TenantId(request.TenantId);
        var report = files.Named(tenant, request.JobId, "error-report.csv");
        await using (var output = await report.OpenWriteAsync(overwrite: true))
        await using (var writer = TabularWriter.Create(output, TabularFormat.Csv, Columns))
        {
            for (var chunk = 0; chunk < request.Chunks; chunk++)
            {
                Stream errors;
                try
                {
                    errors = (await files.ChunkErrors(tenant, request.JobId, chunk).DownloadStreamingAsync()).Value.Content;
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    continue;
                }

                await using (errors)
                {
                    await foreach (var failed in ChunkJson.ReadLinesAsync<FailedRow>(errors, CancellationToken.None))
                    {
                        await writer.WriteRowAsync([failed.Number.ToString(System.Globalization.CultureInfo.InvariantCulture), failed.Column, failed.Value, failed.Message], CancellationToken.None);
                    }
                }
            }
        }

        return new JobFile(report.Name, "text/csv", $"job-{request.JobId}-errors.csv");
    }
}

/// <summary>
/// Deletes an import's upload and chunks once the job can no longer be resumed (it succeeded or completed with
/// errors): the tenant's file, passwords included, is not kept longer than the work needs it. Chunk results and
/// failed rows stay for the error report and retry.
/// </summary>
public sealed class ImportCleanup(JobFiles files) : TaskActivity<ImportReport.Request, int>
{
    public const string Name = "import.cleanup";

    public override async Task<int> RunAsync(TaskActivityContext context, ImportReport.Request request)
    {
        var tenant = new Storage.TenantId(request.TenantId);
        var deleted = await files.DeleteAllAsync(tenant, request.JobId, "chunks/", CancellationToken.None);
        return deleted + ((await files.Upload(tenant, request.JobId).DeleteIfExistsAsync()).Value ? 1 : 0);
    }
}
