using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Roles;

namespace Platform.Functions.Inventory;

public sealed record AnalyticsGroup(string? Key, int Items, double Quantity, double Value);

public sealed record DeadStockEntry(string ItemId, string Sku, string Name, double Quantity, double Value, DateTimeOffset? LastOutAt);

public sealed record TurnoverEntry(string ItemId, string Sku, string Name, double UnitsOut, double Quantity, double? Turnover);

public sealed record InventoryAnalytics(
    string GroupBy, IReadOnlyList<AnalyticsGroup> Groups, double TotalValue, IReadOnlyList<DeadStockEntry> DeadStock, IReadOnlyList<TurnoverEntry> Turnover);

/// <summary>
/// <c>GET /api/v1/inventory/analytics?groupBy=category|location</c>. It reads only rows the movements keep current
/// in their own transaction - item rows (quantity, units out, last out) and, by location, the stock rows - never the
/// movement history, and reads them from the instance's <see cref="InventoryProjections"/>, not from storage. Value is quantity × unitCost (an item without a cost counts 0). Dead stock: items holding stock
/// with no <c>out</c> for <see cref="DeadAfterDays"/> days. Turnover: units out since the item was created ÷ quantity
/// on hand (null when nothing is on hand), highest first.
/// </summary>
public static class AnalyticsEndpoints
{
    public const string Path = "/api/v1/inventory/analytics";
    public const int DeadAfterDays = 90;
    public const int MaxListed = 50;

    public static void MapInventoryAnalytics(this IEndpointRouteBuilder app) =>
        app.MapGet(Path, Get).RequirePermission(Permissions.InventoryRead).WithTags("Inventory").WithName("GetInventoryAnalytics");

    internal static async Task<Results<Ok<InventoryAnalytics>, ProblemHttpResult>> Get(
        string? groupBy, ClaimsPrincipal principal, InventoryProjections projections, TimeProvider time, CancellationToken cancellationToken)
    {
        groupBy ??= "category";
        if (groupBy is not ("category" or "location"))
        {
            return new Validation().Add("groupBy", "must be category or location").ToProblem();
        }

        var tenant = Caller.From(principal)!.Tenant;
        var active = (await projections.Items.SnapshotAsync(tenant, cancellationToken))
            .Where(i => i.Entity.Status == ItemStatus.Active).ToDictionary(i => i.Id, i => i.Entity, StringComparer.Ordinal);
        static double ValueOf(ItemEntity item, double quantity) => Math.Round(quantity * (item.UnitCost ?? 0), 2);

        List<AnalyticsGroup> groups;
        if (groupBy == "category")
        {
            groups = [.. active.Values.GroupBy(i => i.Category, StringComparer.Ordinal)
                .Select(g => new AnalyticsGroup(g.Key, g.Count(), Math.Round(g.Sum(i => i.Quantity), 6), Math.Round(g.Sum(i => ValueOf(i, i.Quantity)), 2)))];
        }
        else
        {
            var byLocation = new Dictionary<string, (HashSet<string> Items, double Quantity, double Value)>(StringComparer.Ordinal);
            foreach (var stock in await projections.Stock.SnapshotAsync(tenant, cancellationToken))
            {
                if (stock.Quantity <= 0 || !active.TryGetValue(stock.ItemId, out var item))
                {
                    continue;
                }

                var entry = byLocation.TryGetValue(stock.LocationId, out var found) ? found : ([], 0, 0);
                entry.Items.Add(item.Id);
                byLocation[stock.LocationId] = (entry.Items, entry.Quantity + stock.Quantity, entry.Value + ValueOf(item, stock.Quantity));
            }

            groups = [.. byLocation.Select(g => new AnalyticsGroup(g.Key == StockEntity.Unassigned ? null : g.Key, g.Value.Items.Count,
                Math.Round(g.Value.Quantity, 6), Math.Round(g.Value.Value, 2)))];
        }

        groups.Sort((a, b) => b.Value.CompareTo(a.Value) is var byValue and not 0 ? byValue : string.CompareOrdinal(a.Key, b.Key));
        var deadSince = time.GetUtcNow().AddDays(-DeadAfterDays);
        var deadStock = active.Values
            .Where(i => i.Quantity > 0 && (i.LastOutAt ?? i.CreatedAt) < deadSince)
            .OrderByDescending(i => ValueOf(i, i.Quantity)).ThenBy(i => i.Sku, StringComparer.Ordinal)
            .Take(MaxListed)
            .Select(i => new DeadStockEntry(i.Id, i.Sku, i.Name, i.Quantity, ValueOf(i, i.Quantity), i.LastOutAt))
            .ToList();
        var turnover = active.Values
            .Where(i => i.OutTotal > 0)
            .Select(i => new TurnoverEntry(i.Id, i.Sku, i.Name, i.OutTotal, i.Quantity, i.Quantity > 0 ? Math.Round(i.OutTotal / i.Quantity, 2) : null))
            .OrderByDescending(t => t.Turnover ?? double.MaxValue).ThenBy(t => t.Sku, StringComparer.Ordinal)
            .Take(MaxListed)
            .ToList();
        return TypedResults.Ok(new InventoryAnalytics(groupBy, groups, Math.Round(active.Values.Sum(i => ValueOf(i, i.Quantity)), 2), deadStock, turnover));
    }
}
