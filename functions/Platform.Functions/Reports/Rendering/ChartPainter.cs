using System.Globalization;

namespace Platform.Functions.Reports.Rendering;

/// <summary>Where a chart is drawn: the html report's inline SVG or a PDF page. Coordinates in points, y downwards.</summary>
public interface IChartCanvas
{
    /// <summary>A data mark (bar, segment): <paramref name="label"/> is its tooltip where the medium has one.</summary>
    void Bar(double x, double y, double width, double height, string color, string label);

    void Line(double x1, double y1, double x2, double y2, string color, double width);

    /// <summary>A series as a line through its points, each point also drawn as a dot (a flat line still shows).</summary>
    void Series(IReadOnlyList<(double X, double Y)> points, string color, string label);

    /// <summary>A pie slice from <paramref name="startDegrees"/> clockwise (0 is 3 o'clock).</summary>
    void Slice(double cx, double cy, double radius, double startDegrees, double sweepDegrees, string color, string label);

    void Text(double x, double y, string text, double size, TextAnchor anchor, string color = ChartPainter.Ink, bool bold = false);
}

public enum TextAnchor
{
    Start,
    Middle,
    End,
}

/// <summary>
/// Lays out a <see cref="ReportChart"/> (bar, line, stacked bar, pie) on any <see cref="IChartCanvas"/>, so the html
/// and pdf reports draw the same chart from the same code. Negative values are drawn as zero in stacked bars and pies
/// (neither has a meaning for them); NaN and infinities as zero everywhere.
/// </summary>
public static class ChartPainter
{
    public const string Ink = "#27272a";
    public const string Grid = "#d4d4d8";

    /// <summary>Colour-blind-friendly (Okabe-Ito), distinguishable printed in grey too by their lightness.</summary>
    public static readonly string[] Palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000"];

    /// <summary>Categories beyond this many are drawn, but only every n-th is labelled.</summary>
    private const int MaxLabels = 16;

    /// <summary>Pie slices beyond this many are summed into "Other".</summary>
    private const int MaxSlices = 8;

    public static string ColorOf(int index) => Palette[index % Palette.Length];

    public static void Paint(ReportChart chart, IChartCanvas canvas, double width, double height)
    {
        ArgumentNullException.ThrowIfNull(chart);
        ArgumentNullException.ThrowIfNull(canvas);
        canvas.Text(0, 12, chart.Title, 11, TextAnchor.Start, bold: true);
        var series = chart.Series.Where(s => s.Values.Count > 0).ToList();
        if (chart.Categories.Count == 0 || series.Count == 0)
        {
            canvas.Text(width / 2, height / 2, "No data for this period.", 9, TextAnchor.Middle);
            return;
        }

        if (chart.Kind == ReportChartKind.Pie)
        {
            PaintPie(chart, series[0], canvas, width, height);
        }
        else
        {
            PaintAxes(chart, series, canvas, width, height);
        }
    }

    private static double Clean(double value) => double.IsFinite(value) ? value : 0;

    private static double ValueAt(ReportSeries series, int index) => index < series.Values.Count ? Clean(series.Values[index]) : 0;

    private static void PaintAxes(ReportChart chart, List<ReportSeries> series, IChartCanvas canvas, double width, double height)
    {
        var categories = chart.Categories;
        var stacked = chart.Kind == ReportChartKind.StackedBar;
        double max = 0, min = 0;
        for (var i = 0; i < categories.Count; i++)
        {
            if (stacked)
            {
                max = Math.Max(max, series.Sum(s => Math.Max(0, ValueAt(s, i))));
            }
            else
            {
                foreach (var s in series)
                {
                    max = Math.Max(max, ValueAt(s, i));
                    min = Math.Min(min, ValueAt(s, i));
                }
            }
        }

        var (lowTick, highTick, step) = NiceScale(min, max);
        const double left = 48, top = 24, right = 8;
        var legendHeight = series.Count > 1 || chart.Kind == ReportChartKind.StackedBar ? 16 : 0;
        var bottom = 22 + legendHeight;
        var plotWidth = width - left - right;
        var plotHeight = height - top - bottom;
        double Y(double value) => top + plotHeight * (highTick - value) / (highTick - lowTick);

        for (var tick = lowTick; tick <= highTick + step / 2; tick += step)
        {
            canvas.Line(left, Y(tick), left + plotWidth, Y(tick), Grid, 0.5);
            canvas.Text(left - 4, Y(tick) + 3, Number(tick), 7, TextAnchor.End);
        }

        if (chart.ValueLabel is { Length: > 0 } valueLabel)
        {
            canvas.Text(left, top - 4, valueLabel, 7, TextAnchor.Start);
        }

        var band = plotWidth / categories.Count;
        var labelEvery = (int)Math.Ceiling(categories.Count / (double)MaxLabels);
        for (var i = 0; i < categories.Count; i += labelEvery)
        {
            canvas.Text(left + band * (i + 0.5), top + plotHeight + 11, Shorten(categories[i], (int)Math.Max(4, band * labelEvery / 4.5)), 7, TextAnchor.Middle);
        }

        switch (chart.Kind)
        {
            case ReportChartKind.Line:
                for (var s = 0; s < series.Count; s++)
                {
                    var points = Enumerable.Range(0, categories.Count).Select(i => (left + band * (i + 0.5), Y(ValueAt(series[s], i)))).ToList();
                    canvas.Series(points, ColorOf(s), series[s].Name);
                }

                break;
            case ReportChartKind.StackedBar:
                for (var i = 0; i < categories.Count; i++)
                {
                    double below = 0;
                    for (var s = 0; s < series.Count; s++)
                    {
                        var value = Math.Max(0, ValueAt(series[s], i));
                        if (value > 0)
                        {
                            canvas.Bar(left + band * i + band * 0.1, Y(below + value), band * 0.8, Y(below) - Y(below + value), ColorOf(s),
                                $"{categories[i]} · {series[s].Name}: {Number(value)}");
                        }

                        below += value;
                    }
                }

                break;
            default:
                var barWidth = band * 0.8 / series.Count;
                for (var i = 0; i < categories.Count; i++)
                {
                    for (var s = 0; s < series.Count; s++)
                    {
                        var value = ValueAt(series[s], i);
                        if (value == 0)
                        {
                            // A zero is the axis itself: nothing to draw.
                            continue;
                        }

                        var (from, to) = value >= 0 ? (Y(value), Y(0)) : (Y(0), Y(value));
                        canvas.Bar(left + band * i + band * 0.1 + barWidth * s, from, barWidth, to - from, ColorOf(s),
                            series.Count > 1 ? $"{categories[i]} · {series[s].Name}: {Number(value)}" : $"{categories[i]}: {Number(value)}");
                    }
                }

                break;
        }

        canvas.Line(left, Y(0), left + plotWidth, Y(0), Ink, 0.8);
        if (legendHeight > 0)
        {
            Legend(canvas, series.Select(s => s.Name).ToList(), left, height - 6, plotWidth);
        }
    }

