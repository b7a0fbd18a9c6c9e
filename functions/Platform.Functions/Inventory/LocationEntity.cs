using System.Runtime.Serialization;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Inventory;

/// <summary>A place stock is kept: row <c>l:{id}</c>. Locations form a tree through <see cref="ParentId"/>.</summary>
public sealed class LocationEntity : ITableEntity
{
    public const string KeyPrefix = "l:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Name { get; set; } = "";
    public string? Code { get; set; }
    public string? ParentId { get; set; }
    public string? Description { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>The import job and row that created the location (<c>{jobId}#{row}</c>), so a re-run of the chunk finds its own.</summary>
    public string? ImportKey { get; set; }

    [IgnoreDataMember]
    public string Id => RowKey[KeyPrefix.Length..];

    public static string KeyFor(string id) => KeyPrefix + id;
}

/// <summary>
/// How much of one item one location holds: row <c>s:{itemId}:{locationId}</c> (<c>-</c> for stock that has no
/// location). The item's quantity is the sum of its stock rows; both change in the movement's transaction.
/// </summary>
public sealed class StockEntity : ITableEntity
{
    public const string KeyPrefix = "s:";
    public const string Unassigned = "-";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string ItemId { get; set; } = "";

    /// <summary>The location's id, or <see cref="Unassigned"/>.</summary>
    public string LocationId { get; set; } = Unassigned;

    public double Quantity { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    public static string PrefixFor(string itemId) => $"{KeyPrefix}{itemId}:";

    public static string KeyFor(string itemId, string? locationId) => PrefixFor(itemId) + (locationId ?? Unassigned);

    /// <summary>A copy to change apart from this one.</summary>
    public StockEntity Copy() => (StockEntity)MemberwiseClone();
}

public sealed record LocationView(string Id, string Name, string? Code, string? ParentId, string? Description, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static LocationView From(LocationEntity location) =>
        new(location.Id, location.Name, location.Code, location.ParentId, location.Description, location.CreatedAt, location.UpdatedAt);
}
