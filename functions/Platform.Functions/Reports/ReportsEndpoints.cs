using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Roles;

namespace Platform.Functions.Reports;

/// <summary>A finished report as <c>GET /api/v1/reports</c> lists it.</summary>
public sealed record ReportView(
    string Id, string Type, string Format, string Title, DateTimeOffset CreatedAt, DateTimeOffset From, DateTimeOffset To, long Bytes, string DownloadUrl,
    IReadOnlyDictionary<string, double>? Figures)
{
    public static string DownloadUrlOf(string id) => $"{ReportsEndpoints.Path}/{id}/download";

    public static ReportView Of(ReportEntity report) => new(
        report.Id, report.Type, report.Format, report.Title, report.CreatedAt, report.From, report.To, report.Bytes, DownloadUrlOf(report.Id),
        report.Figures is { } figures ? JsonSerializer.Deserialize<Dictionary<string, double>>(figures) : null);
}

/// <summary>
/// Reports of the caller's tenant (<c>/api/v1/reports</c>): start one (a <c>report</c> job), list the finished ones,
/// download one. Every route needs <c>reports.read</c>, and a report of a type also what that type needs
/// (<see cref="IReportType.Permission"/>).
/// </summary>
public static class ReportsEndpoints
{
    public const string Path = "/api/v1/reports";

    public static RouteGroupBuilder MapReports(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Reports");
        group.MapPost("/", StartReport).RequirePermission(Permissions.ReportsRead).WithIdempotency()
            .WithName("StartReport").WithSummary("Starts a report job: a type over a period (at most 366 days, default the last 30) in csv (zipped), json, html, xlsx or pdf, optionally mailed to recipients.");
        group.MapGet("/", ListReports).RequirePermission(Permissions.ReportsRead)
            .WithName("ListReports").WithSummary("The tenant's finished reports, newest first, while their job is kept.");
        group.MapGet("/{id}/download", DownloadReport).RequirePermission(Permissions.ReportsRead)
            .WithName("DownloadReport").WithSummary("Downloads a finished report's file.");
        return group;
    }

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> StartReport(
        ReportStartRequest request, Caller caller, CallerPermissions permissions, ReportJobType reports, TimeProvider time, IServiceProvider services,
        CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (reports.Check(request, "", validation) is not { } permission)
        {
            // A bad filter keeps the contract's own code; every other mistake is a field error.
            return validation.Errors.TryGetValue("filter", out var filterErrors) && validation.Errors.Count == 1 && request.Filter?.Length <= ReportJobType.MaxFilterLength
                ? Problems.Create(400, "invalid_filter", "Invalid filter", filterErrors[0])
                : validation.ToProblem();
        }

        if (!(await permissions.ForAsync(caller, cancellationToken)).Contains(permission))
        {
            return CommandError.Forbidden($"A {request.Type} report needs the {permission} permission.").ToProblem();
        }

        // Some filters can only be checked against the tenant (the custom fields of its user schema).
        if (await services.GetRequiredKeyedService<IReportType>(request.Type).CheckFilterAsync(caller.Tenant, request.Filter, cancellationToken) is { } filterError)
        {
            return Problems.Create(400, "invalid_filter", "Invalid filter", filterError);
        }

        var job = await reports.StartAsync(caller, request, Storage.Ids.New(time), cancellationToken);
        return TypedResults.Accepted(JobView.UrlOf(job.Id), job);
    }

    public sealed record ReportPosition(string? StorageToken);

    internal static async Task<Results<Ok<PagedList<ReportView>>, ProblemHttpResult>> ListReports(
        string? pageSize, string? continuationToken, Caller caller, CallerPermissions permissions, ReportStore store, ContinuationTokens tokens,
        CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation) ?? Paging.DefaultPageSize;
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var query = $"reports\n{size}";
        ReportPosition? position = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, query, out position))
        {
            return ContinuationTokens.Invalid();
        }

        // Reports of a type the caller may not read are left out, so a page may hold fewer than pageSize.
        var granted = await permissions.ForAsync(caller, cancellationToken);
        var rows = store.Rows(caller.Tenant).QueryAsync<ReportEntity>(ReportEntity.KeyPrefix, size, cancellationToken);
        await foreach (var page in rows.AsPages(position?.StorageToken, size))
        {
            var next = page.ContinuationToken is { } more ? tokens.Create(caller.Tenant, query, new ReportPosition(more)) : null;
            return TypedResults.Ok(new PagedList<ReportView>([.. page.Values.Where(r => granted.Contains(r.Permission)).Select(ReportView.Of)], next));
        }

        return TypedResults.Ok(new PagedList<ReportView>([], null));
    }

    internal static async Task<IResult> DownloadReport(
        string id, Caller caller, CallerPermissions permissions, ReportStore store, JobFiles files, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(caller.Tenant, id, cancellationToken) is not { } report)
        {
            return CommandError.NotFound("report").ToProblem();
        }

        if (!(await permissions.ForAsync(caller, cancellationToken)).Contains(report.Permission))
        {
            return CommandError.Forbidden($"This report needs the {report.Permission} permission.").ToProblem();
        }

        if (files.Recorded(caller.Tenant, report.Id, report.ToJobFile()) is not { } blob)
        {
            return CommandError.NotFound("report").ToProblem();
        }

        try
        {
            var download = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken);
            return TypedResults.Stream(download.Value.Content, report.ContentType, report.FileName);
        }
        catch (Azure.RequestFailedException e) when (e.Status == 404)
        {
            return Problems.Create(404, "not_found", "Not found", "The report's file is no longer kept.");
        }
    }
}
