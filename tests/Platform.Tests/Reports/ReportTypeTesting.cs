using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Reports;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Reports;

/// <summary>
/// A report type's document as its reader gets it: <c>POST /api/v1/reports</c> in json, the job waited for, the file
/// downloaded and read back into a <see cref="ReportDocument"/> whose cells are typed again by their column's kind
/// (counts as longs, other numbers as doubles, dates as <see cref="DateTimeOffset"/>), so tests assert rows as the type wrote them.
/// </summary>
internal static class ReportTypeTesting
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase), new NullAsNaN() },
    };

    /// <summary>The request <c>POST /api/v1/reports</c> takes for a json report over this period.</summary>
    public static object Request(string type, DateTimeOffset from, DateTimeOffset to, string? filter = null) => new
    {
        type,
        format = "json",
        from = from.ToString("O", CultureInfo.InvariantCulture),
        to = to.ToString("O", CultureInfo.InvariantCulture),
        filter,
    };

    /// <summary>Makes the report through the API and downloads it; its headline figures are also those the reports list shows.</summary>
    public static async Task<ReportDocument> ReportDocumentAsync(this HttpClient client, string type, DateTimeOffset from, DateTimeOffset to, string? filter = null)
    {
        var id = (await client.ReportAsync(Request(type, from, to, filter))).GetProperty("id").GetString()!;
        var (body, response) = await client.DownloadReportAsync(id);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var document = Read(body);

        // The reports list shows the job's figures: the document's finite ones (a NaN has no JSON number).
        var listed = Assert.Single(await client.ListReportsAsync(), r => r.GetProperty("id").GetString() == id);
        var listedFigures = listed.GetProperty("figures").Deserialize<Dictionary<string, double>>(Json)!;
        Assert.Equal(
            document.Figures.Where(f => double.IsFinite(f.Value)).OrderBy(f => f.Key, StringComparer.Ordinal),
            listedFigures.OrderBy(f => f.Key, StringComparer.Ordinal));

        // ... and so does the job: what a workflow's condition step after a report tests.
        var job = await client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}", Ct);
        Assert.Equal(
            listedFigures.OrderBy(f => f.Key, StringComparer.Ordinal),
            job.GetProperty("figures").Deserialize<Dictionary<string, double>>(Json)!.OrderBy(f => f.Key, StringComparer.Ordinal));
        return document;
    }

    /// <summary>Starts a report and returns the problem the route answers with <c>400 invalid_filter</c>: its detail.</summary>
    public static async Task<string> RefusedFilterAsync(this HttpClient client, string type, string filter)
    {
        var response = await client.PostAsJsonAsync("/api/v1/reports", new { type, format = "json", filter }, Ct);
        var problem = await response.ReadProblemAsync(400, "invalid_filter");
        return problem.GetProperty("detail").GetString()!;
    }

    /// <summary>Starts a report with this filter, which the route must take (202); the job's id.</summary>
    public static async Task<string> AcceptedFilterAsync(this HttpClient client, string type, string? filter)
    {
        var response = await client.PostAsJsonAsync("/api/v1/reports", new { type, format = "json", filter }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"filter {filter}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
    }

    private static ReportDocument Read(byte[] body)
    {
        var document = JsonSerializer.Deserialize<ReportDocument>(body, Json)!;
        return document with
        {
            Sections = [.. document.Sections.Select(s => s with { Tables = [.. s.Tables.Select(Typed)] })],
        };
    }

    private static ReportTable Typed(ReportTable table) => table with
    {
        Rows = table.Rows.Select(row => (IReadOnlyList<object?>)row.Select((cell, i) => Cell(cell, i < table.Columns.Count ? table.Columns[i].Kind : ReportValueKind.Text)).ToList()).ToList(),
    };

    private static object? Cell(object? cell, ReportValueKind kind)
    {
        if (cell is null)
        {
            return null;
        }

        var json = (JsonElement)cell;
        return json.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number when kind == ReportValueKind.Count => json.GetInt64(),
            JsonValueKind.Number => json.GetDouble(),
            JsonValueKind.String when kind is ReportValueKind.Date or ReportValueKind.Timestamp => json.GetDateTimeOffset(),
            JsonValueKind.String => json.GetString(),
            _ => throw new InvalidOperationException($"a report cell holds {json}"),
        };
    }

    /// <summary>The json renderer writes a NaN or an infinity as null.</summary>
    private sealed class NullAsNaN : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
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
