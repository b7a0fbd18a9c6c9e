using System.Globalization;
using Microsoft.Extensions.Options;
using Platform.Functions.Query;
using Platform.Functions.Reports;
using Platform.Functions.Reports.Types;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>
/// The <c>inventory-status</c> report: stock value by category and by location, low stock with reorder suggestions,
/// stock expiring soon, turnover, dead stock and movements per day by type. Each source is read once: the items and the
/// per-location stock rows from the instance's <see cref="InventoryProjections"/> (one scan each when the instance does
/// not hold the tenant yet), the locations (one key range, for their names) and the movements of the period - widened to
/// the 90 days before the as-of time the reorder suggestions plan from - as one key range of the tenant's time-ordered
/// movement rows. Movements stream through; what is kept is per day, per item that gave stock out, and top-N lists.
/// <para>
/// The filter selects the items considered (archived items never are); movements count for the items considered.
/// "As of" is the end of the period, or now when that is later: dead stock (no <c>out</c> for
/// <see cref="AnalyticsEndpoints.DeadAfterDays"/> days), expiry (within <see cref="InventoryOptions.ExpiryWindow"/>) and
/// the usage behind suggestions (the 30 and 90 days before it) are measured from it; quantities are those on hand now.
/// </para>
/// </summary>
public sealed class InventoryStatusReport(InventoryProjections projections, InventoryStore store, IOptions<InventoryOptions> options, TimeProvider time) : IReportType
{
    public const string Type = "inventory-status";

    /// <summary>Rows of the low-stock table (the most urgent); <c>lowStockCount</c> counts them all.</summary>
    public const int MaxLowStockRows = ReorderSuggestionsEndpoints.MaxSuggestions;

    /// <summary>Rows of the expiring, turnover and dead-stock tables; their figures count every item.</summary>
    public const int MaxListed = 200;

    /// <summary>Categories and locations listed by value; the rest are summed into one row.</summary>
    public const int MaxGroups = 50;

    private const string Uncategorized = "(uncategorized)";
    private const string NoLocation = "(no location)";
    private static readonly string[] MovementTypes = [MovementType.In, MovementType.Out, MovementType.Transfer, MovementType.Adjust];

    public string Permission => Permissions.InventoryRead;

    public string? CheckFilter(string? filter)
    {
        try
        {
            FilterParser.ParseOptional(filter, ItemsEndpoints.Schema);
            return null;
        }
        catch (FilterException ex)
        {
            return ex.Message;
        }
    }

