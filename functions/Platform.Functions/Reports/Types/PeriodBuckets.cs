using System.Globalization;

namespace Platform.Functions.Reports.Types;

/// <summary>
/// The rows of a "per day" table over a report's period: UTC days for a period of up to <see cref="MaxDays"/> days (a
/// quarter), calendar months beyond, up to <see cref="MaxMonths"/> months, and years past that - so a table and its chart
/// stay readable (a year of daily bars is not), and their size bounded, whatever period is asked for.
/// </summary>
public sealed class PeriodBuckets
{
    public const int MaxDays = 92;
    public const int MaxMonths = 400;

    private readonly DateTime _first;

    public PeriodBuckets(DateTimeOffset from, DateTimeOffset to)
    {
        var first = from.UtcDateTime.Date;
        var last = to > from ? to.AddTicks(-1).UtcDateTime.Date : first;
        var days = (int)(last - first).TotalDays + 1;
        var months = ((last.Year - first.Year) * 12) + last.Month - first.Month + 1;
        (Unit, _first, Count) = days <= MaxDays ? ("day", first, days)
            : months <= MaxMonths ? ("month", new DateTime(first.Year, first.Month, 1, 0, 0, 0, DateTimeKind.Utc), months)
            : ("year", new DateTime(first.Year, 1, 1, 0, 0, 0, DateTimeKind.Utc), last.Year - first.Year + 1);
        if (to <= from)
        {
            Count = 0;
        }
    }

    /// <summary><c>day</c>, <c>month</c> or <c>year</c>.</summary>
    public string Unit { get; }

    public int Count { get; }

    /// <summary>The bucket of an instant inside the period.</summary>
    public int IndexOf(DateTimeOffset at)
    {
        var utc = at.UtcDateTime;
        return Unit switch
        {
            "day" => (int)(utc.Date - _first).TotalDays,
            "month" => ((utc.Year - _first.Year) * 12) + utc.Month - _first.Month,
            _ => utc.Year - _first.Year,
        };
    }

    /// <summary>Where bucket <paramref name="index"/> starts (UTC midnight).</summary>
    public DateTimeOffset Start(int index) => new(Unit switch
    {
        "day" => _first.AddDays(index),
        "month" => _first.AddMonths(index),
        _ => _first.AddYears(index),
    }, TimeSpan.Zero);

    /// <summary>A chart category: <c>2026-11-28</c>, <c>2026-11</c> or <c>2026</c>.</summary>
    public string Label(int index) => Start(index).ToString(Unit switch
    {
        "day" => "yyyy-MM-dd",
        "month" => "yyyy-MM",
        _ => "yyyy",
    }, CultureInfo.InvariantCulture);
}
