using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Imports;

namespace Platform.Functions.Inventory;

/// <summary>
/// Import kind <c>inventory-movements</c> (a supplier's receipts, a stock count): a row is the body of
/// <c>POST /api/v1/inventory/items/{id}/movements</c> plus the item it moves, by <c>sku</c> or <c>itemId</c>, recorded by
/// <see cref="MovementCommands.RecordAsync(Caller, string, MovementInput, string?, CancellationToken)"/> - the route's
/// own command, so the same checks (enough stock, locations, archived items) and messages, and the same projections,
/// events and alerts.
/// </summary>
/// <remarks>
/// <para>Movements only ever append, so create and upsert are the same. Each row records under the key
/// <c>{jobId}#{row}</c>, whose marker row commits with the movement: a chunk applied again records nothing twice and
/// reports each row as the first time (the route's <c>Idempotency-Key</c> keeps a response for 24 hours beside the
/// write; an import needs the guarantee inside the write, whatever the time between the runs).</para>
/// <para>Rows of one item are recorded in file order (an <c>in</c> before the <c>out</c> it feeds); rows of different
/// items run side by side. <c>fromLocationId</c>/<c>toLocationId</c> take an id or a location's name path.</para>
/// <para>Dry run checks each row against the stored item and stock as this chunk's earlier rows would have left them
/// (so an <c>out</c> fed by an earlier <c>in</c> of the chunk passes), but not against earlier chunks' rows nor against
/// movements others record meanwhile: its "enough stock" is a forecast, the real run decides.</para>
/// </remarks>
public sealed class MovementImport(MovementCommands movements, ItemCommands items, LocationCommands locations, InventoryStore store) : IImportKind
{
    public const string Kind = "inventory-movements";

    private const int Parallelism = 8;

    private static readonly string[] LocationColumns = ["fromLocationId", "toLocationId"];

    public IReadOnlyList<ImportColumn> Columns { get; } =
    [
        new("sku", "BOLT-10", "The item's SKU (or give itemId)"),
        new("itemId", "", "The item's id (instead of sku)"),
        new("type", "in", "in, out, transfer or adjust", Required: true),
        new("quantity", "500", "Moved (greater than 0), or for adjust the counted quantity (0 or more); a '.' for decimals", Required: true),
        new("fromLocationId", "", "Where out and transfer take from (default: the item's location): id or name path"),
        new("toLocationId", "Main warehouse/Aisle 1", "Where in, transfer and adjust put (default: the item's location): id or name path"),
        new("batch", "LOT-2026-11", $"At most {MovementCommands.MaxTextLength} characters"),
        new("supplier", "Acme", $"At most {MovementCommands.MaxTextLength} characters"),
        new("reference", "PO-1234", $"At most {MovementCommands.MaxReferenceLength} characters"),
        new("reason", "Delivery", $"At most {MovementCommands.MaxReasonLength} characters"),
    ];

    public async Task<IReadOnlyList<RowOutcome>> ApplyAsync(ImportBatch batch, CancellationToken cancellationToken)
    {
        var tenant = batch.Caller.Tenant;
        var rows = batch.Rows.Select(r => new ImportRow(r)).ToList();
        var outcomes = new RowOutcome?[rows.Count];
        var paths = batch.DryRun || rows.Any(r => r.Text("fromLocationId") is not null || r.Text("toLocationId") is not null)
            ? await LocationPaths.LoadAsync(locations, tenant, cancellationToken)
            : null;

        // Item ids for the chunk's SKUs, one read each.
        var partition = store.For(tenant);
        var skus = rows.Where(r => r.Text("sku") is not null).Select(r => SkuIndexEntity.KeyFor(r.Text("sku")!)).Distinct(StringComparer.Ordinal).ToList();
        var itemOfSku = new System.Collections.Concurrent.ConcurrentDictionary<string, string?>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(skus, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (key, ct) =>
            itemOfSku[key] = (await partition.GetAsync<SkuIndexEntity>(key, ct))?.ItemId);

        var byItem = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            if (ItemOf(row, itemOfSku) is (null, var problem))
            {
                outcomes[i] = problem;
            }
            else if (ResolveLocations(row, paths) is { } unresolved)
            {
                outcomes[i] = unresolved;
            }
            else
            {
                var itemId = ItemOf(row, itemOfSku).Id!;
                if (!byItem.TryGetValue(itemId, out var list))
                {
                    byItem[itemId] = list = [];
                }

                list.Add(i);
            }
        }

