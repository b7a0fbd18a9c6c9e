using System.Globalization;
using System.Runtime.CompilerServices;
using Platform.Functions.Auth;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Query;

namespace Platform.Functions.Inventory;

/// <summary>Export values as text: invariant numbers that read back to the same double, ISO 8601 UTC timestamps.</summary>
internal static class ExportText
{
    public static string? Of(double? value) => value?.ToString("R", CultureInfo.InvariantCulture);

    public static string? Of(DateTimeOffset? value) =>
        value?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    /// <summary>The filter text parsed against <paramref name="schema"/>, or the parser's message (with its position).</summary>
    public static string? Check(string? filter, FilterSchema schema)
    {
        try
        {
            FilterParser.ParseOptional(filter, schema);
            return null;
        }
        catch (FilterException ex)
        {
            return ex.Message;
        }
    }
}

/// <summary>
/// Export kind <c>inventory-items</c>: the items <c>GET /api/v1/inventory/items</c> lists (not archived), with its
/// filter language (<see cref="ItemsEndpoints.Schema"/>), read from the table a page of 1,000 at a time. The columns are
/// the item's fields; <c>fields</c> is the custom fields as one JSON object, <c>tags</c> joined with ';' - the form the
/// <c>inventory-items</c> import reads back (less <c>id</c>, <c>quantity</c>, <c>status</c> and the times, which are read-only).
/// </summary>
public sealed class ItemExport(InventoryStore store) : IExportKind
{
    public const string Kind = "inventory-items";

    public IReadOnlyList<string> Columns { get; } =
    [
        "id", "sku", "name", "description", "category", "locationId", "quantity", "unit", "unitCost", "reorderPoint", "reorderQuantity",
        "expiresAt", "supplier", "tags", "fields", "status", "createdAt", "updatedAt",
    ];

    public string? CheckFilter(string? filter) => ExportText.Check(filter, ItemsEndpoints.Schema);

    public async IAsyncEnumerable<IReadOnlyList<string?>> RowsAsync(Caller caller, string? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var where = FilterParser.ParseOptional(filter, ItemsEndpoints.Schema);
        await foreach (var item in store.For(caller.Tenant).QueryAsync<ItemEntity>(ItemEntity.KeyPrefix, maxPerPage: 1000, cancellationToken))
        {
            if (item.Status == ItemStatus.Archived)
            {
                continue;
            }

            var listed = new ItemListItem(item);
            if (where is not null && !where.Evaluate(listed.ValueOf))
            {
                continue;
            }

            yield return
            [
                item.Id, item.Sku, item.Name, item.Description, item.Category, item.LocationId, ExportText.Of(item.Quantity), item.Unit,
                ExportText.Of(item.UnitCost), ExportText.Of(item.ReorderPoint), ExportText.Of(item.ReorderQuantity), ExportText.Of(item.ExpiresAt),
                item.Supplier, string.Join(';', item.TagList), item.Fields == "{}" ? null : item.Fields, item.Status,
                ExportText.Of(item.CreatedAt), ExportText.Of(item.UpdatedAt),
            ];
        }
    }
}

/// <summary>
/// Export kind <c>inventory-movements</c>: the tenant's movements oldest first (the ledger order of
/// <c>GET /api/v1/inventory/movements</c>), read a page of 1,000 at a time. That route filters by query parameters;
/// an export takes the filter language over the movement's fields instead (<see cref="Schema"/>), e.g.
/// <c>type eq 'in' and supplier eq 'Acme' and at ge 2026-01-01</c>. Each row carries its item's current SKU.
/// </summary>
public sealed class MovementExport(InventoryStore store, InventoryProjections projections) : IExportKind
{
    public const string Kind = "inventory-movements";

    public static FilterSchema Schema { get; } = new(new Dictionary<string, FieldType>(StringComparer.Ordinal)
    {
        ["id"] = FieldType.String,
        ["at"] = FieldType.Timestamp,
        ["itemId"] = FieldType.String,
        ["sku"] = FieldType.String,
        ["type"] = FieldType.String,
        ["quantity"] = FieldType.Number,
        ["delta"] = FieldType.Number,
        ["quantityAfter"] = FieldType.Number,
        ["fromLocationId"] = FieldType.String,
        ["toLocationId"] = FieldType.String,
        ["batch"] = FieldType.String,
        ["supplier"] = FieldType.String,
        ["reference"] = FieldType.String,
        ["reason"] = FieldType.String,
        ["actorId"] = FieldType.String,
    });

    public IReadOnlyList<string> Columns { get; } =
    [
        "id", "at", "itemId", "sku", "type", "quantity", "delta", "quantityAfter", "fromLocationId", "toLocationId",
        "batch", "supplier", "reference", "reason", "actorId",
    ];

    public string? CheckFilter(string? filter) => ExportText.Check(filter, Schema);

    public async IAsyncEnumerable<IReadOnlyList<string?>> RowsAsync(Caller caller, string? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var where = FilterParser.ParseOptional(filter, Schema);

        // SKUs from the items list every instance keeps anyway (bounded by ProjectionMemory), not a read per movement.
        var items = await projections.Items.RowsAsync(caller.Tenant, cancellationToken);
        await foreach (var m in store.For(caller.Tenant).QueryAsync<MovementEntity>(MovementEntity.TenantPrefix, maxPerPage: 1000, cancellationToken))
        {
            var sku = items.TryGet(ItemEntity.KeyFor(m.ItemId), out var item) ? item.Entity.Sku : null;
            if (where is not null && !where.Evaluate(field => field switch
                {
                    "id" => m.Id,
                    "at" => m.At,
                    "itemId" => m.ItemId,
                    "sku" => sku,
                    "type" => m.Type,
                    "quantity" => m.Quantity,
                    "delta" => m.Delta,
                    "quantityAfter" => m.QuantityAfter,
                    "fromLocationId" => m.FromLocationId,
                    "toLocationId" => m.ToLocationId,
                    "batch" => m.Batch,
                    "supplier" => m.Supplier,
                    "reference" => m.Reference,
                    "reason" => m.Reason,
                    "actorId" => m.ActorId,
                    _ => null,
                }))
            {
                continue;
            }

            yield return
            [
                m.Id, ExportText.Of(m.At), m.ItemId, sku, m.Type, ExportText.Of(m.Quantity), ExportText.Of(m.Delta), ExportText.Of(m.QuantityAfter),
                m.FromLocationId, m.ToLocationId, m.Batch, m.Supplier, m.Reference, m.Reason, m.ActorId,
            ];
        }
    }
}
