using System.IO.Compression;
using System.Text;
using System.Text.Json;
using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Spreadsheet;
using Microsoft.Extensions.DependencyInjection;
using PdfSharp.Pdf.IO;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;
using Platform.Functions.Jobs.Files;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Reports;

/// <summary>
/// One jobs-summary document rendered to every format through <c>POST /api/v1/reports</c> and downloaded through
/// <c>GET /api/v1/reports/{id}/download</c>: each file opens with what a reader of that format expects.
/// </summary>
public sealed class ReportFormatTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => ReportApi.RunsReports();

    private async Task<(JsonElement Job, byte[] File, HttpResponseMessage Response)> RenderAsync(string format)
    {
        var job = await Admin.ReportAsync(new { type = "jobs-summary", format, from = DateTimeOffset.UtcNow.AddDays(-6).ToString("O"), to = DateTimeOffset.UtcNow.AddMinutes(1).ToString("O") });
        var (file, response) = await Admin.DownloadReportAsync(job.GetProperty("id").GetString()!);
        return (job, file, response);
    }

    [Fact]
    public async Task Every_format_holds_the_same_report()
    {
        await Admin.RunExportsAsync(2);

        // json: the document itself, numbers typed.
        var (_, json, jsonResponse) = await RenderAsync("json");
        Assert.Equal("application/json", jsonResponse.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith(".json", jsonResponse.Content.Headers.ContentDisposition?.FileName?.Trim('"'), StringComparison.Ordinal);
        var document = JsonDocument.Parse(json).RootElement;
        Assert.Equal("jobs-summary", document.GetProperty("type").GetString());
        Assert.Equal(["Jobs per day", "By type"], document.GetProperty("sections").EnumerateArray().Select(s => s.GetProperty("title").GetString()));
        var byType = document.GetProperty("sections")[1].GetProperty("tables")[0];
        var exportRow = byType.GetProperty("rows").EnumerateArray().Single(r => r[0].GetString() == "export");
        Assert.Equal(2, exportRow[1].GetInt64());
        Assert.Equal(["stackedBar", "line", "bar", "pie"],
            document.GetProperty("sections").EnumerateArray().SelectMany(s => s.GetProperty("charts").EnumerateArray()).Select(c => c.GetProperty("kind").GetString()));
        Assert.True(document.GetProperty("figures").GetProperty("jobCount").GetDouble() >= 2);

        // csv: a zip of one CSV per table, every row.
        var (_, zip, zipResponse) = await RenderAsync("csv");
        Assert.Equal("application/zip", zipResponse.Content.Headers.ContentType?.MediaType);
        using (var archive = new ZipArchive(new MemoryStream(zip)))
        {
            Assert.Equal(["jobs-by-type.csv", "jobs-per-day.csv"], archive.Entries.Select(e => e.FullName).Order(StringComparer.Ordinal));
            var rows = await ReadCsvAsync(archive.GetEntry("jobs-by-type.csv")!);
            Assert.Equal("2", rows.Single(r => r["type"] == "export")["jobs"]);
            Assert.True((await ReadCsvAsync(archive.GetEntry("jobs-per-day.csv")!)).Count >= 7);
        }

        // xlsx: one sheet per table, numbers as number cells.
        var (_, xlsx, xlsxResponse) = await RenderAsync("xlsx");
        Assert.EndsWith(".xlsx", xlsxResponse.Content.Headers.ContentDisposition?.FileName?.Trim('"'), StringComparison.Ordinal);
        using (var workbook = SpreadsheetDocument.Open(new MemoryStream(xlsx), false))
        {
            var part = workbook.WorkbookPart!;
            var sheets = part.Workbook.Sheets!.Elements<Sheet>().ToList();
            Assert.Equal(["jobs-per-day", "jobs-by-type"], sheets.Select(s => s.Name!.Value));
            var sheet = ((WorksheetPart)part.GetPartById(sheets[1].Id!)).Worksheet;
            var exportCells = sheet.Descendants<Row>().Single(r => r.Elements<Cell>().First().InnerText == "export").Elements<Cell>().ToList();
            Assert.Null(exportCells[1].DataType);
            Assert.Equal("2", exportCells[1].CellValue!.Text);
        }

        // pdf: a PDF with its pages.
        var (_, pdf, pdfResponse) = await RenderAsync("pdf");
        Assert.Equal("application/pdf", pdfResponse.Content.Headers.ContentType?.MediaType);
        Assert.Equal("%PDF", Encoding.ASCII.GetString(pdf, 0, 4));
        using (var opened = PdfReader.Open(new MemoryStream(pdf), PdfDocumentOpenMode.Import))
        {
            // Four charts and two tables do not fit on one A4 page.
            Assert.True(opened.PageCount >= 2, $"{opened.PageCount} pages");
        }

        // html: one page, a chart as inline SVG for every chart of the document.
        var (_, html, htmlResponse) = await RenderAsync("html");
        Assert.Equal("text/html", htmlResponse.Content.Headers.ContentType?.MediaType);
        var text = Encoding.UTF8.GetString(html);
        Assert.StartsWith("<!DOCTYPE html>", text, StringComparison.Ordinal);
        Assert.Equal(4, text.Split("<svg class=\"chart\"").Length - 1);
        Assert.Contains("@media print", text, StringComparison.Ordinal);
        Assert.DoesNotContain("<script", text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task The_job_keeps_the_reports_figures_and_the_list_shows_them()
    {
        await Admin.RunExportsAsync(1);

        var job = await Admin.ReportAsync(new { type = "jobs-summary", format = "json" });

        var id = job.GetProperty("id").GetString()!;
        Assert.Equal("report", job.GetProperty("type").GetString());
        Assert.Equal($"The report is at /api/v1/reports/{id}/download.", job.GetProperty("note").GetString());
        var listed = (await Admin.ListReportsAsync()).Single(r => r.GetProperty("id").GetString() == id);
        Assert.True(listed.GetProperty("figures").GetProperty("jobCount").GetDouble() >= 1);

        // The job's outcome carries the same figures: what a workflow's condition step reads.
        await using var scope = App.Services.CreateAsyncScope();
        var instance = await scope.ServiceProvider.GetRequiredService<JobCommands>().InstanceAsync(new TenantId(Tenant.Id), id, Ct);
        var outcome = instance!.ReadOutputAs<JobOutcome>()!;
        Assert.Equal(listed.GetProperty("figures").GetProperty("jobCount").GetDouble(), outcome.Figures!["jobCount"]);
        Assert.Equal(["failedCount", "jobCount", "succeededCount", "successRate"], outcome.Figures.Keys.Order(StringComparer.Ordinal));
    }

    private static async Task<List<IReadOnlyDictionary<string, string?>>> ReadCsvAsync(ZipArchiveEntry entry)
    {
        using var buffer = new MemoryStream();
        await using (var stream = entry.Open())
        {
            await stream.CopyToAsync(buffer, Ct);
        }

        buffer.Position = 0;
        var rows = new List<IReadOnlyDictionary<string, string?>>();
        await foreach (var row in TabularReader.ReadAsync(buffer, TabularFormat.Csv, new TabularLimits(), Ct))
        {
            rows.Add(row.Values);
        }

        return rows;
    }
}
