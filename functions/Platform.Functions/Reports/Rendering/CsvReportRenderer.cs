using System.IO.Compression;
using Platform.Functions.Jobs.Files;

namespace Platform.Functions.Reports.Rendering;

/// <summary>
/// One CSV per table, zipped (<c>{table name}.csv</c>), written by the export's <see cref="TabularWriter"/>: UTF-8 with
/// a BOM, a header row, every row of the table, and cells that would run as spreadsheet formulas neutralised.
/// </summary>
public static class CsvReportRenderer
{
    public static async Task RenderAsync(ReportDocument document, Stream output, CancellationToken cancellationToken)
    {
        var tables = document.Sections.SelectMany(s => s.Tables).ToList();
        var names = ReportFormats.UniqueNames(tables.Select(t => t.Name), 100);
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        for (var t = 0; t < tables.Count; t++)
        {
            var table = tables[t];
            await using var entry = zip.CreateEntry(names[t] + ".csv", CompressionLevel.Optimal).Open();
            await using var writer = TabularWriter.Create(entry, TabularFormat.Csv, [.. table.Columns.Select(c => c.Name)]);
            foreach (var row in table.Rows)
            {
                await writer.WriteRowAsync([.. table.Columns.Select((c, i) => ReportFormats.Text(i < row.Count ? row[i] : null, c.Kind, forPeople: false))], cancellationToken);
            }
        }
    }
}
