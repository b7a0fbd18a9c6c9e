using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Query;
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

    internal static RouteHandlerBuilder MapRoutes(RouteGroupBuilder inventory) =>
        inventory.MapGet("/analytics", Get).RequirePermission(Permissions.InventoryRead).WithName("GetInventoryAnalytics").WithSummary("Quantity and value per category or location, dead stock and turnover.");

    internal static async Task<Results<Ok<InventoryAnalytics>, ProblemHttpResult>> Get(
        string? groupBy, Caller caller, InventoryProjections projections, TimeProvider time, CancellationToken cancellationToken)
    {
        groupBy ??= "category";
        if (groupBy is not ("category" or "location"))
        {
            return new Validation().Add("groupBy", "must be category or location").ToProblem();
        }

        var tenant = caller.Tenant;
        var items = await projections.Items.RowsAsync(tenant, cancellationToken);
        static double ValueOf(ItemEntity item, double quantity) => Math.Round(quantity * (item.UnitCost ?? 0), 2);

        // One pass over the held rows, nothing copied: at 100,000 items a copy per request (and a full sort for two
        // lists of 50) cost more than the aggregation itself.
        var deadSince = time.GetUtcNow().AddDays(-DeadAfterDays);
        var byCategory = new Dictionary<string, (int Items, double Quantity, double Value)>(StringComparer.Ordinal);
        (int Items, double Quantity, double Value) uncategorized = default;
        var totalValue = 0.0;
        var deadStock = new Leaders<ItemEntity>(MaxListed, (a, b) => ValueOf(b, b.Quantity).CompareTo(ValueOf(a, a.Quantity)) is var byValue and not 0
            ? byValue : string.CompareOrdinal(a.Sku, b.Sku));
        var turnover = new Leaders<TurnoverEntry>(MaxListed, (a, b) => (b.Turnover ?? double.MaxValue).CompareTo(a.Turnover ?? double.MaxValue) is var byTurnover and not 0
            ? byTurnover : string.CompareOrdinal(a.Sku, b.Sku));
        foreach (var listed in items)
        {
            var item = listed.Entity;
            if (item.Status != ItemStatus.Active)
            {
                continue;
            }

            var value = ValueOf(item, item.Quantity);
            totalValue += value;
            if (groupBy == "category")
            {
                var group = item.Category is null ? uncategorized : byCategory.GetValueOrDefault(item.Category);
                group = (group.Items + 1, group.Quantity + item.Quantity, group.Value + value);
                if (item.Category is null)
                {
                    uncategorized = group;
                }
                else
                {
                    byCategory[item.Category] = group;
                }
            }

            if (item.Quantity > 0 && (item.LastOutAt ?? item.CreatedAt) < deadSince)
            {
                deadStock.Offer(item);
            }

            if (item.OutTotal > 0)
            {
                turnover.Offer(new TurnoverEntry(item.Id, item.Sku, item.Name, item.OutTotal, item.Quantity, item.Quantity > 0 ? Math.Round(item.OutTotal / item.Quantity, 2) : null));
            }
        }

        List<AnalyticsGroup> groups;
        if (groupBy == "category")
        {
            groups = [.. byCategory.Select(g => new AnalyticsGroup(g.Key, g.Value.Items, Math.Round(g.Value.Quantity, 6), Math.Round(g.Value.Value, 2)))];
            if (uncategorized.Items > 0)
            {
                groups.Add(new AnalyticsGroup(null, uncategorized.Items, Math.Round(uncategorized.Quantity, 6), Math.Round(uncategorized.Value, 2)));
            }
        }
        else
        {
            // A stock row is one item at one location, so each row with stock counts one item there.
            var byLocation = new Dictionary<string, (int Items, double Quantity, double Value)>(StringComparer.Ordinal);
            foreach (var stock in await projections.Stock.RowsAsync(tenant, cancellationToken))
            {
                if (stock.Quantity <= 0 || !items.TryGet(ItemEntity.KeyFor(stock.ItemId), out var listed) || listed.Entity.Status != ItemStatus.Active)
                {
                    continue;
                }

                var entry = byLocation.GetValueOrDefault(stock.LocationId);
                byLocation[stock.LocationId] = (entry.Items + 1, entry.Quantity + stock.Quantity, entry.Value + ValueOf(listed.Entity, stock.Quantity));
            }

            groups = [.. byLocation.Select(g => new AnalyticsGroup(g.Key == StockEntity.Unassigned ? null : g.Key, g.Value.Items,
                Math.Round(g.Value.Quantity, 6), Math.Round(g.Value.Value, 2)))];
        }

        groups.Sort((a, b) => b.Value.CompareTo(a.Value) is var byValue and not 0 ? byValue : string.CompareOrdinal(a.Key, b.Key));
        return TypedResults.Ok(new InventoryAnalytics(groupBy, groups, Math.Round(totalValue, 2),
            [.. deadStock.InOrder().Select(i => new DeadStockEntry(i.Id, i.Sku, i.Name, i.Quantity, ValueOf(i, i.Quantity), i.LastOutAt))], turnover.InOrder()));
    }
}