        await Parallel.ForEachAsync(byItem, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken }, async (group, ct) =>
        {
            var imagined = batch.DryRun ? new Imagined(await items.GetAsync(tenant, group.Key, ct)) : null;
            foreach (var i in group.Value)
            {
                var row = rows[i];
                var input = Input(row);
                if (imagined is not null)
                {
                    outcomes[i] = await ImagineAsync(batch.Caller, row, group.Key, input, imagined, paths!, ct);
                    continue;
                }

                var outcome = await movements.RecordAsync(batch.Caller, group.Key, input, row.ImportKey(batch.JobId), ct);
                outcomes[i] = outcome.Failed(out var error, out _) ? Fail(row, error) : RowOutcome.Ok(row.Number);
            }
        });

        return outcomes!;
    }

    /// <summary>A dry run's row: the command's checks, on the item and stock as the chunk's earlier rows left them.</summary>
    private async Task<RowOutcome> ImagineAsync(Caller caller, ImportRow row, string itemId, MovementInput input, Imagined imagined, LocationPaths paths, CancellationToken cancellationToken)
    {
        if (MovementCommands.Read(input).Failed(out var invalid, out var request))
        {
            return Fail(row, invalid);
        }

        if (imagined.Item is not { } item)
        {
            return Fail(row, CommandError.NotFound("item"));
        }

        if (MovementCommands.Route(request, item).Failed(out var unroutable, out var route))
        {
            return Fail(row, unroutable);
        }

        foreach (var locationId in new[] { route.Source, route.Target })
        {
            if (locationId is not null && paths.ById(locationId) is null)
            {
                return Fail(row, ItemCommands.LocationNotFound(locationId));
            }
        }

        var source = route.TakesFrom ? await imagined.StockAsync(store.For(caller.Tenant), route.Source, cancellationToken) : null;
        var target = route.AddsTo ? await imagined.StockAsync(store.For(caller.Tenant), route.Target, cancellationToken) : null;
        return MovementCommands.Apply(request, route, item, source, target, "dry-run", caller.UserId, DateTimeOffset.UtcNow).Failed(out var refused, out _)
            ? Fail(row, refused)
            : RowOutcome.Ok(row.Number);
    }

    /// <summary>One item as a dry run imagines it: the stored row and stock, changed by the chunk's earlier rows.</summary>
    private sealed class Imagined(ItemEntity? item)
    {
        private readonly Dictionary<string, StockEntity> _stock = new(StringComparer.Ordinal);

        public ItemEntity? Item => item;

        public async Task<StockEntity> StockAsync(Storage.TenantPartition partition, string? locationId, CancellationToken cancellationToken)
        {
            var key = locationId ?? StockEntity.Unassigned;
            if (!_stock.TryGetValue(key, out var stock))
            {
                _stock[key] = stock = await MovementCommands.StockAsync(partition, item!.Id, locationId, cancellationToken);
            }

            return stock;
        }
    }

    private static MovementInput Input(ImportRow row) => new(
        row.Text("type"),
        row.Text("quantity") is { } text ? ImportRow.ParseNumber(text) ?? double.NaN : null,
        row.Text("reason"),
        row.Resolved("fromLocationId"),
        row.Resolved("toLocationId"),
        row.Text("batch"),
        row.Text("supplier"),
        row.Text("reference"));

    /// <summary>The item a row moves: by itemId, else by SKU; a failure naming the column when there is none (or they disagree).</summary>
    private static (string? Id, RowOutcome? Problem) ItemOf(ImportRow row, IReadOnlyDictionary<string, string?> itemOfSku)
    {
        var sku = row.Text("sku");
        var bySku = sku is null ? null : itemOfSku.GetValueOrDefault(SkuIndexEntity.KeyFor(sku));
        if (row.Text("itemId") is { } itemId)
        {
            return sku is not null && bySku != itemId
                ? (null, row.Fail("itemId", $"The SKU {sku} is not this item's; give one of the two."))
                : (itemId, null);
        }

        if (sku is null)
        {
            return (null, row.Fail("sku", "is required (or give itemId)"));
        }

        return bySku is null ? (null, row.Fail("sku", $"No item of this tenant has the SKU {sku}.")) : (bySku, null);
    }

    /// <summary>Swaps location paths for ids; a failure when a path names several locations.</summary>
    private static RowOutcome? ResolveLocations(ImportRow row, LocationPaths? paths)
    {
        foreach (var column in LocationColumns)
        {
            if (paths is null || row.Text(column) is not { } text)
            {
                continue;
            }

            var (id, problem) = paths.Resolve(text);
            if (problem is not null)
            {
                return row.Fail(column, problem);
            }

            if (id is not null)
            {
                row.Resolve(column, id);
            }
        }

        return null;
    }

    private static RowOutcome Fail(ImportRow row, CommandError error)
    {
        if (error.Code == "location_not_found")
        {
            // The location may be the one a column named, or the item's own standing in for an empty one.
            var column = LocationColumns.FirstOrDefault(c => row.Resolved(c) is { } id && error.Message.Contains(id, StringComparison.Ordinal));
            return RowOutcome.Fail(row.Number, column, column is null ? null : row.Raw(column), error.Message);
        }

        var item = row.Text("itemId") is not null ? "itemId" : "sku";
        return row.Fail(error, code => code switch
        {
            "not_found" or "item_archived" => item,
            "insufficient_stock" => "quantity",
            "same_location" => "toLocationId",
            "concurrent_update" => null,
            _ => code,
        });
    }
}
