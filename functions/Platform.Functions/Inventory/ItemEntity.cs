using System.Runtime.Serialization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Inventory;

/// <summary>
/// A stock-keeping item: row <c>i:{id}</c>. Its SKU is held unique by the row <c>k:{SKU upper-cased}</c>, written
/// in the same entity-group transaction. <see cref="Quantity"/> is the sum of its stock rows and only movements change it.
/// </summary>
public sealed class ItemEntity : ITableEntity
{
    public const string KeyPrefix = "i:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Sku { get; set; } = "";
    public string Name { get; set; } = "";
    public string? Description { get; set; }
    public string? Category { get; set; }
    public string? LocationId { get; set; }
    public double Quantity { get; set; }
    public string? Unit { get; set; }
    public double? UnitCost { get; set; }
    public double? ReorderPoint { get; set; }
    public double? ReorderQuantity { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public string? Supplier { get; set; }
    public string Tags { get; set; } = "[]";
    public string Fields { get; set; } = "{}";
    public string Status { get; set; } = ItemStatus.Active;
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? ArchivedAt { get; set; }

    /// <summary>Units taken out (<c>out</c> movements) since the item was created; kept by the movement's own write, for analytics.</summary>
    public double OutTotal { get; set; }

    /// <summary>When the last <c>out</c> movement happened; null for never (dead-stock analytics).</summary>
    public DateTimeOffset? LastOutAt { get; set; }

    /// <summary>
    /// The kinds of alert open on the item, comma-separated ("" for none), written in the same transaction as their
    /// markers, so a movement that changes no alert needs no marker reads. Null on items written before it was kept:
    /// their markers are read.
    /// </summary>
    public string? OpenAlerts { get; set; }

    [IgnoreDataMember]
    public string Id => RowKey[KeyPrefix.Length..];

    [IgnoreDataMember]
    public IReadOnlyList<string> TagList
    {
        get => JsonSerializer.Deserialize<string[]>(Tags) ?? [];
        set => Tags = JsonSerializer.Serialize(value);
    }

    public static string KeyFor(string id) => KeyPrefix + id;

    /// <summary>A copy to change apart from this one (every property is a value or an immutable string).</summary>
    public ItemEntity Copy() => (ItemEntity)MemberwiseClone();
}

public static class ItemStatus
{
    public const string Active = "active";

    /// <summary>Soft-deleted: kept with its stock and movement history, out of lists unless asked for, SKU released.</summary>
    public const string Archived = "archived";
}

/// <summary>The SKU index row: <c>k:{SKU upper-cased}</c> → item id.</summary>
public sealed class SkuIndexEntity : ITableEntity
{
    public const string KeyPrefix = "k:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string ItemId { get; set; } = "";

    /// <summary>
    /// The import job and row that created the item (<c>{jobId}#{row}</c>), null for one made over HTTP: a chunk
    /// applied again after a crash finds its own rows here and reports them created instead of taken.
    /// </summary>
    public string? ImportKey { get; set; }

    public static string KeyFor(string sku) => KeyPrefix + sku.ToUpperInvariant();
}

public sealed record ItemView(
    string Id,
    string Sku,
    string Name,
    string? Description,
    string? Category,
    string? LocationId,
    double Quantity,
    string? Unit,
    double? UnitCost,
    double? ReorderPoint,
    double? ReorderQuantity,
    DateTimeOffset? ExpiresAt,
    string? Supplier,
    IReadOnlyList<string> Tags,
    JsonElement Fields,
    string Status,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? ArchivedAt)
{
    public static ItemView From(ItemEntity item) => new(
        item.Id, item.Sku, item.Name, item.Description, item.Category, item.LocationId, item.Quantity, item.Unit, item.UnitCost,
        item.ReorderPoint, item.ReorderQuantity, item.ExpiresAt, item.Supplier, item.TagList, JsonSerializer.Deserialize<JsonElement>(item.Fields),
        item.Status, item.CreatedAt, item.UpdatedAt, item.ArchivedAt);
}
