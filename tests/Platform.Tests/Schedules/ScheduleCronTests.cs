using Platform.Functions.Http;
using Platform.Functions.Schedules;

namespace Platform.Tests.Schedules;

/// <summary>
/// The next-occurrence function of schedules on its own (no app, no storage): cron fields, zones and the two
/// daylight-saving days of Europe/Berlin, where 02:30 is skipped in spring and happens twice in autumn.
/// </summary>
public sealed class ScheduleCronTests
{
    private static ScheduleCron Cron(string cron, string zone = "UTC")
    {
        var validation = new Validation();
        var parsed = ScheduleCron.Parse(cron, zone, validation);
        Assert.True(validation.IsValid, string.Join("; ", validation.Errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")));
        return parsed!;
    }

    private static IReadOnlyList<string> Refused(string cron, string zone = "UTC")
    {
        var validation = new Validation();
        Assert.Null(ScheduleCron.Parse(cron, zone, validation));
        return [.. validation.Errors.Keys];
    }

    /// <summary>Every occurrence in [from, to), in UTC.</summary>
    private static List<DateTimeOffset> Occurrences(ScheduleCron cron, DateTimeOffset from, DateTimeOffset to)
    {
        var all = new List<DateTimeOffset>();
        var at = from.AddTicks(-1);
        while (cron.Next(at) is { } next && next < to)
        {
            all.Add(next);
            at = next;
        }

        return all;
    }

    [Fact]
    public void A_0230_job_on_the_spring_forward_day_runs_once_when_the_clock_jumps_to_0300()
    {
        var cron = Cron("30 2 * * *", "Europe/Berlin");

        // 2027-03-28: 02:00 CET becomes 03:00 CEST, so 02:30 never happens that day.
        var day = Occurrences(cron, Parse("2027-03-27T23:00:00Z"), Parse("2027-03-28T22:00:00Z"));

        Assert.Equal([Parse("2027-03-28T01:00:00Z")], day);
        // The days around it run at 02:30 local: 01:30Z in winter time, 00:30Z in summer time.
        Assert.Equal(Parse("2027-03-27T01:30:00Z"), cron.Next(Parse("2027-03-26T12:00:00Z")));
        Assert.Equal(Parse("2027-03-29T00:30:00Z"), cron.Next(Parse("2027-03-28T12:00:00Z")));
    }

    [Fact]
    public void A_0230_job_on_the_fall_back_day_runs_once_though_0230_happens_twice()
    {
        var cron = Cron("30 2 * * *", "Europe/Berlin");

        // 2027-10-31: 03:00 CEST becomes 02:00 CET, so 02:30 is 00:30Z and again 01:30Z.
        var day = Occurrences(cron, Parse("2027-10-30T22:00:00Z"), Parse("2027-10-31T23:00:00Z"));

        Assert.Equal([Parse("2027-10-31T00:30:00Z")], day);
        Assert.Equal(Parse("2027-11-01T01:30:00Z"), cron.Next(Parse("2027-10-31T12:00:00Z")));
    }

    [Fact]
    public void Six_fields_put_seconds_first_and_five_fields_run_on_the_minute()
    {
        Assert.Equal(Parse("2027-01-01T00:00:15Z"), Cron("15 * * * * *").Next(Parse("2027-01-01T00:00:00Z")));
        Assert.Equal(Parse("2027-01-01T00:01:00Z"), Cron("* * * * *").Next(Parse("2027-01-01T00:00:00Z")));
        Assert.Equal(Parse("2027-01-04T07:00:00Z"), Cron("0 8 * * MON", "Europe/Berlin").Next(Parse("2027-01-01T00:00:00Z")));
    }

    [Fact]
    public void Bad_crons_and_zones_are_refused_naming_the_field()
    {
        Assert.Equal(["cron"], Refused("61 * * * *"));
        Assert.Equal(["cron"], Refused("* * * *"));
        Assert.Equal(["cron"], Refused("* * * * * * *"));
        Assert.Equal(["cron"], Refused("not a cron at all"));
        Assert.Equal(["cron"], Refused(""));
        // More than one run a minute.
        Assert.Equal(["cron"], Refused("*/5 * * * * *"));
        Assert.Equal(["cron"], Refused("0,30 * * * * *"));
        Assert.Equal(["cron"], Refused("* * * * * *"));
        Assert.Equal(["timeZone"], Refused("0 2 * * *", "Mars/Olympus_Mons"));
        Assert.Equal(["timeZone"], Refused("0 2 * * *", "W. Europe Standard Time"));
        Assert.Equal(["timeZone"], Refused("0 2 * * *", "../../etc/passwd"));
        Assert.Equal(["cron", "timeZone"], Refused("nope", "Nowhere/Atall").Order().ToList());
    }

    private static DateTimeOffset Parse(string text) => DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
}
