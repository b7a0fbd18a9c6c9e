using Platform.Functions.Storage;

namespace Platform.Functions.Reports;

/// <summary>
/// What a report says, before it is a file: a title, the period it covers, and sections of tables and charts. Every
/// format (json, csv, html, xlsx, pdf) renders this one document, so a report type is written once and a format
/// once. Numbers stay numbers (the xlsx and json renderers keep them typed); chart series refer to nothing outside
/// the document.
/// </summary>
public sealed record ReportDocument(string Type, string Title, DateTimeOffset From, DateTimeOffset To, DateTimeOffset GeneratedAt, IReadOnlyList<ReportSection> Sections)
{
    /// <summary>Headline figures a workflow condition can test (<c>lowStockCount gt 0</c>) and a mail can quote.</summary>
    public IReadOnlyDictionary<string, double> Figures { get; init; } = new Dictionary<string, double>();
}

/// <summary>A part of a report: prose, then its tables and charts in order.</summary>
public sealed record ReportSection(string Title, string? Text, IReadOnlyList<ReportTable> Tables, IReadOnlyList<ReportChart> Charts);

/// <summary>A table: named columns, rows of cells (string, long, double, bool, DateTimeOffset or null); <see cref="ReportValueKind.Count"/> columns hold whole numbers.</summary>
/// <param name="Name">A short, file-safe name (csv file and xlsx sheet name): <c>signups-per-day</c>.</param>
public sealed record ReportTable(string Name, string Title, IReadOnlyList<ReportColumn> Columns, IReadOnlyList<IReadOnlyList<object?>> Rows);

public sealed record ReportColumn(string Name, ReportValueKind Kind);

public enum ReportValueKind
{
    Text,
    Count,
    Number,

    /// <summary>A share, as a fraction: 0.125 means 12.5 % (the xlsx cell is 0.125 formatted 12.5%, html and pdf show 12.5 %).</summary>
    Percent,
    Money,
    Date,
    Timestamp,
}

/// <summary>A chart over categories (days, names): one or more series of one value per category.</summary>
public sealed record ReportChart(string Name, string Title, ReportChartKind Kind, IReadOnlyList<string> Categories, IReadOnlyList<ReportSeries> Series, string? ValueLabel = null);

public sealed record ReportSeries(string Name, IReadOnlyList<double> Values);

public enum ReportChartKind
{
    Bar,
    Line,
    StackedBar,
    Pie,
}

/// <summary>The period and filter a report is asked for, already checked.</summary>
public sealed record ReportRequest(TenantId Tenant, DateTimeOffset From, DateTimeOffset To, string? Filter);

/// <summary>
/// One type of report (<c>user-insights</c>, <c>inventory-status</c>, <c>usage</c>). The owning capability implements
/// it over stored data it already keeps (projections, counters, aggregates): never a scan per chart. Registered with
/// <see cref="ReportTypeRegistration.AddReportType{T}"/>.
/// </summary>
public interface IReportType
{
    /// <summary>The permission the caller needs besides <c>reports.read</c> (e.g. <c>users.read</c>).</summary>
    string Permission { get; }

    /// <summary>Null when the filter is fine or absent, else the message for <c>invalid_filter</c>.</summary>
    string? CheckFilter(string? filter);

    /// <summary>
    /// <see cref="CheckFilter"/> knowing the tenant, for filters whose fields depend on it (the custom fields of its user
    /// schema): what the pipeline should call when it has the caller. The default is <see cref="CheckFilter"/>.
    /// </summary>
    Task<string?> CheckFilterAsync(TenantId tenant, string? filter, CancellationToken cancellationToken) => Task.FromResult(CheckFilter(filter));

    Task<ReportDocument> BuildAsync(ReportRequest request, CancellationToken cancellationToken);
}

public static class ReportTypeRegistration
{
    public static IServiceCollection AddReportType<T>(this IServiceCollection services, string type) where T : class, IReportType
    {
        services.AddKeyedScoped<IReportType, T>(type);
        services.Configure<ReportTypeCatalog>(catalog => catalog.Types.Add(type));
        return services;
    }
}

public sealed class ReportTypeCatalog
{
    public SortedSet<string> Types { get; } = new(StringComparer.Ordinal);
}
