using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Roles;

namespace Platform.Functions.Jobs;

/// <summary>
/// Jobs of the caller's tenant (<c>/api/v1/jobs</c>): start an import or export, read, list, cancel and retry jobs,
/// download what they produced, and follow their progress as server-sent events.
/// </summary>
public static class JobsEndpoints
{
    public const string Path = "/api/v1/jobs";

    /// <summary>The route's body limit: the largest upload any configuration may allow.</summary>
    public const long MaxUploadBytes = 100L * 1024 * 1024;

    public const int MaxFilterLength = 2048;

    public sealed record ExportRequest(string? Kind, string? Format, string? Filter);

    public static RouteGroupBuilder MapJobs(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Jobs");
        group.MapPost("/imports", StartImport).RequirePermission(Permissions.JobsWrite).WithIdempotency()
            .WithMetadata(new RequestSizeLimitAttribute(MaxUploadBytes))
            .Accepts<byte[]>("text/csv", "application/json", "application/x-ndjson", ExportFormats.XlsxContentType)
            .WithName("StartImport").WithSummary("Starts a bulk import of the request body (CSV, JSON array or NDJSON, or xlsx; at most 100 MB).");
        group.MapGet("/imports/templates/{file}", GetTemplate).RequirePermission(Permissions.JobsRead)
            .WithName("GetImportTemplate").WithSummary("The import template of a kind: `{kind}.csv` or `{kind}.xlsx`, the header row and one example.");
        group.MapPost("/exports", StartExport).RequirePermission(Permissions.JobsWrite).WithIdempotency()
            .WithName("StartExport").WithSummary("Starts an export of users, inventory items, movements or the audit trail to CSV, NDJSON or xlsx.");
        group.MapGet("/", ListJobs).RequirePermission(Permissions.JobsRead).WithName("ListJobs").WithSummary("The tenant's jobs, oldest first, by type, status and creation time.");
        group.MapGet("/{id}", GetJob).RequirePermission(Permissions.JobsRead).WithName("GetJob").WithSummary("A job: status, progress, times and links to its files (with Retry-After while it runs).");
        group.MapPost("/{id}/cancel", CancelJob).RequirePermission(Permissions.JobsWrite).WithName("CancelJob").WithSummary("Stops a job between chunks; what it applied stays applied.")
            .WithDescription("Sent in the first seconds of a job, before the engine has begun it, the cancel is handed over once it has (at most some 8 s later), so it is never lost.");
        group.MapPost("/{id}/retry", RetryJob).RequirePermission(Permissions.JobsWrite)
            .WithMetadata(new RequestSizeLimitAttribute(MaxUploadBytes))
            .WithName("RetryJob").WithSummary("Runs again only what did not succeed; an import's corrected rows may come as the body.");
        group.MapGet("/{id}/result", GetResult).RequirePermission(Permissions.JobsRead).WithName("GetJobResult").WithSummary("Downloads a finished export's file.");
        group.MapGet("/{id}/error-report", GetErrorReport).RequirePermission(Permissions.JobsRead).WithName("GetJobErrorReport").WithSummary("Downloads an import's error report (CSV: row, column, value, message).");
        group.MapGet("/{id}/events", StreamEvents).RequirePermission(Permissions.JobsRead).WithName("StreamJobEvents").WithSummary("The job's progress and final status as server-sent events.");
        return group;
    }

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> StartImport(
        HttpContext http, Caller caller, CallerPermissions permissions, JobCommands jobs, IOptions<ImportKindCatalog> catalog,
        string? kind, string? mode, string? dryRun, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (kind is null || !catalog.Value.Kinds.TryGetValue(kind, out var permission))
        {
            validation.Add("kind", $"must be one of: {string.Join(", ", catalog.Value.Kinds.Keys)}");
            permission = null;
        }

        var importMode = mode switch
        {
            null or "create" => ImportMode.Create,
            "upsert" => ImportMode.Upsert,
            _ => (ImportMode?)null,
        };
        if (importMode is null)
        {
            validation.Add("mode", "must be create or upsert");
        }

        bool? isDryRun = dryRun switch { null or "false" => false, "true" => true, _ => null };
        if (isDryRun is null)
        {
            validation.Add("dryRun", "must be true or false");
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var format = FormatOfUpload(http.Request.ContentType);
        if (format is null)
        {
            return Problems.Create(415, "unsupported_media_type", "Unsupported media type",
                $"Send the file as text/csv, application/json, application/x-ndjson or {ExportFormats.XlsxContentType}.");
        }

        if (!(await permissions.ForAsync(caller, cancellationToken)).Contains(permission!))
        {
            return CommandError.Forbidden($"Importing {kind} needs the {permission} permission.").ToProblem();
        }

        var options = jobs.Options;
        var parameters = new ImportParameters(kind!, importMode!.Value, isDryRun!.Value, format.Value.ToString().ToLowerInvariant(), null,
            options.ChunkRows, options.ChunkBytes, options.ChunkParallelism);
        return await UploadAndStartAsync(http, caller, jobs, parameters, cancellationToken);
    }

    /// <summary>Streams the request body to the new job's upload blob (bounded, never in memory), then starts the import.</summary>
    private static async Task<Results<Accepted<JobView>, ProblemHttpResult>> UploadAndStartAsync(
        HttpContext http, Caller caller, JobCommands jobs, ImportParameters parameters, CancellationToken cancellationToken)
    {
        var jobId = Storage.Ids.New();
        var upload = jobs.Files.Upload(caller.Tenant, jobId);
        var limit = jobs.Options.MaxUploadBytes;
        long length;
        await using (var body = new BoundedStream(http.Request.Body, limit))
        {
            try
            {
                await upload.UploadAsync(body, JobFiles.StreamedUpload(), cancellationToken);
            }
            catch (Exception) when (body.BytesRead > limit)
            {
                await upload.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
                return Problems.Create(413, "payload_too_large", "Upload too large", $"Imports are limited to {limit} bytes.");
            }

            length = body.BytesRead;
        }

        if (length == 0)
        {
            await upload.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
            return new Validation().Add("body", "the file is empty").ToProblem();
        }

        try
        {
            var job = await jobs.StartAsync(caller, ImportOrchestrator.Name, parameters, cancellationToken, jobId);
            return TypedResults.Accepted(JobView.UrlOf(job.Id), job);
        }
        catch
        {
            await upload.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
            throw;
        }
    }

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> StartExport(
        ExportRequest request, Caller caller, CallerPermissions permissions, JobCommands jobs, ExportJobType exports, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (exports.Check(request, "", validation) is not { } permission)
        {
            // A bad filter keeps the contract's own code; every other mistake is a field error.
            return validation.Errors.TryGetValue("filter", out var filterErrors) && validation.Errors.Count == 1 && request.Filter?.Length <= MaxFilterLength
                ? Problems.Create(400, "invalid_filter", "Invalid filter", filterErrors[0])
                : validation.ToProblem();
        }

        if (!(await permissions.ForAsync(caller, cancellationToken)).Contains(permission))
        {
            return CommandError.Forbidden($"Exporting {request.Kind} needs the {permission} permission.").ToProblem();
        }

        var job = await jobs.StartAsync(caller, ExportOrchestrator.Name, ExportJobType.Parameters(request), cancellationToken);
        return TypedResults.Accepted(JobView.UrlOf(job.Id), job);
    }

    internal static async Task<Results<Ok<JobView>, ProblemHttpResult>> GetJob(
        string id, Caller caller, HttpContext http, JobCommands jobs, JobFilePermissions access, CancellationToken cancellationToken)
    {
        if (await jobs.GetAsync(caller.Tenant, id, cancellationToken) is not { } job)
        {
            return CommandError.NotFound("job").ToProblem();
        }

        if (!job.IsFinished)
        {
            http.Response.Headers.RetryAfter = "2";
        }

        return TypedResults.Ok(await access.ShownAsync(caller, job, cancellationToken));
    }

    internal static async Task<Results<Ok<PagedList<JobView>>, ProblemHttpResult>> ListJobs(
        Caller caller, TaskHubClient client, JobCommands jobs, JobFilePermissions access, ContinuationTokens tokens, HttpContext http,
        string? type, string? status, DateTimeOffset? createdFrom, DateTimeOffset? createdTo, string? pageSize, string? continuationToken,
        CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation);
        OrchestrationRuntimeStatus[]? runtime = status switch
        {
            null => null,
            JobView.Queued => [OrchestrationRuntimeStatus.Pending],
            JobView.Running => [OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended],
            JobOutcome.Succeeded or JobOutcome.CompletedWithErrors or JobOutcome.Cancelled =>
                [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Terminated],
            // Every status: a job the engine gave up on is failed whatever its instance says.
            JobOutcome.Failed => null,
            _ => [],
        };
        if (runtime is [] && status is not null)
        {
            validation.Add("status", "must be queued, running, succeeded, completed_with_errors, failed or cancelled");
        }

        if (type?.Length > 64)
        {
            validation.Add("type", "must be at most 64 characters");
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        string? position = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, QueryWithoutToken(http), out position))
        {
            return ContinuationTokens.Invalid();
        }

