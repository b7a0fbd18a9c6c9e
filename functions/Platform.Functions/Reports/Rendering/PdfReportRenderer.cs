using System.Globalization;
using PdfSharp;
using PdfSharp.Drawing;
using PdfSharp.Fonts;
using PdfSharp.Pdf;

namespace Platform.Functions.Reports.Rendering;

/// <summary>
/// A4 pages drawn with PDFsharp's own graphics (no native library): title and period, the headline figures, then
/// each section's text, its charts (the same <see cref="ChartPainter"/> layout as the html report) and its tables
/// (the first <see cref="ReportFormats.MaxRenderedRows"/> rows, header repeated on each page, cells cut to their
/// column), and "page n of m" at the foot of every page. The font is the one PDFsharp ships (Segoe WP), embedded,
/// so the file looks the same wherever it is opened and the server needs no installed fonts.
/// </summary>
public static class PdfReportRenderer
{
    private const double Margin = 40;
    private const double ChartHeight = 220;
    private const double RowHeight = 12;
    private const string Family = "Segoe WP";

    public static Task RenderAsync(ReportDocument document, Stream output, CancellationToken cancellationToken)
    {
        EmbeddedFonts.Install();
        using var pdf = new PdfDocument();
        pdf.Info.Title = document.Title;
        pdf.Info.Creator = "Platform reports";
        var writer = new PageWriter(pdf);
        writer.Text(document.Title, 18, bold: true);
        writer.Text(HtmlReportRenderer.Period(document), 10, color: "#52525b");
        if (document.Figures.Count > 0)
        {
            writer.Gap(4);
            writer.Text(string.Join("   ·   ", document.Figures.Select(f => $"{f.Key}: {ReportFormats.Text(f.Value, ReportValueKind.Number, forPeople: true)}")), 10);
        }

        foreach (var section in document.Sections)
        {
            cancellationToken.ThrowIfCancellationRequested();
            writer.Gap(14);
            writer.Need(60);
            writer.Text(section.Title, 14, bold: true);
            if (!string.IsNullOrWhiteSpace(section.Text))
            {
                writer.Text(section.Text, 10);
            }

            foreach (var chart in section.Charts)
            {
                writer.Gap(6);
                writer.Chart(chart);
            }

            foreach (var table in section.Tables)
            {
                writer.Gap(8);
                writer.Table(table);
            }
        }

        writer.Finish();
        pdf.Save(output, closeStream: false);
        return Task.CompletedTask;
    }

    /// <summary>Lays content down a page and starts the next when it runs out.</summary>
    private sealed class PageWriter(PdfDocument pdf)
    {
        private XGraphics? _gfx;
        private PdfPage? _page;
        private double _y;

        private double Width => _page!.Width.Point - 2 * Margin;

        private double Bottom => _page!.Height.Point - Margin - 14;

        public XGraphics Graphics => _gfx ?? NewPage();

        public void Gap(double points)
        {
            _ = Graphics;
            _y += points;
        }

        /// <summary>Starts a new page unless <paramref name="points"/> still fit on this one.</summary>
        public void Need(double points)
        {
            if (_gfx is null || _y + points > Bottom)
            {
                NewPage();
            }
        }

        public void Text(string text, double size, bool bold = false, string color = ChartPainter.Ink)
        {
            var font = Font(size, bold);
            _ = Graphics;
            foreach (var paragraph in text.ReplaceLineEndings("\n").Split('\n'))
            {
                foreach (var line in Wrap(paragraph, font))
                {
                    Need(size * 1.35);
                    _y += size * 1.35;
                    Graphics.DrawString(line, font, Brush(color), Margin, _y, XStringFormats.BaseLineLeft);
                }
            }
        }

        public void Chart(ReportChart chart)
        {
            Need(ChartHeight);
            var state = Graphics.Save();
            Graphics.TranslateTransform(Margin, _y);
            ChartPainter.Paint(chart, new PdfCanvas(Graphics), Width, ChartHeight);
            Graphics.Restore(state);
            _y += ChartHeight;
        }

        public void Table(ReportTable table)
        {
            Need(RowHeight * 4);
            Text(table.Title, 11, bold: true);
            _y += 4;
            var columns = table.Columns.Count;
            if (columns == 0)
            {
                return;
            }

            var width = Width / columns;
            var font = Font(8, false);
            var header = Font(8, true);
            void Header()
            {
                _y += RowHeight;
                for (var c = 0; c < columns; c++)
                {
                    var numeric = HtmlReportRenderer.IsNumeric(table.Columns[c].Kind);
                    Graphics.DrawString(Fit(table.Columns[c].Name, header, width - 4), header, XBrushes.Black,
                        numeric ? Margin + (c + 1) * width - 2 : Margin + c * width + 2, _y - 3, numeric ? XStringFormats.BaseLineRight : XStringFormats.BaseLineLeft);
                }

                Graphics.DrawLine(new XPen(XColors.Black, 0.8), Margin, _y, Margin + Width, _y);
            }

            Header();
            var rule = new XPen(Color("#e4e4e7"), 0.4);
            foreach (var row in table.Rows.Take(ReportFormats.MaxRenderedRows))
            {
                if (_y + RowHeight > Bottom)
                {
                    NewPage();
                    Header();
                }

                _y += RowHeight;
                for (var c = 0; c < columns; c++)
                {
                    var kind = table.Columns[c].Kind;
                    var text = Fit(ReportFormats.Text(c < row.Count ? row[c] : null, kind, forPeople: true) ?? "", font, width - 4);
                    var numeric = HtmlReportRenderer.IsNumeric(kind);
                    Graphics.DrawString(text, font, XBrushes.Black, numeric ? Margin + (c + 1) * width - 2 : Margin + c * width + 2, _y - 3,
                        numeric ? XStringFormats.BaseLineRight : XStringFormats.BaseLineLeft);
                }

                Graphics.DrawLine(rule, Margin, _y, Margin + Width, _y);
            }

            if (table.Rows.Count == 0)
            {
                Text("No rows for this period.", 8, color: "#71717a");
            }
            else if (table.Rows.Count > ReportFormats.MaxRenderedRows)
            {
                Text(HtmlReportRenderer.TruncationNote(table), 8, color: "#71717a");
            }
        }