    /// <exception cref="FilterException">The filter is not valid (<see cref="CheckFilter"/> says why).</exception>
    public async Task<ReportDocument> BuildAsync(ReportRequest request, CancellationToken cancellationToken)
    {
        var where = FilterParser.ParseOptional(request.Filter, ItemsEndpoints.Schema);
        var tenant = request.Tenant;
        var now = time.GetUtcNow();
        var asOf = request.To < now ? request.To : now;
        var partition = store.For(tenant);

        // Four independent reads: the stock rows and the locations load while the items do and the movements stream
        // (each is a partition range scan when cold, and storage serves them side by side).
        var stockRows = projections.Stock.RowsAsync(tenant, cancellationToken);
        var locationNames = LocationNamesAsync(partition, cancellationToken);

        // The items considered, with what the report keeps of each beyond the row (outs counted from the movements).
        var items = await projections.Items.RowsAsync(tenant, cancellationToken);
        var considered = new Dictionary<string, Usage>(StringComparer.Ordinal);
        var byCategory = new Dictionary<string, Group>(StringComparer.Ordinal);
        var deadSince = asOf.AddDays(-AnalyticsEndpoints.DeadAfterDays);
        var expiryHorizon = asOf + options.Value.ExpiryWindow;
        var expiring = new Leaders<ItemEntity>(MaxListed, (a, b) => a.ExpiresAt!.Value.CompareTo(b.ExpiresAt!.Value) is var byDate and not 0 ? byDate : string.CompareOrdinal(a.Sku, b.Sku));
        var dead = new Leaders<ItemEntity>(MaxListed, (a, b) => ValueOf(b, b.Quantity).CompareTo(ValueOf(a, a.Quantity)) is var byValue and not 0 ? byValue : string.CompareOrdinal(a.Sku, b.Sku));
        double stockValue = 0, deadValue = 0, expiringValue = 0;
        long expiringCount = 0, expiredCount = 0, deadCount = 0, lowCount = 0;
        foreach (var listed in items)
        {
            var item = listed.Entity;
            if (item.Status != ItemStatus.Active || (where is not null && !where.Evaluate(listed.ValueOf)))
            {
                continue;
            }

            var usage = new Usage(item);
            considered[item.Id] = usage;
            var value = ValueOf(item, item.Quantity);
            stockValue += value;
            GroupOf(byCategory, item.Category ?? Uncategorized).Add(item.Quantity, value);
            if (item.ReorderPoint is { } point && item.Quantity <= point)
            {
                usage.Low = true;
                lowCount++;
            }

            if (item.Quantity > 0 && item.ExpiresAt is { } expiresAt && expiresAt <= expiryHorizon)
            {
                expiringCount++;
                expiredCount += expiresAt <= asOf ? 1 : 0;
                expiringValue += value;
                expiring.Offer(item);
            }

            if (item.Quantity > 0 && (item.LastOutAt ?? item.CreatedAt) < deadSince)
            {
                deadCount++;
                deadValue += value;
                dead.Offer(item);
            }
        }

        // The movements, once: the period's per day, and for the reorder suggestions the 90 days before the as-of time.
        var buckets = new PeriodBuckets(request.From, request.To);
        var perDay = new DayCounts[buckets.Count];
        var since90 = asOf.AddDays(-90);
        var since30 = asOf.AddDays(-30);
        var readFrom = request.From < since90 ? request.From : since90;
        long movementCount = 0;
        double unitsOut = 0, valueOut = 0;
        await foreach (var movement in partition.QueryWhereAsync<MovementEntity>(
            $"RowKey ge {MovementEntity.TenantPrefix + Ids.Floor(readFrom)} and RowKey lt {MovementEntity.TenantPrefix + Ids.Floor(request.To)}", 1000, cancellationToken))
        {
            if (!considered.TryGetValue(movement.ItemId, out var usage))
            {
                continue;
            }

            var isOut = movement.Type == MovementType.Out;
            if (movement.At >= request.From && movement.At < request.To)
            {
                movementCount++;
                perDay[buckets.IndexOf(movement.At)].Add(movement);
                if (isOut)
                {
                    usage.OutInPeriod += movement.Quantity;
                    unitsOut += movement.Quantity;
                    valueOut += ValueOf(usage.Item, movement.Quantity);
                }
            }

            if (isOut && usage.Low && movement.At >= since90 && movement.At < asOf)
            {
                usage.Out90 += movement.Quantity;
                usage.Out30 += movement.At >= since30 ? movement.Quantity : 0;
            }
        }

        // By location, from the stock rows of the items considered: a stock row is one item at one location.
        var byLocation = new Dictionary<string, Group>(StringComparer.Ordinal);
        foreach (var stock in await stockRows)
        {
            if (stock.Quantity > 0 && considered.TryGetValue(stock.ItemId, out var usage))
            {
                GroupOf(byLocation, stock.LocationId).Add(stock.Quantity, ValueOf(usage.Item, stock.Quantity));
            }
        }

        var names = await locationNames;
        var low = new Leaders<ReorderSuggestion>(MaxLowStockRows, ReorderSuggestionsEndpoints.MostUrgentFirst.Compare);
        var turnover = new Leaders<Usage>(MaxListed, (a, b) => b.OutInPeriod.CompareTo(a.OutInPeriod) is var byOut and not 0 ? byOut : string.CompareOrdinal(a.Item.Sku, b.Item.Sku));
        foreach (var usage in considered.Values)
        {
            if (usage.Low)
            {
                low.Offer(ReorderSuggestionsEndpoints.Suggest(usage.Item, usage.Item.ReorderPoint!.Value, usage.Out30, usage.Out90));
            }

            if (usage.OutInPeriod > 0)
            {
                turnover.Offer(usage);
            }
        }

        var periodDays = Math.Max((request.To - request.From).TotalDays, 1.0 / 24);
        var turnoverRatio = stockValue > 0 ? Math.Round(valueOut / stockValue, 4) : 0;
        var figures = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["itemCount"] = considered.Count,
            ["stockValue"] = Math.Round(stockValue, 2),
            ["lowStockCount"] = lowCount,
            ["expiringSoonCount"] = expiringCount,
            ["expiredCount"] = expiredCount,
            ["deadStockCount"] = deadCount,
            ["deadStockValue"] = Math.Round(deadValue, 2),
            ["movementCount"] = movementCount,
            ["unitsOut"] = Math.Round(unitsOut, 6),
            ["turnover"] = turnoverRatio,
        };