        // The task hub pages by instance id within the tenant's prefix; type and the finished statuses are checked
        // here, so a page may hold fewer than pageSize jobs while the continuation token says there are more.
        var page = await client.QueryPageAsync(new OrchestrationQuery(
            CreatedFrom: createdFrom, CreatedTo: createdTo, Statuses: runtime, InstanceIdPrefix: JobIds.TenantPrefix(caller.Tenant),
            PageSize: size!.Value, FetchInputsAndOutputs: true, ContinuationToken: position), cancellationToken);
        var items = new List<JobView>();
        foreach (var instance in page.Values)
        {
            if (JobIds.TryParse(instance.InstanceId, out var tenant, out var jobId) && tenant == caller.Tenant &&
                await jobs.ViewAsync(tenant, instance, jobId, cancellationToken) is var job &&
                (type is null || job.Type == type) && (status is null || job.Status == status))
            {
                items.Add(await access.ShownAsync(caller, job, cancellationToken));
            }
        }

        var next = page.ContinuationToken is { } more ? tokens.Create(caller.Tenant, QueryWithoutToken(http), more) : null;
        return TypedResults.Ok(new PagedList<JobView>(items, next));
    }

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> CancelJob(
        string id, Caller caller, JobCommands jobs, JobFilePermissions access, CancellationToken cancellationToken)
    {
        if (await jobs.InstanceAsync(caller.Tenant, id, cancellationToken) is not { } instance)
        {
            return CommandError.NotFound("job").ToProblem();
        }

        // Stopping a restore or a backup half-way is theirs to decide who may start one.
        if (await access.MissingAsync(caller, instance, cancellationToken) is { } missing)
        {
            return CommandError.Forbidden($"Cancelling this job needs the {missing} permission.").ToProblem();
        }

        return (await jobs.CancelAsync(caller, id, cancellationToken)).ToResult(job => TypedResults.Accepted(JobView.UrlOf(job.Id), job));
    }

    /// <summary>
    /// Without a body: runs again what failed (<see cref="JobCommands.RetryAsync"/>). With a file (an import's failed
    /// rows, corrected): a new import of that file with the first job's kind and mode.
    /// </summary>
    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> RetryJob(
        string id, Caller caller, HttpContext http, JobCommands jobs, JobFilePermissions access, CancellationToken cancellationToken)
    {
        if (await jobs.InstanceAsync(caller.Tenant, id, cancellationToken) is not { } instance)
        {
            return CommandError.NotFound("job").ToProblem();
        }

        // Running a job again moves the same rows: it needs what starting it needed, not just jobs.write.
        if (await access.MissingAsync(caller, instance, cancellationToken) is { } missing)
        {
            return CommandError.Forbidden($"Retrying this job needs the {missing} permission.").ToProblem();
        }

        var hasBody = http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true;
        if (!hasBody || http.Request.ContentType is null)
        {
            return (await jobs.RetryAsync(caller, id, cancellationToken)).ToResult(job => TypedResults.Accepted(JobView.UrlOf(job.Id), job));
        }

        if (instance.Name != ImportOrchestrator.Name)
        {
            return new Validation().Add("body", "only an import is retried with a file").ToProblem();
        }

        if (FormatOfUpload(http.Request.ContentType) is not { } format)
        {
            return Problems.Create(415, "unsupported_media_type", "Unsupported media type",
                $"Send the file as text/csv, application/json, application/x-ndjson or {ExportFormats.XlsxContentType}.");
        }

        var earlier = instance.ReadInputAs<JobInput<ImportParameters>>()!.Parameters;
        return await UploadAndStartAsync(http, caller, jobs,
            earlier with { Format = format.ToString().ToLowerInvariant(), RetryOf = null }, cancellationToken);
    }

    internal static Task<IResult> GetResult(string id, Caller caller, JobCommands jobs, JobFilePermissions access, CancellationToken cancellationToken) =>
        DownloadAsync(id, caller, jobs, access, outcome => outcome.Result, "result", cancellationToken);

    internal static Task<IResult> GetErrorReport(string id, Caller caller, JobCommands jobs, JobFilePermissions access, CancellationToken cancellationToken) =>
        DownloadAsync(id, caller, jobs, access, outcome => outcome.ErrorReport, "error report", cancellationToken);

    private static async Task<IResult> DownloadAsync(
        string id, Caller caller, JobCommands jobs, JobFilePermissions access, Func<JobOutcome, JobFile?> pick, string what, CancellationToken cancellationToken)
    {
        if (await jobs.InstanceAsync(caller.Tenant, id, cancellationToken) is not { } instance)
        {
            return CommandError.NotFound("job").ToProblem();
        }

        // A job's files hold the rows it moved: reading them needs what reading those rows needs, not just jobs.read.
        if (await access.MissingAsync(caller, instance, cancellationToken) is { } missing)
        {
            return CommandError.Forbidden($"This job's files need the {missing} permission.").ToProblem();
        }

        var file = instance.IsCompleted ? ReadOutcome(instance) is { } outcome ? pick(outcome) : null : null;
        if (file is null || jobs.Files.Recorded(caller.Tenant, id, file) is not { } blob)
        {
            return Problems.Create(404, "not_found", "Not found", $"This job has no {what}.");
        }

        try
        {
            var download = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken);
            return TypedResults.Stream(download.Value.Content, file.ContentType, file.FileName);
        }
        catch (Azure.RequestFailedException e) when (e.Status == 404)
        {
            return Problems.Create(404, "not_found", "Not found", $"The job's {what} is no longer kept.");
        }
    }

    /// <summary>
    /// Server-sent events: a <c>progress</c> event whenever the job's counts or status change, then one <c>status</c>
    /// event with the finished job, and the stream ends. A stream lasts at most 10 minutes (reconnect to go on); the
    /// status route is the poll fallback.
    /// </summary>
    internal static async Task StreamEvents(string id, Caller caller, HttpContext http, JobCommands jobs, IOptions<JobOptions> options, CancellationToken cancellationToken)
    {
        if (await jobs.GetAsync(caller.Tenant, id, cancellationToken) is not { } job)
        {
            await CommandError.NotFound("job").ToProblem().ExecuteAsync(http);
            return;
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        var deadline = DateTimeOffset.UtcNow.AddMinutes(10);
        var quietSince = DateTimeOffset.UtcNow;
        string? last = null;
        var poll = TimeSpan.FromMilliseconds(Math.Clamp(options.Value.MaxPollingInterval.TotalMilliseconds, 100, 1000));
        while (!cancellationToken.IsCancellationRequested)
        {
            var json = JsonSerializer.Serialize(job, JsonSerializerOptions.Web);
            if (job.IsFinished)
            {
                await http.Response.WriteAsync($"event: status\ndata: {json}\n\n", cancellationToken);
                return;
            }

            if (json != last)
            {
                await http.Response.WriteAsync($"event: progress\ndata: {json}\n\n", cancellationToken);
                await http.Response.Body.FlushAsync(cancellationToken);
                last = json;
                quietSince = DateTimeOffset.UtcNow;
            }
            else if (DateTimeOffset.UtcNow - quietSince > TimeSpan.FromSeconds(15))
            {
                // A comment line keeps proxies from closing a stream that has had nothing to say for a while.
                await http.Response.WriteAsync(": waiting\n\n", cancellationToken);
                await http.Response.Body.FlushAsync(cancellationToken);
                quietSince = DateTimeOffset.UtcNow;
            }

            if (DateTimeOffset.UtcNow > deadline)
            {
                return;
            }

            await Task.Delay(poll, cancellationToken);
            job = await jobs.GetAsync(caller.Tenant, id, cancellationToken) ?? job;
        }
    }

    internal static IResult GetTemplate(string file, IOptions<ImportKindCatalog> catalog, IServiceProvider services)
    {
        var dot = file.LastIndexOf('.');
        var kind = dot > 0 ? file[..dot] : file;
        var format = dot > 0 ? file[(dot + 1)..] : "";
        if (!catalog.Value.Kinds.ContainsKey(kind) || format is not ("csv" or "xlsx"))
        {
            return Problems.Create(404, "not_found", "Not found",
                $"Templates are {string.Join(", ", catalog.Value.Kinds.Keys.Select(k => $"{k}.csv, {k}.xlsx"))}.");
        }

        var columns = services.GetRequiredKeyedService<IImportKind>(kind).Columns;
        var tabular = format == "csv" ? TabularFormat.Csv : TabularFormat.Xlsx;
        var (extension, contentType) = ExportFormats.Of(tabular);
        return TypedResults.Stream(async output =>
        {
            await using var writer = TabularWriter.Create(output, tabular, columns.Select(c => c.Name).ToList(), sheetName: kind);
            await writer.WriteRowAsync(columns.Select(c => (string?)c.Example).ToList(), CancellationToken.None);
        }, contentType, $"{kind}-template.{extension}");
    }

    private static TabularFormat? FormatOfUpload(string? contentType)
    {
        if (contentType is null || !Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media))
        {
            return null;
        }

        return media.MediaType.Value?.ToLowerInvariant() switch
        {
            "text/csv" => TabularFormat.Csv,
            "application/json" or "application/x-ndjson" => TabularFormat.Json,
            ExportFormats.XlsxContentType => TabularFormat.Xlsx,
            _ => null,
        };
    }

    private static JobOutcome? ReadOutcome(OrchestrationMetadata instance)
    {
        try
        {
            return instance.ReadOutputAs<JobOutcome>();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The list's query without its continuation token: what a token is bound to.</summary>
    private static string QueryWithoutToken(HttpContext http) =>
        string.Join('&', http.Request.Query.Where(q => q.Key != "continuationToken").OrderBy(q => q.Key, StringComparer.Ordinal).Select(q => $"{q.Key}={q.Value}"));
}

/// <summary>Thrown when an upload goes over its limit while streaming.</summary>
internal sealed class UploadTooLargeException() : IOException("The upload is over the limit.");

/// <summary>
/// What a job's files, parameters, retry and cancel need: the permission its import or export kind was registered
/// with, or the one its job type was registered with (<see cref="JobTypePermissionCatalog"/>, e.g. backups and
/// restores need <c>backups.manage</c>); <c>jobs.write</c> otherwise.
/// </summary>
public sealed class JobFilePermissions(
    CallerPermissions permissions, IOptions<ImportKindCatalog> imports, IOptions<ExportKindCatalog> exports, IOptions<JobTypePermissionCatalog> types)
{
    /// <summary>The permission the caller lacks for this job's files, or null.</summary>
    public Task<string?> MissingAsync(Caller caller, OrchestrationMetadata instance, CancellationToken cancellationToken)
    {
        string? kind = null;
        try
        {
            kind = instance.ReadInputAs<JsonElement>().TryGetProperty("parameters", out var p) && p.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
        }
        catch (JsonException)
        {
        }

        return MissingAsync(caller, instance.Name, kind, cancellationToken);
    }

    /// <summary>The permission the caller lacks for a job of this type (and import/export kind), or null.</summary>
    public async Task<string?> MissingAsync(Caller caller, string type, string? kind, CancellationToken cancellationToken)
    {
        var needed = Needed(type, kind);
        return (await permissions.ForAsync(caller, cancellationToken)).Contains(needed) ? null : needed;
    }

    /// <summary>The job as this caller may see it: without its parameters when the caller lacks what the job needs.</summary>
    public async Task<JobView> ShownAsync(Caller caller, JobView job, CancellationToken cancellationToken)
    {
        if (!types.Value.Types.ContainsKey(job.Type))
        {
            return job;
        }

        return await MissingAsync(caller, job.Type, null, cancellationToken) is null ? job : job with { Parameters = null };
    }

    private string Needed(string type, string? kind)
    {
        if (types.Value.Types.TryGetValue(type, out var own))
        {
            return own;
        }

        var catalog = type == ImportOrchestrator.Name ? imports.Value.Kinds : type == ExportOrchestrator.Name ? exports.Value.Kinds : null;
        return kind is not null && catalog?.TryGetValue(kind, out var permission) == true ? permission : Permissions.JobsWrite;
    }
}

/// <summary>Job types (orchestration names) whose retry, cancel, files and parameters need a permission of their own.</summary>
public sealed class JobTypePermissionCatalog
{
    public Dictionary<string, string> Types { get; } = new(StringComparer.Ordinal);
}

public static class JobTypePermissionRegistration
{
    /// <summary>A job of this type is retried, cancelled and read in full only with <paramref name="permission"/> (besides jobs.read/jobs.write).</summary>
    public static IServiceCollection AddJobTypePermission(this IServiceCollection services, string type, string permission) =>
        services.Configure<JobTypePermissionCatalog>(catalog => catalog.Types[type] = permission);
}

/// <summary>Reads through to the request body and stops the upload once it goes over the limit.</summary>
internal sealed class BoundedStream(Stream inner, long limit) : Stream
{
    public long BytesRead { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Count(int read)
    {
        BytesRead += read;
        return BytesRead > limit ? throw new UploadTooLargeException() : read;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
