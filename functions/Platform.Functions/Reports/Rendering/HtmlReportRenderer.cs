using System.Net;
using System.Text;

namespace Platform.Functions.Reports.Rendering;

/// <summary>
/// One self-contained page: styles inline, charts as inline SVG (no script, no external resource, so it opens offline
/// and from a mail attachment), print styles that keep a chart or a table row on one page and drop the screen
/// backgrounds. Tables show their first <see cref="ReportFormats.MaxRenderedRows"/> rows, with a note when there are more.
/// </summary>
public static class HtmlReportRenderer
{
    private const double ChartWidth = 640;
    private const double ChartHeight = 260;

    private const string Style = """
        :root { color-scheme: light; }
        body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #18181b; margin: 0; background: #f4f4f5; }
        main { max-width: 980px; margin: 0 auto; padding: 24px; background: #fff; }
        h1 { font-size: 24px; margin: 0 0 4px; }
        h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #e4e4e7; padding-bottom: 4px; }
        h3 { font-size: 14px; margin: 16px 0 6px; }
        .period { color: #52525b; margin: 0 0 16px; }
        .figures { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; padding: 0; list-style: none; }
        .figures li { border: 1px solid #e4e4e7; border-radius: 6px; padding: 8px 12px; min-width: 120px; }
        .figures b { display: block; font-size: 20px; }
        figure { margin: 16px 0; }
        svg.chart { max-width: 760px; height: auto; display: block; }
        table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
        th, td { border-bottom: 1px solid #e4e4e7; padding: 4px 8px; text-align: left; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        th { background: #f4f4f5; }
        .note { color: #71717a; font-size: 12px; }
        @media print {
          @page { size: A4; margin: 14mm; }
          body { background: #fff; }
          main { max-width: none; padding: 0; }
          h2 { break-after: avoid; }
          figure, tr, .figures li { break-inside: avoid; }
          thead { display: table-header-group; }
          th { background: none; border-bottom: 1.5px solid #18181b; }
        }
        """;

    public static async Task RenderAsync(ReportDocument document, Stream output, CancellationToken cancellationToken)
    {
        await using var writer = new StreamWriter(output, new UTF8Encoding(false), leaveOpen: true);
        await writer.WriteAsync(Render(document).AsMemory(), cancellationToken);
    }

    public static string Render(ReportDocument document)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        html.Append("<title>").Append(E(document.Title)).Append("</title><style>").Append(Style).Append("</style></head><body><main>");
        html.Append("<h1>").Append(E(document.Title)).Append("</h1>");
        html.Append("<p class=\"period\">").Append(E(Period(document))).Append("</p>");
        if (document.Figures.Count > 0)
        {
            html.Append("<ul class=\"figures\">");
            foreach (var (name, value) in document.Figures)
            {
                html.Append("<li>").Append(E(name)).Append("<b>").Append(E(ReportFormats.Text(value, ReportValueKind.Number, forPeople: true) ?? "")).Append("</b></li>");
            }

            html.Append("</ul>");
        }

        foreach (var section in document.Sections)
        {
            html.Append("<section><h2>").Append(E(section.Title)).Append("</h2>");
            if (!string.IsNullOrWhiteSpace(section.Text))
            {
                foreach (var paragraph in section.Text.Split("\n\n"))
                {
                    html.Append("<p>").Append(E(paragraph)).Append("</p>");
                }
            }

            foreach (var chart in section.Charts)
            {
                html.Append("<figure>").Append(SvgCanvas.Draw(chart, ChartWidth, ChartHeight)).Append("</figure>");
            }

            foreach (var table in section.Tables)
            {
                Table(html, table);
            }

            html.Append("</section>");
        }

        html.Append("<p class=\"note\">Generated ").Append(E(ReportFormats.Text(document.GeneratedAt, ReportValueKind.Timestamp, forPeople: true)!)).Append(".</p>");
        return html.Append("</main></body></html>\n").ToString();
    }

    internal static string Period(ReportDocument document) =>
        $"{ReportFormats.Text(document.From, ReportValueKind.Timestamp, forPeople: true)} to {ReportFormats.Text(document.To, ReportValueKind.Timestamp, forPeople: true)}";

    internal static string TruncationNote(ReportTable table) =>
        $"The first {ReportFormats.MaxRenderedRows} of {table.Rows.Count} rows; the csv and xlsx reports hold every row.";

    private static void Table(StringBuilder html, ReportTable table)
    {
        html.Append("<h3>").Append(E(table.Title)).Append("</h3><table><thead><tr>");
        foreach (var column in table.Columns)
        {
            html.Append(IsNumeric(column.Kind) ? "<th class=\"num\">" : "<th>").Append(E(column.Name)).Append("</th>");
        }

        html.Append("</tr></thead><tbody>");
        foreach (var row in table.Rows.Take(ReportFormats.MaxRenderedRows))
        {
            html.Append("<tr>");
            for (var i = 0; i < table.Columns.Count; i++)
            {
                var column = table.Columns[i];
                html.Append(IsNumeric(column.Kind) ? "<td class=\"num\">" : "<td>").Append(E(ReportFormats.Text(i < row.Count ? row[i] : null, column.Kind, forPeople: true) ?? "")).Append("</td>");
            }

            html.Append("</tr>");
        }

        html.Append("</tbody></table>");
        if (table.Rows.Count == 0)
        {
            html.Append("<p class=\"note\">No rows for this period.</p>");
        }
        else if (table.Rows.Count > ReportFormats.MaxRenderedRows)
        {
            html.Append("<p class=\"note\">").Append(E(TruncationNote(table))).Append("</p>");
        }
    }

    internal static bool IsNumeric(ReportValueKind kind) => kind is ReportValueKind.Count or ReportValueKind.Number or ReportValueKind.Percent or ReportValueKind.Money;

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
