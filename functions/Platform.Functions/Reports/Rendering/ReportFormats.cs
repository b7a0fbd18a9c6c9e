using System.Globalization;

namespace Platform.Functions.Reports.Rendering;

public enum ReportFormat
{
    Json,
    Csv,
    Html,
    Xlsx,
    Pdf,
}

/// <summary>The formats a report renders to, with the file each makes, and how cells read as text.</summary>
public static class ReportFormats
{
    public const string Names = "csv, json, html, xlsx or pdf";

    /// <summary>Rows of a table drawn into the html and pdf reports; the csv, xlsx and json files hold every row.</summary>
    public const int MaxRenderedRows = 200;

    public static ReportFormat? Parse(string? format) => format switch
    {
        "json" => ReportFormat.Json,
        "csv" => ReportFormat.Csv,
        "html" => ReportFormat.Html,
        "xlsx" => ReportFormat.Xlsx,
        "pdf" => ReportFormat.Pdf,
        _ => null,
    };

    public static string NameOf(ReportFormat format) => format.ToString().ToLowerInvariant();

    /// <summary>The file's extension and content type; csv is a zip of one CSV per table.</summary>
    public static (string Extension, string ContentType) FileOf(ReportFormat format) => format switch
    {
        ReportFormat.Json => ("json", "application/json"),
        ReportFormat.Csv => ("zip", "application/zip"),
        ReportFormat.Html => ("html", "text/html; charset=utf-8"),
        ReportFormat.Xlsx => ("xlsx", Jobs.Exports.ExportFormats.XlsxContentType),
        _ => ("pdf", "application/pdf"),
    };

    /// <summary>Renders the document to <paramref name="output"/> (which it does not close).</summary>
    public static Task RenderAsync(ReportDocument document, ReportFormat format, Stream output, CancellationToken cancellationToken) => format switch
    {
        ReportFormat.Json => JsonReportRenderer.RenderAsync(document, output, cancellationToken),
        ReportFormat.Csv => CsvReportRenderer.RenderAsync(document, output, cancellationToken),
        ReportFormat.Html => HtmlReportRenderer.RenderAsync(document, output, cancellationToken),
        ReportFormat.Xlsx => XlsxReportRenderer.RenderAsync(document, output, cancellationToken),
        _ => PdfReportRenderer.RenderAsync(document, output, cancellationToken),
    };

    /// <summary>A cell as text: numbers invariant, dates ISO 8601 (UTC), percentages with a % sign where shown to people.</summary>
    public static string? Text(object? value, ReportValueKind kind, bool forPeople)
    {
        switch (value)
        {
            case null:
                return null;
            case string text:
                return text;
            case bool flag:
                return flag ? "true" : "false";
            case DateTimeOffset at:
                return kind == ReportValueKind.Date
                    ? at.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)
                    : at.UtcDateTime.ToString(forPeople ? "yyyy-MM-dd HH:mm 'UTC'" : "yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            case DateTime at:
                return Text(new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)), kind, forPeople);
            case DateOnly day:
                return day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        if (AsNumber(value) is not { } number)
        {
            return Convert.ToString(value, CultureInfo.InvariantCulture);
        }

        if (!double.IsFinite(number))
        {
            return null;
        }

        if (!forPeople)
        {
            return number.ToString("0.##########", CultureInfo.InvariantCulture);
        }

        return kind switch
        {
            ReportValueKind.Percent => (number * 100).ToString("0.#", CultureInfo.InvariantCulture) + " %",
            ReportValueKind.Money => number.ToString("#,##0.00", CultureInfo.InvariantCulture),
            ReportValueKind.Count => number.ToString("#,##0", CultureInfo.InvariantCulture),
            _ => number.ToString("#,##0.##", CultureInfo.InvariantCulture),
        };
    }

    /// <summary>The value as a number when it is one (any numeric CLR type).</summary>
    public static double? AsNumber(object? value) => value switch
    {
        long n => n,
        int n => n,
        double n => n,
        float n => n,
        decimal n => (double)n,
        short n => n,
        byte n => n,
        uint n => n,
        ulong n => n,
        _ => null,
    };

    /// <summary>File-safe names (csv entries, sheet names) that stay unique within one report.</summary>
    public static List<string> UniqueNames(IEnumerable<string> names, int maxLength)
    {
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var result = new List<string>();
        foreach (var name in names)
        {
            var safe = new string([.. name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '-')]).Trim('-');
            safe = safe.Length == 0 ? "table" : safe;
            safe = safe.Length > maxLength ? safe[..maxLength] : safe;
            var candidate = safe;
            for (var n = 2; !taken.Add(candidate); n++)
            {
                var suffix = "-" + n.ToString(CultureInfo.InvariantCulture);
                candidate = (safe.Length + suffix.Length > maxLength ? safe[..(maxLength - suffix.Length)] : safe) + suffix;
            }

            result.Add(candidate);
        }

        return result;
    }
}