        var asOfText = asOf.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        var sections = new List<ReportSection>
        {
            ValueSection("category", "Value by category", byCategory, name => name, considered.Count, stockValue),
            ValueSection("location", "Value by location", byLocation, id => names.GetValueOrDefault(id, id), considered.Count, stockValue),
            new("Low stock",
                $"{lowCount} items at or below their reorder point. Suggested quantity: the reorder point plus {ReorderSuggestionsEndpoints.CoverDays} days of "
                + $"the busier of the average daily outs over the 30 and 90 days to {asOfText}, less what is on hand; at least the item's reorder quantity. Most urgent first.",
                [
                    new ReportTable("low-stock", "Low stock and reorder suggestions",
                        [
                            new("itemId", ReportValueKind.Text), new("sku", ReportValueKind.Text), new("name", ReportValueKind.Text),
                            new("onHand", ReportValueKind.Number), new("reorderPoint", ReportValueKind.Number), new("suggestedQuantity", ReportValueKind.Number),
                            new("daysOfStockLeft", ReportValueKind.Number), new("supplier", ReportValueKind.Text), new("estimatedCost", ReportValueKind.Money),
                        ],
                        [.. low.InOrder().Select(s => (IReadOnlyList<object?>)[s.ItemId, s.Sku, s.Name, s.Quantity, s.ReorderPoint, s.SuggestedQuantity, s.DaysOfStockLeft, s.Supplier, s.EstimatedCost])]),
                ],
                []),
            new("Expiring soon",
                $"{expiringCount} items holding stock expire within {options.Value.ExpiryWindow.TotalDays:0} days of {asOfText} ({expiredCount} already expired), worth {Math.Round(expiringValue, 2)}. Soonest first.",
                [
                    new ReportTable("expiring-soon", "Stock expiring soon",
                        [
                            new("itemId", ReportValueKind.Text), new("sku", ReportValueKind.Text), new("name", ReportValueKind.Text), new("quantity", ReportValueKind.Number),
                            new("expiresAt", ReportValueKind.Timestamp), new("daysLeft", ReportValueKind.Number), new("value", ReportValueKind.Money),
                        ],
                        [.. expiring.InOrder().Select(i => (IReadOnlyList<object?>)[i.Id, i.Sku, i.Name, i.Quantity, i.ExpiresAt, Math.Round((i.ExpiresAt!.Value - asOf).TotalDays, 1), ValueOf(i, i.Quantity)])]),
                ],
                []),
            new("Turnover",
                $"Units given out (movements of type out) in the period, by item, most first; turnover: units out ÷ units on hand; days of cover: on hand ÷ average daily out. "
                + $"Overall turnover of the period: value out ÷ stock value = {turnoverRatio.ToString(CultureInfo.InvariantCulture)}.",
                [
                    new ReportTable("turnover", "Turnover in the period",
                        [
                            new("itemId", ReportValueKind.Text), new("sku", ReportValueKind.Text), new("name", ReportValueKind.Text), new("unitsOut", ReportValueKind.Number),
                            new("onHand", ReportValueKind.Number), new("turnover", ReportValueKind.Number), new("daysOfCover", ReportValueKind.Number),
                        ],
                        [.. turnover.InOrder().Select(u => (IReadOnlyList<object?>)[u.Item.Id, u.Item.Sku, u.Item.Name, Math.Round(u.OutInPeriod, 6), u.Item.Quantity,
                            u.Item.Quantity > 0 ? Math.Round(u.OutInPeriod / u.Item.Quantity, 2) : null, Math.Round(u.Item.Quantity / (u.OutInPeriod / periodDays), 1)])]),
                ],
                []),
            new("Dead stock",
                $"{deadCount} items hold stock with no out for {AnalyticsEndpoints.DeadAfterDays} days before {asOfText}, worth {Math.Round(deadValue, 2)}. Most valuable first.",
                [
                    new ReportTable("dead-stock", "Dead stock",
                        [
                            new("itemId", ReportValueKind.Text), new("sku", ReportValueKind.Text), new("name", ReportValueKind.Text), new("quantity", ReportValueKind.Number),
                            new("value", ReportValueKind.Money), new("lastOutAt", ReportValueKind.Timestamp),
                        ],
                        [.. dead.InOrder().Select(i => (IReadOnlyList<object?>)[i.Id, i.Sku, i.Name, i.Quantity, ValueOf(i, i.Quantity), i.LastOutAt])]),
                ],
                []),
            MovementsSection(perDay, buckets, movementCount),
        };

