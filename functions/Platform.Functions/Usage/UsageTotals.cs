using System.Globalization;

namespace Platform.Functions.Usage;

/// <summary>What <c>GET /api/v1/usage</c> groups by.</summary>
public enum UsageGrouping
{
    Day,
    Endpoint,
    ApiKey,
}

/// <summary>One group of usage: requests, errors (4xx and 5xx) and latency percentiles in milliseconds (0 without requests).</summary>
public sealed record UsageItem(string Key, long Requests, long Errors, double P50Ms, double P95Ms, double P99Ms)
{
    public static UsageItem From(string key, UsageSlice slice)
    {
        var latency = slice.Latency;
        double Ms(double percentile) => latency.TotalCount == 0 ? 0 : Math.Round(latency.GetValueAtPercentile(percentile) / 1000.0, 3);
        return new UsageItem(key, slice.Requests, slice.Errors, Ms(50), Ms(95), Ms(99));
    }
}

/// <summary>Stored slices merged per group: counts add up and histograms merge, so percentiles span minutes and instances.</summary>
public sealed class UsageTotals
{
    private readonly Dictionary<string, UsageSlice> _groups = new(StringComparer.Ordinal);

    public int Count => _groups.Count;

    public void Add(string key, UsageSlice slice)
    {
        if (!_groups.TryGetValue(key, out var total))
        {
            _groups[key] = total = new UsageSlice(key, key);
        }

        total.Add(slice);
    }

    /// <summary>Days in order; endpoints and callers busiest first.</summary>
    public IReadOnlyList<UsageItem> Items(bool byKey) =>
        [.. (byKey
                ? _groups.OrderBy(g => g.Key, StringComparer.Ordinal)
                : _groups.OrderByDescending(g => g.Value.Requests).ThenBy(g => g.Key, StringComparer.Ordinal))
            .Select(g => UsageItem.From(g.Key, g.Value))];

    public static string DayOf(DateTimeOffset period) => period.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static string KeyOf(UsageGrouping grouping, DateTimeOffset period, UsageSlice slice) => grouping switch
    {
        UsageGrouping.Day => DayOf(period),
        UsageGrouping.Endpoint => slice.Endpoint,
        _ => slice.Caller,
    };
}
