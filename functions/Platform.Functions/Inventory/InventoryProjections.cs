using System.Text.Json;
using Platform.Functions.Query;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>
/// A tenant's items and per-location stock as lists, reorder suggestions and analytics read them: kept in memory per
/// instance and caught up through the inventory table's change log (see <see cref="ListProjection{TEntity, TItem}"/>).
/// Movements never enter it - they change item and stock rows in the same transaction, and those are what is read -
/// so analytics cost the same with 1,000 or 1,000,000 movements on record.
/// </summary>
/// <remarks>
/// Both are saved as snapshots for large tenants (<see cref="ProjectionSnapshots"/>), so the first list or report on
/// an instance that never held the tenant downloads two blobs instead of scanning 100,000 items and their stock rows.
/// </remarks>
public sealed class InventoryProjections(StorageAccount storage, ProjectionMemory memory, ProjectionSnapshots snapshots, TimeProvider time)
{
    public ListProjection<ItemEntity, ItemListItem> Items { get; } =
        new(storage, InventoryStore.TableName, ItemEntity.KeyPrefix, item => new ItemListItem(item), item => item.HeldBytes, memory, time,
            snapshots, item => item.Entity);

    // The entity object and its three strings (partition key, item id, location id; the row key is counted apart).
    public ListProjection<StockEntity, StockEntity> Stock { get; } =
        new(storage, InventoryStore.TableName, StockEntity.KeyPrefix, stock => stock,
            stock => 120 + 2L * (stock.PartitionKey.Length + stock.ItemId.Length + stock.LocationId.Length) + 3 * 24, memory, time,
            snapshots, stock => stock);

    /// <summary>Applies a write made on this instance, so the writer's next read shows it.</summary>
    public void Apply(TenantId tenant, ItemEntity item, params IEnumerable<StockEntity?> stock)
    {
        Items.Apply(tenant, item);
        foreach (var row in stock)
        {
            if (row is not null)
            {
                Stock.Apply(tenant, row);
            }
        }
    }
}

/// <summary>An item as lists see it: the stored row (for analytics and suggestions), its response view and search text.</summary>
public sealed class ItemListItem(ItemEntity entity) : IListed<ItemView>
{
    public ItemEntity Entity { get; } = entity;

    public ItemView View { get; } = ItemView.From(entity);

    public string Id => View.Id;

    /// <summary>
    /// An estimate of the memory this item keeps alive, for the projection's budget: the stored row, its view and parsed
    /// fields, the tags, and the search text once built. The view shares the row's strings.
    /// </summary>
    public long HeldBytes { get; } = 900
        + 4L * (entity.RowKey.Length + entity.Sku.Length + entity.Name.Length + (entity.Description?.Length ?? 0) + (entity.Category?.Length ?? 0)
            + (entity.Supplier?.Length ?? 0) + entity.Tags.Length)
        + 2L * (entity.PartitionKey.Length + entity.RowKey.Length + entity.Status.Length + (entity.LocationId?.Length ?? 0) + (entity.Unit?.Length ?? 0))
        + 3L * entity.Fields.Length;

    public string SearchText => field ??= string.Join('\n', View.Sku, View.Name, View.Description, View.Category, View.Supplier, string.Join('\n', View.Tags)).ToLowerInvariant();

    public object? ValueOf(string field) => field switch
    {
        "id" => View.Id,
        "sku" => View.Sku,
        "name" => View.Name,
        "category" => View.Category,
        "locationId" => View.LocationId,
        "quantity" => View.Quantity,
        "unit" => View.Unit,
        "unitCost" => View.UnitCost,
        "reorderPoint" => View.ReorderPoint,
        "reorderQuantity" => View.ReorderQuantity,
        "tags" => View.Tags,
        "supplier" => View.Supplier,
        "status" => View.Status,
        "createdAt" => View.CreatedAt,
        "updatedAt" => View.UpdatedAt,
        "expiresAt" => View.ExpiresAt,
        _ when field.StartsWith(FilterSchema.CustomFieldPrefix, StringComparison.Ordinal) =>
            View.Fields.ValueKind == JsonValueKind.Object && View.Fields.TryGetProperty(field[FilterSchema.CustomFieldPrefix.Length..], out var value) ? value : null,
        _ => null,
    };
}
