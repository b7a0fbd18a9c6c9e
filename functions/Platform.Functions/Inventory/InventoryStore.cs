using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>
/// The <c>inventory</c> table. A tenant's locations, items, per-location stock, movements and the SKU index all
/// live in the tenant's one partition, told apart by row-key prefix, so that a movement can change an item, its
/// stock rows and append its own rows in a single entity-group transaction.
/// </summary>
public sealed class InventoryStore(StorageAccount storage, IOptions<InventoryOptions> options)
{
    public const string TableName = "inventory";

    /// <summary>The row counting the tenant's items (outside every prefix above).</summary>
    public const string ItemCounterKey = "~count:items";

    public TenantPartition For(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>
    /// The tenant's items that count against <see cref="InventoryOptions.MaxItemsPerTenant"/>: those not archived.
    /// Create and archive move it in their own transaction.
    /// </summary>
    public TenantCounter Items { get; } = new(tenant => storage.TenantTable(TableName).For(tenant), ItemCounterKey, CountItemsAsync, () => options.Value.MaxItemsPerTenant);

    private static async Task<long> CountItemsAsync(TenantPartition partition, CancellationToken cancellationToken)
    {
        long count = 0;
        await foreach (var item in partition.QueryAsync<ItemEntity>(ItemEntity.KeyPrefix, cancellationToken: cancellationToken))
        {
            if (item.Status != ItemStatus.Archived)
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Ids are ULIDs; anything else cannot be ours and must never reach a row key (no '/', '#', '?').</summary>
    public static bool IsPlausibleId(string? id) => id is { Length: > 0 and <= 64 } && id.All(char.IsAsciiLetterOrDigit);
}
