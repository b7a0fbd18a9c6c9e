using System.Runtime.Serialization;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Inventory;

/// <summary>
/// An alert about one item: row <c>a:{id}</c>. It stays as history once closed, for
/// <see cref="InventoryOptions.ClosedAlertRetention"/> (then housekeeping deletes it, see <see cref="ClosedAlertExpiry"/>).
/// </summary>
public sealed class AlertEntity : ITableEntity
{
    public const string KeyPrefix = "a:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Kind { get; set; } = "";
    public string Status { get; set; } = AlertStatus.Open;
    public string ItemId { get; set; } = "";
    public string Sku { get; set; } = "";
    public string Name { get; set; } = "";
    public double Quantity { get; set; }
    public double? ReorderPoint { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public DateTimeOffset RaisedAt { get; set; }
    public DateTimeOffset? AcknowledgedAt { get; set; }
    public string? AcknowledgedBy { get; set; }
    public DateTimeOffset? ClosedAt { get; set; }

    [IgnoreDataMember]
    public string Id => RowKey[KeyPrefix.Length..];

    public static string KeyFor(string id) => KeyPrefix + id;
}

/// <summary>When a row of the inventory table scheduled for deletion goes: a closed alert, its retention after closing.</summary>
internal sealed class ClosedAlertExpiry(Microsoft.Extensions.Options.IOptions<InventoryOptions> options) : Housekeeping.IRowExpiry
{
    public string Table => InventoryStore.TableName;

    /// <remarks>Null (never) for any other row, and for an alert not closed: only closing schedules an alert.</remarks>
    public DateTimeOffset? DueAt(TableEntity row, string? tag) =>
        row.RowKey.StartsWith(AlertEntity.KeyPrefix, StringComparison.Ordinal) &&
        row.GetString(nameof(AlertEntity.Status)) == AlertStatus.Closed &&
        row.GetDateTimeOffset(nameof(AlertEntity.ClosedAt)) is { } closedAt
            ? closedAt + options.Value.ClosedAlertRetention
            : null;
}

/// <summary>
/// Row <c>o:{itemId}:{kind}</c> exists while that condition's alert is not closed. Raising adds it in the alert's
/// transaction, so however many movements find an item low at once, only one of them raises the alert.
/// </summary>
public sealed class OpenAlertMarker : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string AlertId { get; set; } = "";

    public static string KeyFor(string itemId, string kind) => $"o:{itemId}:{kind}";
}

public static class AlertKind
{
    public const string LowStock = "low_stock";
    public const string Expiring = "expiring";
}

public static class AlertStatus
{
    public const string Open = "open";
    public const string Acknowledged = "acknowledged";
    public const string Closed = "closed";
}

public sealed record AlertView(
    string Id, string Kind, string Status, string ItemId, string Sku, string Name, double Quantity, double? ReorderPoint, DateTimeOffset? ExpiresAt,
    DateTimeOffset RaisedAt, DateTimeOffset? AcknowledgedAt, string? AcknowledgedBy, DateTimeOffset? ClosedAt)
{
    public static AlertView From(AlertEntity a) =>
        new(a.Id, a.Kind, a.Status, a.ItemId, a.Sku, a.Name, a.Quantity, a.ReorderPoint, a.ExpiresAt, a.RaisedAt, a.AcknowledgedAt, a.AcknowledgedBy, a.ClosedAt);
}
