using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Roles;

namespace Platform.Functions.Inventory;

public sealed record ReorderSuggestion(
    string ItemId, string Sku, string Name, double Quantity, double ReorderPoint, double? ReorderQuantity, string? Supplier, double? UnitCost,
    double AverageDailyUsage30, double AverageDailyUsage90, double? DaysOfStockLeft, double SuggestedQuantity, double? EstimatedCost);

/// <summary>
/// <c>GET /api/v1/inventory/reorder-suggestions</c>: items at or below their reorder point, most urgent first.
/// Usage is the average daily <c>out</c> over the last 30 and 90 days; the busier of the two is planned for, so a
/// recent surge is not averaged away. The suggestion covers <see cref="CoverDays"/> days of that usage on top of
/// the reorder point, and is never less than the item's <c>reorderQuantity</c>.
/// </summary>
public static class ReorderSuggestionsEndpoints
{
    public const string Path = "/api/v1/inventory/reorder-suggestions";
    public const int CoverDays = 30;

    /// <summary>At most this many suggestions in one answer (the most urgent).</summary>
    public const int MaxSuggestions = 1000;

    internal static RouteHandlerBuilder MapRoutes(RouteGroupBuilder inventory) =>
        inventory.MapGet("/reorder-suggestions", List).RequirePermission(Permissions.InventoryRead).WithName("ListReorderSuggestions").WithSummary("Items at or below their reorder point, with a quantity suggested from recent usage.");

    internal static async Task<Ok<PagedList<ReorderSuggestion>>> List(
        Caller caller, InventoryProjections projections, InventoryStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var since90 = now.AddDays(-90);
        var since30 = now.AddDays(-30);
        var suggestions = new List<ReorderSuggestion>();
        foreach (var item in (await projections.Items.RowsAsync(caller.Tenant, cancellationToken)).Select(i => i.Entity))
        {
            if (item.Status != ItemStatus.Active || item.ReorderPoint is not { } point || item.Quantity > point)
            {
                continue;
            }

            double out30 = 0, out90 = 0;
            await foreach (var movement in store.For(caller.Tenant).QueryWhereAsync<MovementEntity>(
                $"RowKey ge {MovementEntity.ItemPrefixFor(item.Id)} and RowKey lt {MovementEntity.ItemPrefixFor(item.Id) + char.MaxValue} and Type eq {MovementType.Out} and At ge {since90}",
                1000, cancellationToken))
            {
                out90 += movement.Quantity;
                if (movement.At >= since30)
                {
                    out30 += movement.Quantity;
                }
            }

            suggestions.Add(Suggest(item, point, out30, out90));
        }

        var ordered = suggestions.Order(MostUrgentFirst).Take(MaxSuggestions).ToList();
        return TypedResults.Ok(new PagedList<ReorderSuggestion>(ordered, null));
    }

    /// <summary>The suggestion for an item at or below its reorder point, given the units it gave out over the last 30 and 90 days.</summary>
    public static ReorderSuggestion Suggest(ItemEntity item, double point, double out30, double out90)
    {
        var daily30 = Math.Round(out30 / 30, 4);
        var daily90 = Math.Round(out90 / 90, 4);
        var daily = Math.Max(daily30, daily90);
        var needed = Math.Ceiling(point + (daily * CoverDays) - item.Quantity);
        var suggested = Math.Max(item.ReorderQuantity ?? 0, Math.Max(needed, 0));
        return new ReorderSuggestion(item.Id, item.Sku, item.Name, item.Quantity, point, item.ReorderQuantity, item.Supplier, item.UnitCost,
            daily30, daily90, daily > 0 ? Math.Round(item.Quantity / daily, 1) : null, suggested,
            item.UnitCost is { } cost ? Math.Round(cost * suggested, 2) : null);
    }

    /// <summary>Most urgent first: fewest days left, then items with no recent usage (unknown), each by SKU.</summary>
    public static readonly Comparer<ReorderSuggestion> MostUrgentFirst = Comparer<ReorderSuggestion>.Create((a, b) =>
        (a.DaysOfStockLeft ?? double.MaxValue).CompareTo(b.DaysOfStockLeft ?? double.MaxValue) is var byDays and not 0 ? byDays : string.CompareOrdinal(a.Sku, b.Sku));
}
