using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Reports;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Reports;

/// <summary>
/// Builds a report type's document the way the report job will: the keyed <see cref="IReportType"/> from the running
/// app's services, in a scope of its own. (Until <c>POST /api/v1/reports</c> lands, the tests of the types go this way;
/// the data they build on is made through HTTP.)
/// </summary>
internal static class ReportTypeTesting
{
    public static async Task<ReportDocument> BuildReportAsync(this PlatformApp app, string type, TestTenant tenant, DateTimeOffset from, DateTimeOffset to, string? filter = null)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var report = scope.ServiceProvider.GetRequiredKeyedService<IReportType>(type);
        return await report.BuildAsync(new ReportRequest(new TenantId(tenant.Id), from, to, filter), TestContext.Current.CancellationToken);
    }

    /// <summary>The report type itself (its services hold nothing a scope disposes).</summary>
    public static IReportType ReportType(this PlatformApp app, string type)
    {
        using var scope = app.Services.CreateScope();
        return scope.ServiceProvider.GetRequiredKeyedService<IReportType>(type);
    }

    public static ReportTable Table(this ReportDocument document, string name) =>
        Assert.Single(document.Sections.SelectMany(s => s.Tables), t => t.Name == name);

    public static ReportChart Chart(this ReportDocument document, string name) =>
        Assert.Single(document.Sections.SelectMany(s => s.Charts), c => c.Name == name);

    /// <summary>The table's rows as column name to cell.</summary>
    public static List<Dictionary<string, object?>> Records(this ReportTable table)
    {
        foreach (var row in table.Rows)
        {
            Assert.Equal(table.Columns.Count, row.Count);
        }

        return [.. table.Rows.Select(row => table.Columns.Select((c, i) => (c.Name, Value: row[i])).ToDictionary(p => p.Name, p => p.Value))];
    }

    /// <summary>The row whose first cell is <paramref name="key"/>.</summary>
    public static Dictionary<string, object?> Record(this ReportTable table, object key) =>
        Assert.Single(table.Records(), r => Equals(r[table.Columns[0].Name], key));

    /// <summary>Numeric cells of a row, in the order of <paramref name="columns"/>.</summary>
    public static List<double?> Numbers(this Dictionary<string, object?> record, params string[] columns) => [.. columns.Select(record.Number)];

    /// <summary>A numeric cell as a double (counts are longs, other numbers doubles).</summary>
    public static double? Number(this Dictionary<string, object?> record, string column) => record[column] switch
    {
        null => null,
        long count => count,
        double number => number,
        var other => throw new InvalidOperationException($"{column} holds {other.GetType().Name}, not a number"),
    };
}
