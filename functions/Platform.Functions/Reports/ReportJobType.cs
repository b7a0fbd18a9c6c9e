using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Reports.Rendering;

namespace Platform.Functions.Reports;

/// <summary>
/// What <c>POST /api/v1/reports</c> takes, and a schedule or workflow step's <c>parameters</c> of job type <c>report</c>.
/// Times are ISO 8601 (a date alone is midnight UTC); <c>to</c> defaults to when the job starts and <c>from</c> to 30
/// days before <c>to</c>, so a scheduled report covers the days before each run.
/// </summary>
/// <param name="Recipients">User ids, or <c>role:&lt;name&gt;</c> for every active user of a role, mailed a link when the report is ready.</param>
public sealed record ReportStartRequest(string? Type, string? Format, string? From, string? To, string? Filter, IReadOnlyList<string>? Recipients = null);

/// <summary>A report job's parameters with the period resolved (the same on every replay of the job).</summary>
public sealed record ReportParameters(string Type, string Format, DateTimeOffset From, DateTimeOffset To, string? Filter, IReadOnlyList<string>? Recipients);

/// <summary>
/// The <c>report</c> job type: checks a report request (type, format, period, filter, recipients) with the same rules
/// wherever it comes from, and starts the <see cref="ReportOrchestrator"/>.
/// </summary>
public sealed class ReportJobType(IOptions<ReportTypeCatalog> catalog, IServiceProvider services, JobCommands jobs, TimeProvider time) : IJobType
{
    public const string Name = "report";

    /// <summary>The longest period one report covers: a year, leap day included.</summary>
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromDays(366);

    public static readonly TimeSpan DefaultPeriod = TimeSpan.FromDays(30);

    public const int MaxRecipients = 50;

    public const int MaxFilterLength = 2048;

    public const string RolePrefix = "role:";

    private static readonly System.Buffers.SearchValues<char> RoleNameCharacters =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    public string? Check(JsonElement? parameters, string field, Validation validation)
    {
        if (parameters is not { ValueKind: JsonValueKind.Object } json)
        {
            validation.Add(field, "must be an object with type, format and optional from, to, filter and recipients");
            return null;
        }

        var request = Read(json, field, validation);
        return request is null ? null : Check(request, field + ".", validation);
    }

    /// <summary>The rules of a report request; the permission its type needs (besides <c>reports.read</c>) when it is valid.</summary>
    public string? Check(ReportStartRequest request, string prefix, Validation validation)
    {
        IReportType? type = null;
        using var scope = services.CreateScope();
        if (request.Type is null || !catalog.Value.Types.Contains(request.Type))
        {
            validation.Add(prefix + "type", $"must be one of: {string.Join(", ", catalog.Value.Types)}");
        }
        else
        {
            type = scope.ServiceProvider.GetRequiredKeyedService<IReportType>(request.Type);
        }

        if (request.Format is not null && ReportFormats.Parse(request.Format) is null)
        {
            validation.Add(prefix + "format", $"must be {ReportFormats.Names}");
        }

        var from = Time(request.From, prefix + "from", validation);
        var to = Time(request.To, prefix + "to", validation);
        // Checked as the job will run it: a missing end is now, a missing start 30 days before the end.
        if ((request.From is null || from is not null) && (request.To is null || to is not null))
        {
            var t = to ?? time.GetUtcNow();
            var f = from ?? t - DefaultPeriod;
            if (f > t)
            {
                validation.Add(prefix + "from", "must not be after to");
            }
            else if (t - f > MaxPeriod)
            {
                validation.Add(prefix + "to", $"must be at most {MaxPeriod.TotalDays:0} days after from");
            }
        }

        if (request.Recipients is { } recipients)
        {
            if (recipients.Count > MaxRecipients)
            {
                validation.Add(prefix + "recipients", $"must name at most {MaxRecipients} recipients");
            }

            for (var i = 0; i < recipients.Count && i < MaxRecipients; i++)
            {
                if (!IsRecipient(recipients[i]))
                {
                    validation.Add($"{prefix}recipients[{i}]", "must be a user id or role:<name>");
                }
            }
        }

        if (request.Filter?.Length > MaxFilterLength)
        {
            validation.Add(prefix + "filter", $"must be at most {MaxFilterLength} characters");
        }
        else if (type?.CheckFilter(request.Filter) is { } filterError)
        {
            validation.Add(prefix + "filter", filterError);
        }

        return validation.IsValid ? type!.Permission : null;
    }

    public Task<JobView> StartAsync(Caller caller, JsonElement? parameters, string jobId, CancellationToken cancellationToken) =>
        StartAsync(caller, Read(parameters!.Value, "parameters", new Validation())!, jobId, cancellationToken);

    /// <summary>Starts a checked request; the period is fixed now, so the job reports the same days however often it replays.</summary>
    public Task<JobView> StartAsync(Caller caller, ReportStartRequest request, string jobId, CancellationToken cancellationToken)
    {
        var to = Time(request.To, "to", new Validation()) ?? time.GetUtcNow();
        var from = Time(request.From, "from", new Validation()) ?? to - DefaultPeriod;
        var parameters = new ReportParameters(request.Type!, request.Format ?? "json", from, to, string.IsNullOrWhiteSpace(request.Filter) ? null : request.Filter,
            request.Recipients is { Count: > 0 } recipients ? [.. recipients.Distinct(StringComparer.Ordinal)] : null);
        return jobs.StartAsync(caller, ReportOrchestrator.Name, parameters, cancellationToken, jobId);
    }

    /// <summary>A user id (the app's 26-character ids) or <c>role:</c> and a role name.</summary>
    public static bool IsRecipient(string? recipient) => recipient switch
    {
        null => false,
        _ when recipient.StartsWith(RolePrefix, StringComparison.Ordinal) =>
            recipient.Length > RolePrefix.Length && recipient.Length <= RolePrefix.Length + 64 &&
            recipient.AsSpan(RolePrefix.Length).IndexOfAnyExcept(RoleNameCharacters) < 0,
        _ => recipient.Length == 26 && recipient.All(char.IsAsciiLetterOrDigit),
    };

    private static DateTimeOffset? Time(string? text, string field, Validation validation)
    {
        if (text is null)
        {
            return null;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at))
        {
            return at;
        }

        validation.Add(field, "must be an ISO 8601 time such as 2026-11-01T00:00:00Z, or a date");
        return null;
    }

    private static ReportStartRequest? Read(JsonElement json, string field, Validation validation)
    {
        string? Text(string name)
        {
            if (!json.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (value.ValueKind != JsonValueKind.String)
            {
                validation.Add($"{field}.{name}", "must be a string");
                return null;
            }

            return value.GetString();
        }

        List<string>? recipients = null;
        if (json.TryGetProperty("recipients", out var list) && list.ValueKind != JsonValueKind.Null)
        {
            if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(r => r.ValueKind != JsonValueKind.String))
            {
                validation.Add($"{field}.recipients", "must be an array of user ids and role:<name> strings");
            }
            else
            {
                recipients = [.. list.EnumerateArray().Select(r => r.GetString()!)];
            }
        }

        var request = new ReportStartRequest(Text("type"), Text("format"), Text("from"), Text("to"), Text("filter"), recipients);
        return validation.IsValid ? request : null;
    }
}
