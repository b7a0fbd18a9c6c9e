using System.Globalization;
using System.Net;
using System.Text;

namespace Platform.Functions.Reports.Rendering;

/// <summary>
/// Draws a chart as inline SVG markup. Data marks carry <c>class="mark"</c> and a <c>&lt;title&gt;</c> (the tooltip a
/// browser shows); every text is HTML-encoded, so a category named like markup stays text.
/// </summary>
public sealed class SvgCanvas(StringBuilder svg) : IChartCanvas
{
    public static string Draw(ReportChart chart, double width, double height)
    {
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg class=\"chart\" data-kind=\"{Encode(chart.Kind.ToString())}\" data-name=\"{Encode(chart.Name)}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" aria-label=\"{Encode(chart.Title)}\">");
        ChartPainter.Paint(chart, new SvgCanvas(svg), width, height);
        return svg.Append("</svg>").ToString();
    }

    public void Bar(double x, double y, double width, double height, string color, string label) =>
        svg.Append(CultureInfo.InvariantCulture,
            $"<rect class=\"mark\" x=\"{F(x)}\" y=\"{F(y)}\" width=\"{F(Math.Max(width, 0))}\" height=\"{F(Math.Max(height, 0))}\" fill=\"{color}\"><title>{Encode(label)}</title></rect>");

    public void Line(double x1, double y1, double x2, double y2, string color, double width) =>
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(x1)}\" y1=\"{F(y1)}\" x2=\"{F(x2)}\" y2=\"{F(y2)}\" stroke=\"{color}\" stroke-width=\"{F(width)}\"/>");

    public void Series(IReadOnlyList<(double X, double Y)> points, string color, string label)
    {
        svg.Append("<g class=\"series\">");
        svg.Append(CultureInfo.InvariantCulture, $"<polyline class=\"mark\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"");
        svg.AppendJoin(' ', points.Select(p => F(p.X) + "," + F(p.Y)));
        svg.Append(CultureInfo.InvariantCulture, $"\"><title>{Encode(label)}</title></polyline>");
        foreach (var (x, y) in points)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<circle class=\"mark\" cx=\"{F(x)}\" cy=\"{F(y)}\" r=\"2.2\" fill=\"{color}\"/>");
        }

        svg.Append("</g>");
    }

    public void Slice(double cx, double cy, double radius, double startDegrees, double sweepDegrees, string color, string label)
    {
        if (sweepDegrees >= 359.99)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<circle class=\"mark\" cx=\"{F(cx)}\" cy=\"{F(cy)}\" r=\"{F(radius)}\" fill=\"{color}\"><title>{Encode(label)}</title></circle>");
            return;
        }

        var (x1, y1) = Point(cx, cy, radius, startDegrees);
        var (x2, y2) = Point(cx, cy, radius, startDegrees + sweepDegrees);
        var large = sweepDegrees > 180 ? 1 : 0;
        svg.Append(CultureInfo.InvariantCulture,
            $"<path class=\"mark\" d=\"M{F(cx)},{F(cy)} L{F(x1)},{F(y1)} A{F(radius)},{F(radius)} 0 {large} 1 {F(x2)},{F(y2)} Z\" fill=\"{color}\" stroke=\"#fff\" stroke-width=\"0.8\"><title>{Encode(label)}</title></path>");
    }

    public void Text(double x, double y, string text, double size, TextAnchor anchor, string color = ChartPainter.Ink, bool bold = false) =>
        svg.Append(CultureInfo.InvariantCulture,
            $"<text x=\"{F(x)}\" y=\"{F(y)}\" font-size=\"{F(size)}\" text-anchor=\"{anchor switch { TextAnchor.Middle => "middle", TextAnchor.End => "end", _ => "start" }}\" fill=\"{color}\"{(bold ? " font-weight=\"bold\"" : "")}>{Encode(text)}</text>");

    private static (double X, double Y) Point(double cx, double cy, double radius, double degrees) =>
        (cx + radius * Math.Cos(degrees * Math.PI / 180), cy + radius * Math.Sin(degrees * Math.PI / 180));

    private static string F(double value) => double.IsFinite(value) ? value.ToString("0.##", CultureInfo.InvariantCulture) : "0";

    private static string Encode(string text) => WebUtility.HtmlEncode(text);
}
