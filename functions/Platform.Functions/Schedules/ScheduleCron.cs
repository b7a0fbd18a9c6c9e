using System.Globalization;
using Cronos;
using Platform.Functions.Http;

namespace Platform.Functions.Schedules;

/// <summary>
/// A schedule's recurrence: a 5-field cron (minute precision) or a 6-field one (seconds first), read in an IANA time
/// zone. Occurrences are computed by Cronos in that zone, which is what makes daylight-saving days right: a time the
/// spring-forward gap skips (02:30 in Europe/Berlin on the last Sunday of March) runs once, at the end of the gap, and
/// a time the fall-back overlap repeats (02:30 on the last Sunday of October) runs once, at its first instant.
/// </summary>
public sealed class ScheduleCron
{
    public const int MaxLength = 100;
    public const int MaxTimeZoneLength = 64;

    private readonly CronExpression _expression;

    private ScheduleCron(CronExpression expression, TimeZoneInfo zone)
    {
        _expression = expression;
        Zone = zone;
    }

    public TimeZoneInfo Zone { get; }

    /// <summary>The first occurrence strictly after <paramref name="after"/> (UTC), or null when there is none.</summary>
    public DateTimeOffset? Next(DateTimeOffset after) =>
        _expression.GetNextOccurrence(after, Zone)?.ToUniversalTime();

    /// <summary>
    /// Reads a cron and zone as a tenant wrote them. Errors name the field: <c>cron</c> for the expression (bad syntax,
    /// a seconds field that fires more than once a minute), <c>timeZone</c> for an unknown zone.
    /// </summary>
    public static ScheduleCron? Parse(string? cron, string? timeZone, Validation validation)
    {
        var zone = ParseZone(timeZone, validation);
        var expression = ParseExpression(cron, validation);
        return zone is null || expression is null ? null : new ScheduleCron(expression, zone);
    }

    /// <summary>An IANA zone id (<c>Europe/Berlin</c>, <c>UTC</c>); Windows names and offsets are refused.</summary>
    public static TimeZoneInfo? ParseZone(string? timeZone, Validation validation)
    {
        if (string.IsNullOrWhiteSpace(timeZone))
        {
            return TimeZoneInfo.Utc;
        }

        if (timeZone.Length > MaxTimeZoneLength || !timeZone.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '+'))
        {
            validation.Add("timeZone", "must be an IANA time zone such as Europe/Berlin or UTC");
            return null;
        }

        try
        {
            var zone = TimeZoneInfo.FindSystemTimeZoneById(timeZone);
            if (zone.HasIanaId)
            {
                return zone;
            }
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
        }

        validation.Add("timeZone", $"'{timeZone}' is not an IANA time zone (such as Europe/Berlin or UTC)");
        return null;
    }

    private static CronExpression? ParseExpression(string? cron, Validation validation)
    {
        if (string.IsNullOrWhiteSpace(cron))
        {
            validation.Add("cron", "is required: 5 fields (minute hour day month weekday) or 6 with seconds first");
            return null;
        }

        if (cron.Length > MaxLength)
        {
            validation.Add("cron", $"must be at most {MaxLength} characters");
            return null;
        }

        var fields = cron.Split(' ', '\t').Where(f => f.Length > 0).ToArray();
        if (fields.Length is not (5 or 6))
        {
            validation.Add("cron", "must have 5 fields (minute hour day month weekday) or 6 with seconds first");
            return null;
        }

        // At most one run a minute: a seconds field is one second of the minute, never a list, range or step.
        if (fields.Length == 6 && !(fields[0].Length <= 2 && fields[0].All(char.IsAsciiDigit) &&
            int.Parse(fields[0], CultureInfo.InvariantCulture) < 60))
        {
            validation.Add("cron", "runs at most once a minute: the seconds field must be a single second (0-59)");
            return null;
        }

        try
        {
            return CronExpression.Parse(string.Join(' ', fields), fields.Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException ex)
        {
            validation.Add("cron", "is not a valid cron expression: " + ex.Message);
            return null;
        }
    }
}
