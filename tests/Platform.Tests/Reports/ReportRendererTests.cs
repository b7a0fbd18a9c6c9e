using System.IO.Compression;
using System.Text;
using System.Text.Json;
using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Spreadsheet;
using PdfSharp.Pdf.IO;
using Platform.Functions.Reports;
using Platform.Functions.Reports.Rendering;
using Platform.Functions.Storage;

namespace Platform.Tests.Reports;

/// <summary>
/// The renderers on documents no built-in type makes: text that is markup or a formula (a custom-field value, a
/// category name), tables over the html/pdf row bound, clashing table names, values that are not numbers, and an
/// empty report. Every format must still produce a file its readers open, and nothing hostile may survive as code.
/// </summary>
public sealed class ReportRendererTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Markup = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    private const string Formula = "=HYPERLINK(\"http://evil.example\",\"x\")";

    private static readonly DateTimeOffset From = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static ReportDocument Hostile()
    {
        var columns = new List<ReportColumn> { new("name", ReportValueKind.Text), new("count", ReportValueKind.Count), new("share", ReportValueKind.Percent), new("day", ReportValueKind.Date) };
        var big = Enumerable.Range(0, 250).Select(i => (IReadOnlyList<object?>)[$"row {i}", (long)i, i / 2.5, From.AddDays(i % 30)]).ToList();
        IReadOnlyList<object?> hostileRow = [Formula, 3L, double.NaN, From];
        IReadOnlyList<object?> markupRow = [Markup, 4L, 0.125, null];
        IReadOnlyList<object?> scriptsRow = ["日本語 Ωμέγα 😀 \u0007", 5L, 0.5, From];
        return new ReportDocument("test", Markup, From, From.AddDays(30), From.AddDays(31),
        [
            new ReportSection(Markup, Markup + "\n\nSecond paragraph.",
                [
                    new ReportTable("segments", Markup, columns, [hostileRow, markupRow, scriptsRow]),
                    new ReportTable("segments", "Same name", columns, big),
                    new ReportTable("a-table-name-much-longer-than-excel-allows-for-a-sheet", "Long", columns, []),
                ],
                [
                    new ReportChart("c1", Markup, ReportChartKind.Bar, [Markup, "日本語 😀"], [new ReportSeries(Markup, [1, double.PositiveInfinity])]),
                    new ReportChart("c2", "pie", ReportChartKind.Pie, [.. Enumerable.Range(0, 12).Select(i => $"slice {i}")], [new ReportSeries("s", [.. Enumerable.Range(1, 12).Select(i => (double)i)])]),
                    new ReportChart("c3", "empty", ReportChartKind.Line, [], []),
                    new ReportChart("c4", "negative", ReportChartKind.StackedBar, ["a", "b"], [new ReportSeries("x", [-5, 3]), new ReportSeries("y", [2, double.NaN])]),
                ]),
        ])
        {
            Figures = new Dictionary<string, double> { ["rows"] = 253, ["broken"] = double.NaN },
        };
    }

    private static async Task<byte[]> RenderAsync(ReportDocument document, ReportFormat format)
    {
        using var output = new MemoryStream();
        await ReportFormats.RenderAsync(document, format, output, Ct);
        return output.ToArray();
    }

    [Fact]
    public async Task Html_keeps_markup_as_text_and_bounds_long_tables()
    {
        var html = Encoding.UTF8.GetString(await RenderAsync(Hostile(), ReportFormat.Html));

        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img", html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html, StringComparison.Ordinal);
        Assert.Contains("The first 200 of 250 rows; the csv and xlsx reports hold every row.", html, StringComparison.Ordinal);
        Assert.Contains("row 199", html, StringComparison.Ordinal);
        Assert.DoesNotContain("row 200<", html, StringComparison.Ordinal);
        Assert.Equal(4, html.Split("<svg class=\"chart\"").Length - 1);
        Assert.Contains("No data for this period.", html, StringComparison.Ordinal);
        // A pie of twelve slices shows the seven largest and the rest as Other.
        Assert.Contains("Other: 15", html, StringComparison.Ordinal);
        Assert.DoesNotContain("NaN", html, StringComparison.Ordinal);
        Assert.DoesNotContain("Infinity", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Csv_and_xlsx_hold_every_row_with_formulas_neutralised()
    {
        var document = Hostile();

        using (var zip = new ZipArchive(new MemoryStream(await RenderAsync(document, ReportFormat.Csv))))
        {
            Assert.Equal(["a-table-name-much-longer-than-excel-allows-for-a-sheet.csv", "segments-2.csv", "segments.csv"],
                zip.Entries.Select(e => e.FullName).Order(StringComparer.Ordinal));
            using var reader = new StreamReader(zip.GetEntry("segments.csv")!.Open());
            var text = await reader.ReadToEndAsync(Ct);
            Assert.Contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",3,,2026-01-01", text, StringComparison.Ordinal);
            using var big = new StreamReader(zip.GetEntry("segments-2.csv")!.Open());
            Assert.Equal(251, (await big.ReadToEndAsync(Ct)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length);
        }

        using var workbook = SpreadsheetDocument.Open(new MemoryStream(await RenderAsync(document, ReportFormat.Xlsx)), false);
        var part = workbook.WorkbookPart!;
        var sheets = part.Workbook.Sheets!.Elements<Sheet>().ToList();
        Assert.Equal(["segments", "segments-2", "a-table-name-much-longer-than-e"], sheets.Select(s => s.Name!.Value));
        var first = ((WorksheetPart)part.GetPartById(sheets[0].Id!)).Worksheet.Descendants<Row>().ToList();
        Assert.Equal("'" + Formula, first[1].Elements<Cell>().First().InnerText);
        var markupCells = first[2].Elements<Cell>().ToList();
        Assert.Equal("4", markupCells[1].CellValue!.Text);
        Assert.Equal("0.125", markupCells[2].CellValue!.Text);
        Assert.Equal(251, ((WorksheetPart)part.GetPartById(sheets[1].Id!)).Worksheet.Descendants<Row>().Count());
    }

    [Fact]
    public async Task Json_and_pdf_render_whatever_the_values()
    {
        var document = Hostile();

        var json = JsonDocument.Parse(await RenderAsync(document, ReportFormat.Json)).RootElement;
        Assert.Equal(JsonValueKind.Null, json.GetProperty("figures").GetProperty("broken").ValueKind);
        Assert.Equal(Markup, json.GetProperty("title").GetString());
        Assert.Equal(250, json.GetProperty("sections")[0].GetProperty("tables")[1].GetProperty("rows").GetArrayLength());

        var pdf = await RenderAsync(document, ReportFormat.Pdf);
        Assert.Equal("%PDF", Encoding.ASCII.GetString(pdf, 0, 4));
        using var opened = PdfReader.Open(new MemoryStream(pdf), PdfDocumentOpenMode.Import);
        // 200 table rows at 12 points a row do not fit on two A4 pages.
        Assert.True(opened.PageCount >= 4, $"{opened.PageCount} pages");
    }

    [Fact]
    public async Task An_empty_report_still_opens_in_every_format()
    {
        var empty = new ReportDocument("test", "Nothing", From, From, From, []);

        foreach (var format in Enum.GetValues<ReportFormat>())
        {
            var file = await RenderAsync(empty, format);
            Assert.True(file.Length > 0, format.ToString());
        }

        using var workbook = SpreadsheetDocument.Open(new MemoryStream(await RenderAsync(empty, ReportFormat.Xlsx)), false);
        Assert.Single(workbook.WorkbookPart!.Workbook.Sheets!.Elements<Sheet>());
        Assert.Empty(new ZipArchive(new MemoryStream(await RenderAsync(empty, ReportFormat.Csv))).Entries);
    }

    [Fact]
    public void Report_rows_sort_newest_first_and_are_found_by_id()
    {
        var older = Ids.New(new Microsoft.Extensions.Time.Testing.FakeTimeProvider(From));
        var newer = Ids.New(new Microsoft.Extensions.Time.Testing.FakeTimeProvider(From.AddSeconds(1)));

        Assert.True(string.CompareOrdinal(ReportEntity.KeyFor(newer), ReportEntity.KeyFor(older)) < 0);
        Assert.NotEqual(ReportEntity.KeyFor(older), ReportEntity.KeyFor(newer));
    }
}
