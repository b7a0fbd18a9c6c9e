using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Query;

/// <summary>One row of a list as filters, search and sort read it.</summary>
public interface IListed<out TView>
{
    string Id { get; }

    TView View { get; }

    /// <summary>The text <c>q</c> searches, lower-cased.</summary>
    string SearchText { get; }

    object? ValueOf(string field);
}

/// <summary>
/// The list conventions (filter, q, sort, pageSize, continuationToken) over rows already in memory: one
/// implementation for every list route (users, inventory), so they all answer the same way.
/// </summary>
public static class InMemoryLists
{
    public const int MaxSearchLength = 200;

    /// <summary>
    /// Where the next page starts: right after the last item served, named by its full sort key - the values it was
    /// sorted by and its id. The id alone is not enough: once that item changes or goes, its id says nothing about
    /// where it stood in a sort by another field, and the next page would skip or repeat rows.
    /// </summary>
    public sealed record ListPosition(string LastId, IReadOnlyList<SortKeyValue?>? Keys = null);

    public static Results<Ok<PagedList<TView>>, ProblemHttpResult> Page<TView>(
        IEnumerable<IListed<TView>> rows, FilterSchema schema, string? filter, string? q, string? sort, string? pageSize, string? continuationToken,
        string queryExtra, TenantId tenant, ContinuationTokens tokens)
    {
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

        FilterExpression? where;
        SortSpec order;
        try
        {
            where = FilterParser.ParseOptional(filter, schema);
        }
        catch (FilterException ex)
        {
            return Problems.Create(400, "invalid_filter", "Invalid filter", ex.Message);
        }

        try
        {
            order = SortSpec.Parse(sort, schema);
        }
        catch (FilterException ex)
        {
            return Problems.Create(400, "invalid_sort", "Invalid sort", ex.Message);
        }

        var query = $"{filter}\n{q}\n{sort}\n{queryExtra}";
        ListPosition? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, tenant, query, out after))
        {
            return ContinuationTokens.Invalid();
        }

        // A token names one key per sort field (the sort is part of the signed query, so only a token issued before
        // keys were carried can differ).
        if (after is not null && (after.Keys?.Count ?? 0) != order.Fields.Count)
        {
            return ContinuationTokens.Invalid();
        }

        var needle = string.IsNullOrWhiteSpace(q) ? null : q.Trim().ToLowerInvariant();
        var matching = rows
            .Where(r => needle is null || r.SearchText.Contains(needle, StringComparison.Ordinal))
            .Where(r => where is null || where.Evaluate(r.ValueOf))
            .ToList();

        // The requested keys, then creation order (ids are time-sortable) as the tie-breaker that keeps pages stable.
        matching.Sort((a, b) => order.Compare(a.ValueOf, b.ValueOf) is var byKeys and not 0 ? byKeys : string.CompareOrdinal(a.Id, b.Id));

        var start = 0;
        if (after is not null)
        {
            // The first row past the key, by the same order the rows were sorted in: rows inserted before it stay
            // behind, rows after it (old or new) follow, whatever happened to the row that ended the last page.
            var keys = after.Keys ?? [];
            start = matching.FindIndex(r => (order.CompareToKey(r.ValueOf, keys) is var byKeys and not 0 ? byKeys : string.CompareOrdinal(r.Id, after.LastId)) > 0);
            if (start < 0)
            {
                start = matching.Count;
            }
        }

        var page = matching.Skip(start).Take(size!.Value).ToList();
        var more = start + page.Count < matching.Count;
        return TypedResults.Ok(new PagedList<TView>(
            [.. page.Select(r => r.View)],
            more ? tokens.Create(tenant, query, new ListPosition(page[^1].Id, order.KeyOf(page[^1].ValueOf))) : null));
    }
}