        public void Finish()
        {
            _ = Graphics;
            _gfx!.Dispose();
            _gfx = null;
            var font = Font(8, false);
            for (var i = 0; i < pdf.PageCount; i++)
            {
                var page = pdf.Pages[i];
                using var gfx = XGraphics.FromPdfPage(page, XGraphicsPdfPageOptions.Append);
                gfx.DrawString($"Page {i + 1} of {pdf.PageCount}", font, Brush("#71717a"), page.Width.Point - Margin, page.Height.Point - Margin / 2, XStringFormats.BaseLineRight);
            }
        }

        private XGraphics NewPage()
        {
            _gfx?.Dispose();
            _page = pdf.AddPage();
            _page.Size = PageSize.A4;
            _gfx = XGraphics.FromPdfPage(_page);
            _y = Margin;
            return _gfx;
        }

        private IEnumerable<string> Wrap(string paragraph, XFont font)
        {
            var line = "";
            foreach (var word in paragraph.Split(' '))
            {
                var candidate = line.Length == 0 ? word : line + " " + word;
                if (line.Length > 0 && Graphics.MeasureString(candidate, font).Width > Width)
                {
                    yield return line;
                    line = word;
                }
                else
                {
                    line = candidate;
                }
            }

            yield return Fit(line, font, Width);
        }

        private string Fit(string text, XFont font, double width)
        {
            if (Graphics.MeasureString(text, font).Width <= width)
            {
                return text;
            }

            var (low, high) = (0, text.Length);
            while (low < high)
            {
                var mid = (low + high + 1) / 2;
                if (Graphics.MeasureString(text[..mid] + "…", font).Width <= width)
                {
                    low = mid;
                }
                else
                {
                    high = mid - 1;
                }
            }

            return text[..low] + "…";
        }
    }

    /// <summary>Draws <see cref="ChartPainter"/>'s chart with PDFsharp, in the coordinates the writer translated to.</summary>
    private sealed class PdfCanvas(XGraphics gfx) : IChartCanvas
    {
        public void Bar(double x, double y, double width, double height, string color, string label)
        {
            if (width > 0 && height > 0)
            {
                gfx.DrawRectangle(Brush(color), x, y, width, height);
            }
        }

        public void Line(double x1, double y1, double x2, double y2, string color, double width) =>
            gfx.DrawLine(new XPen(Color(color), width), x1, y1, x2, y2);

        public void Series(IReadOnlyList<(double X, double Y)> points, string color, string label)
        {
            if (points.Count > 1)
            {
                gfx.DrawLines(new XPen(Color(color), 1.6), [.. points.Select(p => new XPoint(p.X, p.Y))]);
            }

            foreach (var (x, y) in points)
            {
                gfx.DrawEllipse(Brush(color), x - 2, y - 2, 4, 4);
            }
        }

        public void Slice(double cx, double cy, double radius, double startDegrees, double sweepDegrees, string color, string label)
        {
            if (sweepDegrees >= 359.99)
            {
                gfx.DrawEllipse(Brush(color), cx - radius, cy - radius, 2 * radius, 2 * radius);
            }
            else if (sweepDegrees > 0)
            {
                gfx.DrawPie(new XPen(XColors.White, 0.8), Brush(color), cx - radius, cy - radius, 2 * radius, 2 * radius, startDegrees, sweepDegrees);
            }
        }

        public void Text(double x, double y, string text, double size, TextAnchor anchor, string color = ChartPainter.Ink, bool bold = false) =>
            gfx.DrawString(text, Font(size, bold), Brush(color), x, y, anchor switch
            {
                TextAnchor.Middle => XStringFormats.BaseLineCenter,
                TextAnchor.End => XStringFormats.BaseLineRight,
                _ => XStringFormats.BaseLineLeft,
            });
    }

    private static XFont Font(double size, bool bold) => new(Family, size, bold ? XFontStyleEx.Bold : XFontStyleEx.Regular);

    private static XSolidBrush Brush(string hex) => new(Color(hex));

    private static XColor Color(string hex) => XColor.FromArgb(
        int.Parse(hex.AsSpan(1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
        int.Parse(hex.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
        int.Parse(hex.AsSpan(5, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));

    /// <summary>
    /// PDFsharp finds no fonts by itself outside Windows: this resolver hands it the Segoe WP faces its own package
    /// ships, for every family asked for. Installed once per process (PDFsharp's font settings are global).
    /// </summary>
    private sealed class EmbeddedFonts : IFontResolver
    {
        private static readonly Lock Gate = new();

        public static void Install()
        {
            lock (Gate)
            {
                if (GlobalFontSettings.FontResolver is not EmbeddedFonts)
                {
                    GlobalFontSettings.FontResolver = new EmbeddedFonts();
                }
            }
        }

        public FontResolverInfo? ResolveTypeface(string familyName, bool isBold, bool isItalic) =>
            new(isBold ? "SegoeWP-Bold" : "SegoeWP", mustSimulateBold: false, mustSimulateItalic: isItalic);

        public byte[]? GetFont(string faceName) => faceName == "SegoeWP-Bold" ? PdfSharp.WPFonts.FontDataHelper.SegoeWPBold : PdfSharp.WPFonts.FontDataHelper.SegoeWP;
    }
}