        return new ReportDocument(Type, "Inventory status", request.From, request.To, now, sections) { Figures = figures };
    }

    private static async Task<Dictionary<string, string>> LocationNamesAsync(TenantPartition partition, CancellationToken cancellationToken)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal) { [StockEntity.Unassigned] = NoLocation };
        await foreach (var location in partition.QueryAsync<LocationEntity>(LocationEntity.KeyPrefix, 1000, cancellationToken))
        {
            names[location.Id] = location.Code is { Length: > 0 } code ? $"{location.Name} ({code})" : location.Name;
        }

        return names;
    }

    private static double ValueOf(ItemEntity item, double quantity) => Math.Round(quantity * (item.UnitCost ?? 0), 2);

    private static Group GroupOf(Dictionary<string, Group> groups, string key)
    {
        if (!groups.TryGetValue(key, out var group))
        {
            group = new Group();
            groups[key] = group;
        }

        return group;
    }

    private static ReportSection ValueSection(string by, string title, Dictionary<string, Group> groups, Func<string, string> nameOf, int items, double total)
    {
        var ordered = groups.Select(g => (Name: nameOf(g.Key), Group: g.Value))
            .OrderByDescending(g => g.Group.Value).ThenBy(g => g.Name, StringComparer.Ordinal).ToList();
        var listed = ordered.Take(MaxGroups).ToList();
        if (ordered.Count > MaxGroups)
        {
            var rest = new Group();
            foreach (var (_, group) in ordered.Skip(MaxGroups))
            {
                rest.Items += group.Items;
                rest.Quantity += group.Quantity;
                rest.Value += group.Value;
            }

            listed.Add(($"({ordered.Count - MaxGroups} more)", rest));
        }

        var text = by == "location"
            ? $"Stock on hand per location (an item stocked in two locations counts in both); total {Math.Round(total, 2)}. Value: quantity × unit cost (no cost counts 0)."
            : $"{items} items; total stock value {Math.Round(total, 2)}. Value: quantity × unit cost (no cost counts 0).";
        return new ReportSection(title, text,
            [
                new ReportTable($"value-by-{by}", title,
                    [new(by, ReportValueKind.Text), new("items", ReportValueKind.Count), new("quantity", ReportValueKind.Number), new("value", ReportValueKind.Money), new("share", ReportValueKind.Percent)],
                    [.. listed.Select(g => (IReadOnlyList<object?>)[g.Name, g.Group.Items, Math.Round(g.Group.Quantity, 6), Math.Round(g.Group.Value, 2),
                        total > 0 ? Math.Round(g.Group.Value / total, 4) : 0.0])]),
            ],
            [
                new ReportChart($"value-by-{by}", title, by == "category" ? ReportChartKind.Pie : ReportChartKind.Bar, [.. listed.Select(g => g.Name)],
                    [new ReportSeries("value", [.. listed.Select(g => Math.Round(g.Group.Value, 2))])], "value"),
            ]);
    }

    private static ReportSection MovementsSection(DayCounts[] perDay, PeriodBuckets buckets, long movementCount)
    {
        var unit = buckets.Unit;
        return new ReportSection("Movements", $"{movementCount} movements of the items considered in the period, per UTC {unit} and type.",
            [
                new ReportTable($"movements-per-{unit}", $"Movements per {unit} by type",
                    [
                        new("date", ReportValueKind.Date), new("in", ReportValueKind.Count), new("out", ReportValueKind.Count), new("transfer", ReportValueKind.Count),
                        new("adjust", ReportValueKind.Count), new("unitsIn", ReportValueKind.Number), new("unitsOut", ReportValueKind.Number),
                    ],
                    [.. perDay.Select((d, i) => (IReadOnlyList<object?>)[buckets.Start(i), d.In, d.Out, d.Transfer, d.Adjust, Math.Round(d.UnitsIn, 6), Math.Round(d.UnitsOut, 6)])]),
            ],
            [
                new ReportChart($"movements-per-{unit}", $"Movements per {unit} by type", ReportChartKind.StackedBar,
                    [.. perDay.Select((_, i) => buckets.Label(i))],
                    [.. MovementTypes.Select(type => new ReportSeries(type, [.. perDay.Select(d => (double)d.Of(type))]))], "movements"),
            ]);
    }

    /// <summary>An item considered and the outs the movements add up for it.</summary>
    private sealed class Usage(ItemEntity item)
    {
        public ItemEntity Item { get; } = item;
        public bool Low { get; set; }
        public double OutInPeriod { get; set; }
        public double Out30 { get; set; }
        public double Out90 { get; set; }
    }

    private sealed class Group
    {
        public long Items { get; set; }
        public double Quantity { get; set; }
        public double Value { get; set; }

        public void Add(double quantity, double value)
        {
            Items++;
            Quantity += quantity;
            Value += value;
        }
    }

    private struct DayCounts
    {
        public long In;
        public long Out;
        public long Transfer;
        public long Adjust;
        public double UnitsIn;
        public double UnitsOut;

        public void Add(MovementEntity movement)
        {
            switch (movement.Type)
            {
                case MovementType.In:
                    In++;
                    break;
                case MovementType.Out:
                    Out++;
                    break;
                case MovementType.Transfer:
                    Transfer++;
                    break;
                default:
                    Adjust++;
                    break;
            }

            // Units into and out of stock as the item's total saw them (an adjust moves it either way, a transfer not at all).
            if (movement.Delta > 0)
            {
                UnitsIn += movement.Delta;
            }
            else
            {
                UnitsOut -= movement.Delta;
            }
        }

        public readonly long Of(string type) => type switch
        {
            MovementType.In => In,
            MovementType.Out => Out,
            MovementType.Transfer => Transfer,
            _ => Adjust,
        };
    }
}
