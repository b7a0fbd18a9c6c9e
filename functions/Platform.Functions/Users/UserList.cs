using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Query;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

public static partial class UsersEndpoints
{
    public const int MaxSearchLength = 200;

    private static readonly Dictionary<string, FieldType> UserFields = new(StringComparer.Ordinal)
    {
        ["id"] = FieldType.String,
        ["email"] = FieldType.String,
        ["displayName"] = FieldType.String,
        ["status"] = FieldType.String,
        ["roles"] = FieldType.StringList,
        ["emailVerified"] = FieldType.Boolean,
        ["mfaEnabled"] = FieldType.Boolean,
        ["createdAt"] = FieldType.Timestamp,
        ["updatedAt"] = FieldType.Timestamp,
        ["lastLoginAt"] = FieldType.Timestamp,
        ["deletedAt"] = FieldType.Timestamp,
    };

    /// <summary>What <c>filter</c> and <c>sort</c> may name for this tenant: the user fields and its custom fields.</summary>
    public static FilterSchema FilterSchemaFor(SchemaDocument schema) =>
        new(UserFields, name => schema.Fields.FirstOrDefault(f => f.Name == name)?.Type switch
        {
            "string" or "enum" => FieldType.String,
            "number" => FieldType.Number,
            "boolean" => FieldType.Boolean,
            "date" => FieldType.Timestamp,
            _ => null,
        });

    /// <summary>Where the next page starts: the sort values and id of the last item served.</summary>
    public sealed record ListPosition(string LastId);

    internal static async Task<Results<Ok<PagedList<UserView>>, ProblemHttpResult>> ListUsers(
        string? filter, string? q, string? sort, bool? includeDeleted, string? pageSize, string? continuationToken,
        ClaimsPrincipal principal, UserProjections projections, UserSchemas schemas, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation);
        if (q?.Length > MaxSearchLength)
        {
            validation.Add("q", $"must be at most {MaxSearchLength} characters");
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var filterSchema = FilterSchemaFor(await schemas.GetAsync(caller.Tenant, cancellationToken));
        FilterExpression? where;
        SortSpec order;
        try
        {
            where = FilterParser.ParseOptional(filter, filterSchema);
        }
        catch (FilterException ex)
        {
            return Problems.Create(400, "invalid_filter", "Invalid filter", ex.Message);
        }

        try
        {
            order = SortSpec.Parse(sort, filterSchema);
        }
        catch (FilterException ex)
        {
            return Problems.Create(400, "invalid_sort", "Invalid sort", ex.Message);
        }

        var query = $"{filter}\n{q}\n{sort}\n{includeDeleted == true}";
        ListPosition? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, query, out after))
        {
            return ContinuationTokens.Invalid();
        }

        var needle = string.IsNullOrWhiteSpace(q) ? null : q.Trim().ToLowerInvariant();
        var matching = (await projections.SnapshotAsync(caller.Tenant, cancellationToken))
            .Where(u => includeDeleted == true || u.View.Status != UserStatus.Deleted)
            .Where(u => needle is null || u.SearchText.Contains(needle, StringComparison.Ordinal))
            .Where(u => where is null || where.Evaluate(u.ValueOf))
            .ToList();

        // The route's order: the requested keys, then creation order (ids are time-sortable) as the tie-breaker
        // that keeps pages stable.
        matching.Sort((a, b) => order.Compare(a.ValueOf, b.ValueOf) is var byKeys and not 0 ? byKeys : string.CompareOrdinal(a.View.Id, b.View.Id));

        var start = 0;
        if (after is not null)
        {
            var index = matching.FindIndex(u => u.View.Id == after.LastId);
            start = index >= 0 ? index + 1 : matching.FindIndex(u => string.CompareOrdinal(u.View.Id, after.LastId) > 0) is var next and >= 0 ? next : matching.Count;
        }

        var page = matching.Skip(start).Take(size!.Value).ToList();
        var more = start + page.Count < matching.Count;
        return TypedResults.Ok(new PagedList<UserView>(
            [.. page.Select(u => u.View)],
            more ? tokens.Create(caller.Tenant, query, new ListPosition(page[^1].View.Id)) : null));
    }
}
