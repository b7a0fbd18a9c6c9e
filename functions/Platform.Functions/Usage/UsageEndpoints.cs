using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Roles;

namespace Platform.Functions.Usage;

/// <summary><c>GET /api/v1/usage</c>: the caller's tenant's API usage, grouped by day, endpoint or caller.</summary>
public static class UsageEndpoints
{
    /// <summary>The longest range one request may ask for.</summary>
    public static readonly TimeSpan MaxRange = TimeSpan.FromDays(92);

    /// <summary>The range asked for when from and to are absent.</summary>
    public static readonly TimeSpan DefaultRange = TimeSpan.FromDays(30);

    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/usage").WithTags("Usage");
        group.MapGet("/", GetUsage).RequirePermission(Permissions.UsageRead).WithName("GetUsage")
            .WithSummary("The tenant's API requests, errors and latency percentiles per day, endpoint or API key (or user).");
        return group;
    }

    public sealed record UsageList(DateTimeOffset From, DateTimeOffset To, string GroupBy, IReadOnlyList<UsageItem> Items);

    internal static async Task<Results<Ok<UsageList>, ProblemHttpResult>> GetUsage(
        string? from, string? to, string? groupBy, Caller caller, UsageStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var grouping = groupBy switch
        {
            null or "day" => UsageGrouping.Day,
            "endpoint" => UsageGrouping.Endpoint,
            "apiKey" => UsageGrouping.ApiKey,
            _ => (UsageGrouping?)null,
        };
        if (grouping is null)
        {
            validation.Add("groupBy", "must be day, endpoint or apiKey");
        }

        var end = ParseTime(to, "to", validation) ?? time.GetUtcNow();
        var start = ParseTime(from, "from", validation) ?? end - DefaultRange;
        if (validation.IsValid)
        {
            if (start >= end)
            {
                validation.Add("from", "must be before to");
            }
            else if (end - start > MaxRange)
            {
                validation.Add("from", $"the range may span at most {MaxRange.TotalDays:0} days");
            }
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var by = grouping!.Value;
        var totals = await store.ReadAsync(caller.Tenant, start, end, () => new UsageTotals(),
            (totals, period, slice) => totals.Add(UsageTotals.KeyOf(by, period, slice), slice), cancellationToken);
        return TypedResults.Ok(new UsageList(start, end, groupBy ?? "day", totals.Items(byKey: grouping == UsageGrouping.Day)));
    }

    private static DateTimeOffset? ParseTime(string? value, string field, Validation validation)
    {
        if (value is null)
        {
            return null;
        }

        if (value.Length > 40 || !DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at) ||
            at.Year < 2000 || at.Year > 9000)
        {
            validation.Add(field, "must be an ISO 8601 date and time between the years 2000 and 9000");
            return null;
        }

        return at;
    }
}
