using Platform.Functions.Reports;
using Platform.Functions.Roles;

namespace Platform.Functions.Usage;

/// <summary>
/// The <c>usage</c> report: requests and errors per day (chart and table), latency p50/p95/p99 per day (chart and
/// table), and per endpoint and per API key (or user) tables, from the stored usage rows - the same reads as
/// <c>GET /api/v1/usage</c>, once for all sections. Error rates are fractions (0.05 is 5 %). Figures: <c>requests</c>,
/// <c>errors</c>, <c>errorRate</c>, <c>p50Ms</c>, <c>p95Ms</c>, <c>p99Ms</c> over the whole period.
/// </summary>
public sealed class UsageReport(UsageStore store, TimeProvider time) : IReportType
{
    public const string Type = "usage";

    public string Permission => Permissions.UsageRead;

    public string? CheckFilter(string? filter) =>
        string.IsNullOrWhiteSpace(filter) ? null : "The usage report takes no filter.";

    public async Task<ReportDocument> BuildAsync(ReportRequest request, CancellationToken cancellationToken)
    {
        var (days, endpoints, callers, total) = await store.ReadAsync(request.Tenant, request.From, request.To,
            () => (Days: new UsageTotals(), Endpoints: new UsageTotals(), Callers: new UsageTotals(), Total: new UsageTotals()),
            (totals, period, slice) =>
            {
                totals.Days.Add(UsageTotals.DayOf(period), slice);
                totals.Endpoints.Add(slice.Endpoint, slice);
                totals.Callers.Add(slice.Caller, slice);
                totals.Total.Add("", slice);
            }, cancellationToken);

        var perDay = days.Items(byKey: true);
        var overall = total.Items(byKey: true) is [var all] ? all : new UsageItem("", 0, 0, 0, 0, 0);
        var categories = perDay.Select(d => d.Key).ToList();

        var requestsSection = new ReportSection(
            "Requests per day",
            $"{overall.Requests} requests, {overall.Errors} of them errors (4xx and 5xx answers).",
            [new ReportTable("requests-per-day", "Requests per day",
                [new("day", ReportValueKind.Date), new("requests", ReportValueKind.Count), new("errors", ReportValueKind.Count), new("error rate", ReportValueKind.Percent)],
                [.. perDay.Select(d => (IReadOnlyList<object?>)[DateOf(d.Key), d.Requests, d.Errors, Rate(d)])])],
            [new ReportChart("requests-per-day", "Requests per day", ReportChartKind.StackedBar, categories,
                [new ReportSeries("successful", [.. perDay.Select(d => (double)(d.Requests - d.Errors))]), new ReportSeries("errors", [.. perDay.Select(d => (double)d.Errors)])],
                "requests")]);

        var latencySection = new ReportSection(
            "Latency",
            $"Over the period: p50 {overall.P50Ms} ms, p95 {overall.P95Ms} ms, p99 {overall.P99Ms} ms (measured in the app, from request to response).",
            [new ReportTable("latency-per-day", "Latency per day (ms)",
                [new("day", ReportValueKind.Date), new("p50 ms", ReportValueKind.Number), new("p95 ms", ReportValueKind.Number), new("p99 ms", ReportValueKind.Number)],
                [.. perDay.Select(d => (IReadOnlyList<object?>)[DateOf(d.Key), d.P50Ms, d.P95Ms, d.P99Ms])])],
            [new ReportChart("latency-per-day", "Latency per day", ReportChartKind.Line, categories,
                [new ReportSeries("p50", [.. perDay.Select(d => d.P50Ms)]), new ReportSeries("p95", [.. perDay.Select(d => d.P95Ms)]), new ReportSeries("p99", [.. perDay.Select(d => d.P99Ms)])],
                "ms")]);

        var endpointSection = new ReportSection("Endpoints", "Requests per route template, busiest first.", [Table("requests-per-endpoint", "Requests per endpoint", "endpoint", endpoints)], []);
        var callerSection = new ReportSection("API keys", "Requests per API key (apikey:{id}) or signed-in user (user:{id}), busiest first.", [Table("requests-per-api-key", "Requests per API key or user", "caller", callers)], []);

        return new ReportDocument(Type, "API usage", request.From, request.To, time.GetUtcNow(), [requestsSection, latencySection, endpointSection, callerSection])
        {
            Figures = new Dictionary<string, double>
            {
                ["requests"] = overall.Requests,
                ["errors"] = overall.Errors,
                ["errorRate"] = Rate(overall),
                ["p50Ms"] = overall.P50Ms,
                ["p95Ms"] = overall.P95Ms,
                ["p99Ms"] = overall.P99Ms,
            },
        };
    }

    private static ReportTable Table(string name, string title, string keyColumn, UsageTotals totals) =>
        new(name, title,
            [new(keyColumn, ReportValueKind.Text), new("requests", ReportValueKind.Count), new("errors", ReportValueKind.Count), new("error rate", ReportValueKind.Percent),
             new("p50 ms", ReportValueKind.Number), new("p95 ms", ReportValueKind.Number), new("p99 ms", ReportValueKind.Number)],
            [.. totals.Items(byKey: false).Select(i => (IReadOnlyList<object?>)[i.Key, i.Requests, i.Errors, Rate(i), i.P50Ms, i.P95Ms, i.P99Ms])]);

    private static double Rate(UsageItem item) => item.Requests == 0 ? 0 : Math.Round((double)item.Errors / item.Requests, 4);

    private static DateTimeOffset DateOf(string day) =>
        DateTimeOffset.ParseExact(day, "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal);
}
