using System.Globalization;
using Microsoft.DurableTask.Client;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Query;
using Platform.Functions.Roles;

namespace Platform.Functions.Reports.Types;

/// <summary>
/// <c>jobs-summary</c>: the tenant's jobs created in the period, per day by status and per type, from one paged query
/// of the durable engine's instances (the tenant's instance-id prefix and the creation-time range; every chart and
/// table comes from that one pass). At most <see cref="MaxJobs"/> jobs are counted; the report says so when there
/// were more. Filter fields: <c>type</c> (import, export, report, ...) and <c>status</c>.
/// </summary>
public sealed class JobsSummaryReport(TaskHubClient client, TimeProvider time) : IReportType
{
    public const string Type = "jobs-summary";

    public const int MaxJobs = 20_000;

    private static readonly string[] Statuses =
        [JobView.Queued, JobView.Running, JobOutcome.Succeeded, JobOutcome.CompletedWithErrors, JobOutcome.Failed, JobOutcome.Cancelled];

    private static readonly FilterSchema Schema = new(new Dictionary<string, FieldType>
    {
        ["type"] = FieldType.String,
        ["status"] = FieldType.String,
    });

    public string Permission => Permissions.JobsRead;

    public string? CheckFilter(string? filter)
    {
        try
        {
            FilterParser.ParseOptional(filter, Schema);
            return null;
        }
        catch (FilterException ex)
        {
            return ex.Message;
        }
    }

    public async Task<ReportDocument> BuildAsync(ReportRequest request, CancellationToken cancellationToken)
    {
        var filter = FilterParser.ParseOptional(request.Filter, Schema);
        var days = new SortedDictionary<DateOnly, Dictionary<string, long>>();
        for (var day = DateOnly.FromDateTime(request.From.UtcDateTime); day <= DateOnly.FromDateTime(request.To.UtcDateTime); day = day.AddDays(1))
        {
            days[day] = Statuses.ToDictionary(s => s, _ => 0L, StringComparer.Ordinal);
        }

        var types = new SortedDictionary<string, (long Jobs, long Succeeded, long Failed, double Seconds, long Timed)>(StringComparer.Ordinal);
        long counted = 0;
        var truncated = false;
        string? continuation = null;
        do
        {
            var page = await client.QueryPageAsync(new OrchestrationQuery(
                CreatedFrom: request.From, CreatedTo: request.To, InstanceIdPrefix: JobIds.TenantPrefix(request.Tenant),
                PageSize: 500, FetchInputsAndOutputs: true, ContinuationToken: continuation), cancellationToken);
            foreach (var instance in page.Values)
            {
                if (!JobIds.TryParse(instance.InstanceId, out var tenant, out var jobId) || tenant != request.Tenant)
                {
                    continue;
                }

                var job = JobView.From(instance, jobId);
                if (filter is not null && !filter.Evaluate(field => field switch { "type" => job.Type, "status" => job.Status, _ => null }))
                {
                    continue;
                }

                if (++counted > MaxJobs)
                {
                    truncated = true;
                    break;
                }

                var day = DateOnly.FromDateTime(job.CreatedAt.UtcDateTime);
                if (days.TryGetValue(day, out var byStatus) && byStatus.TryGetValue(job.Status, out var count))
                {
                    byStatus[job.Status] = count + 1;
                }

                var entry = types.GetValueOrDefault(job.Type);
                entry.Jobs++;
                entry.Succeeded += job.Status == JobOutcome.Succeeded ? 1 : 0;
                entry.Failed += job.Status == JobOutcome.Failed ? 1 : 0;
                if (job.StartedAt is { } started && job.FinishedAt is { } finished)
                {
                    entry.Seconds += (finished - started).TotalSeconds;
                    entry.Timed++;
                }

                types[job.Type] = entry;
            }

            continuation = truncated ? null : page.ContinuationToken;
        }
        while (continuation is not null);

        counted = Math.Min(counted, MaxJobs);
        var total = types.Values.Sum(t => t.Jobs);
        var succeeded = types.Values.Sum(t => t.Succeeded);
        var failed = types.Values.Sum(t => t.Failed);
        var categories = days.Keys.Select(d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)).ToList();
        var perDay = new ReportTable("jobs-per-day", "Jobs per day by status",
            [new("date", ReportValueKind.Date), new("total", ReportValueKind.Count), .. Statuses.Select(s => new ReportColumn(s, ReportValueKind.Count))],
            [.. days.Select(d => (IReadOnlyList<object?>)[
                new DateTimeOffset(d.Key.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero), d.Value.Values.Sum(), .. Statuses.Select(s => (object?)d.Value[s])])]);
        var perType = new ReportTable("jobs-by-type", "Jobs by type",
            [new("type", ReportValueKind.Text), new("jobs", ReportValueKind.Count), new("succeeded", ReportValueKind.Count),
             new("failed", ReportValueKind.Count), new("successRate", ReportValueKind.Percent), new("averageSeconds", ReportValueKind.Number)],
            [.. types.Select(t => (IReadOnlyList<object?>)[t.Key, t.Value.Jobs, t.Value.Succeeded, t.Value.Failed,
                t.Value.Jobs == 0 ? null : (double)t.Value.Succeeded / t.Value.Jobs,
                t.Value.Timed == 0 ? null : Math.Round(t.Value.Seconds / t.Value.Timed, 2)])]);
        var note = truncated ? $" Only the first {MaxJobs:N0} jobs were counted." : "";
        return new ReportDocument(Type, "Jobs summary", request.From, request.To, time.GetUtcNow(),
        [
            new ReportSection("Jobs per day",
                $"{total:N0} jobs were created in the period: {succeeded:N0} succeeded and {failed:N0} failed.{note}",
                [perDay],
                [
                    new ReportChart("jobs-per-day", "Jobs per day by status", ReportChartKind.StackedBar, categories,
                        [.. Statuses.Select(s => new ReportSeries(s, [.. days.Values.Select(d => (double)d[s])]))], "jobs"),
                    new ReportChart("jobs-total-per-day", "Jobs created per day", ReportChartKind.Line, categories,
                        [new ReportSeries("jobs", [.. days.Values.Select(d => (double)d.Values.Sum())])], "jobs"),
                ]),
            new ReportSection("By type", "How many jobs of each type ran, how many succeeded, and how long they took on average.",
                [perType],
                [
                    new ReportChart("jobs-by-type", "Jobs by type", ReportChartKind.Bar, [.. types.Keys],
                        [new ReportSeries("jobs", [.. types.Values.Select(t => (double)t.Jobs)])], "jobs"),
                    new ReportChart("jobs-by-status", "Jobs by status", ReportChartKind.Pie, Statuses,
                        [new ReportSeries("jobs", [.. Statuses.Select(s => (double)days.Values.Sum(d => d[s]))])]),
                ]),
        ])
        {
            Figures = new Dictionary<string, double>
            {
                ["jobCount"] = total,
                ["succeededCount"] = succeeded,
                ["failedCount"] = failed,
                ["successRate"] = total == 0 ? 0 : Math.Round((double)succeeded / total, 3),
            },
        };
    }
}
