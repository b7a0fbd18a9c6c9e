using System.Runtime.Serialization;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Inventory;

/// <summary>
/// A recorded movement, immutable once written. Each movement is stored twice in its transaction: as
/// <c>m:{itemId}:{movementId}</c> (an item's history, one key range) and as <c>n:{movementId}</c> (the tenant's
/// history in time order, also one key range), so neither list needs a scan of the other.
/// </summary>
public sealed class MovementEntity : ITableEntity
{
    public const string ItemPrefix = "m:";
    public const string TenantPrefix = "n:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Id { get; set; } = "";
    public string ItemId { get; set; } = "";
    public string Type { get; set; } = "";

    /// <summary>As requested: moved for in/out/transfer, the counted quantity for adjust.</summary>
    public double Quantity { get; set; }

    /// <summary>How the item's total quantity changed (0 for a transfer).</summary>
    public double Delta { get; set; }

    /// <summary>The item's total quantity right after this movement.</summary>
    public double QuantityAfter { get; set; }

    public string? FromLocationId { get; set; }
    public string? ToLocationId { get; set; }
    public string? Reason { get; set; }
    public string? Batch { get; set; }
    public string? Supplier { get; set; }
    public string? Reference { get; set; }
    public string? ActorId { get; set; }
    public DateTimeOffset At { get; set; }

    public static string ItemPrefixFor(string itemId) => $"{ItemPrefix}{itemId}:";

    public MovementEntity CopyAs(string rowKey)
    {
        var copy = (MovementEntity)MemberwiseClone();
        copy.RowKey = rowKey;
        copy.ETag = default;
        return copy;
    }
}

/// <summary>
/// Row <c>x:{hash of job and row}</c>: an import row recorded the movement <see cref="MovementId"/>. Added in that
/// movement's transaction, so the same row applied again finds it and records nothing (see
/// <see cref="MovementCommands.RecordAsync(Platform.Functions.Auth.Caller, string, MovementInput, string?, CancellationToken)"/>).
/// </summary>
public sealed class ImportedMovementMarker : ITableEntity
{
    public const string KeyPrefix = "x:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string MovementId { get; set; } = "";

    /// <summary>Hashed: an import key holds the engine's job id, whatever its characters, and row keys must not.</summary>
    public static string KeyFor(string importKey) =>
        KeyPrefix + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(importKey)))[..40];
}

public static class MovementType
{
    public const string In = "in";
    public const string Out = "out";
    public const string Transfer = "transfer";
    public const string Adjust = "adjust";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { In, Out, Transfer, Adjust };
}

public sealed record MovementView(
    string Id, string ItemId, string Type, double Quantity, double Delta, double QuantityAfter, string? FromLocationId, string? ToLocationId,
    string? Reason, string? Batch, string? Supplier, string? Reference, string? ActorId, DateTimeOffset At)
{
    public static MovementView From(MovementEntity m) => new(
        m.Id, m.ItemId, m.Type, m.Quantity, m.Delta, m.QuantityAfter, m.FromLocationId, m.ToLocationId, m.Reason, m.Batch, m.Supplier, m.Reference, m.ActorId, m.At);
}

public sealed record MovementResult(MovementView Movement, double Quantity);

public sealed record StockView(string? LocationId, double Quantity);

public sealed record ItemStockView(string ItemId, double Quantity, IReadOnlyList<StockView> Locations);
