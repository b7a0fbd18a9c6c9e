using System.Globalization;

namespace Platform.Benchmarks;

/// <summary>Summary statistics shared by the figures.</summary>
internal static class Statistics
{
    public static double Median(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("no values", nameof(values));
        }

        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    public static double Percentile(IReadOnlyCollection<double> values, double percent) => LoginFigure.Percentile(values, percent);

    /// <summary>A latency as the figures print it: 1 decimal under 100 ms, whole ms under 10 s, then seconds.</summary>
    public static string Ms(double milliseconds) => milliseconds switch
    {
        >= 10_000 => string.Create(CultureInfo.InvariantCulture, $"{milliseconds / 1000:0.0} s"),
        >= 100 => string.Create(CultureInfo.InvariantCulture, $"{milliseconds:0} ms"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{milliseconds:0.0} ms"),
    };
}
