using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>
/// The <c>inventory</c> table. A tenant's locations, items, per-location stock, movements and the SKU index all
/// live in the tenant's one partition, told apart by row-key prefix, so that a movement can change an item, its
/// stock rows and append its own rows in a single entity-group transaction.
/// </summary>
public sealed class InventoryStore(StorageAccount storage)
{
    public const string TableName = "inventory";

    public TenantPartition For(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>Ids are ULIDs; anything else cannot be ours and must never reach a row key (no '/', '#', '?').</summary>
    public static bool IsPlausibleId(string? id) => id is { Length: > 0 and <= 64 } && id.All(char.IsAsciiLetterOrDigit);
}