    private static void PaintPie(ReportChart chart, ReportSeries series, IChartCanvas canvas, double width, double height)
    {
        // Slices keep the categories' order and colours (a status is the same colour here as in a stacked bar of the
        // same categories); only when there are too many do the largest stay and the rest become "Other".
        var slices = chart.Categories.Select((c, i) => (Name: c, Value: Math.Max(0, ValueAt(series, i)), Color: ColorOf(i))).Where(s => s.Value > 0).ToList();
        if (slices.Count > MaxSlices)
        {
            var kept = slices.OrderByDescending(s => s.Value).Take(MaxSlices - 1).ToHashSet();
            var other = slices.Where(s => !kept.Contains(s)).Sum(s => s.Value);
            slices = [.. slices.Where(kept.Contains).Select((s, i) => (s.Name, s.Value, ColorOf(i))), ("Other", other, ColorOf(MaxSlices - 1))];
        }

        var total = slices.Sum(s => s.Value);
        if (total <= 0)
        {
            canvas.Text(width / 2, height / 2, "Nothing to show: every value is zero.", 9, TextAnchor.Middle);
            return;
        }

        var radius = Math.Min(height - 40, width * 0.5) / 2;
        var cx = 16 + radius;
        var cy = 24 + radius;
        var start = -90.0;
        for (var i = 0; i < slices.Count; i++)
        {
            var sweep = 360 * slices[i].Value / total;
            canvas.Slice(cx, cy, radius, start, sweep, slices[i].Color, $"{slices[i].Name}: {Number(slices[i].Value)}");
            start += sweep;
        }

        var x = cx + radius + 24;
        for (var i = 0; i < slices.Count; i++)
        {
            var y = 30 + i * 14;
            canvas.Bar(x, y - 7, 8, 8, slices[i].Color, slices[i].Name);
            var share = 100 * slices[i].Value / total;
            canvas.Text(x + 12, y, $"{Shorten(slices[i].Name, 28)} — {Number(slices[i].Value)} ({share.ToString("0.#", CultureInfo.InvariantCulture)} %)", 7, TextAnchor.Start);
        }
    }

    private static void Legend(IChartCanvas canvas, List<string> names, double x, double y, double width)
    {
        var each = Math.Max(60, width / Math.Max(1, names.Count));
        for (var i = 0; i < names.Count && x + each * i < x + width; i++)
        {
            var at = x + each * i;
            canvas.Line(at, y - 3, at + 10, y - 3, ColorOf(i), 4);
            canvas.Text(at + 13, y, Shorten(names[i], (int)(each / 4.5) - 3), 7, TextAnchor.Start);
        }
    }

    /// <summary>Ticks at 1, 2 or 5 times a power of ten, about five of them, covering min..max (and zero).</summary>
    internal static (double Low, double High, double Step) NiceScale(double min, double max)
    {
        if (max - min <= 0)
        {
            max = min + 1;
        }

        var rough = (max - min) / 5;
        var power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var step = (rough / power) switch { <= 1 => power, <= 2 => 2 * power, <= 5 => 5 * power, _ => 10 * power };
        return (Math.Floor(min / step) * step, Math.Ceiling(max / step) * step, step);
    }

    internal static string Number(double value) =>
        Math.Abs(value) >= 1_000_000 ? (value / 1_000_000).ToString("0.##", CultureInfo.InvariantCulture) + "M"
        : Math.Abs(value) >= 10_000 ? (value / 1000).ToString("0.#", CultureInfo.InvariantCulture) + "k"
        : value.ToString("0.##", CultureInfo.InvariantCulture);

    internal static string Shorten(string text, int max) => text.Length <= max || max < 2 ? text : text[..(max - 1)] + "…";
}
