using System.Text.Json;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Http;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

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

/// <summary>Why an inventory command did not happen: a status, a problem code and a message (field errors for 400).</summary>
public sealed record InventoryError(int Status, string Code, string Message, Validation? Fields = null)
{
    public ProblemHttpResult ToProblem() =>
        Fields is { IsValid: false } fields ? fields.ToProblem() : Problems.Create(Status, Code, Title(Status), Message);

    private static string Title(int status) => status switch
    {
        404 => "Not found",
        409 => "Conflict",
        412 => "Precondition failed",
        _ => "Invalid request",
    };

    public static InventoryError Invalid(Validation validation) => new(400, "validation_failed", "One or more fields are invalid.", validation);

    public static InventoryError NotFound(string what) => new(404, "not_found", $"No {what} of this tenant has this id.");

    public static InventoryError Stale(string what) => new(412, "precondition_failed", $"The {what} changed since you read it; read it again.");
}

/// <summary>
/// Reads a PATCH body, where a member that is absent means "leave as is" and <c>null</c> means "clear it" - a
/// difference a record binding cannot see.
/// </summary>
public sealed class PatchBody(JsonElement body, Validation validation)
{
    public bool IsObject => body.ValueKind == JsonValueKind.Object;

    public bool Has(string name) => IsObject && body.TryGetProperty(name, out _);

    /// <summary>Absent: (false, _). Present: (true, trimmed text or null when null/blank).</summary>
    public (bool Present, string? Value) OptionalText(string name, int maxLength)
    {
        if (!IsObject || !body.TryGetProperty(name, out var value))
        {
            return (false, null);
        }

        if (value.ValueKind == JsonValueKind.Null)
        {
            return (true, null);
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            validation.Add(name, "must be a string or null");
            return (true, null);
        }

        var text = value.GetString()!.Trim();
        if (text.Length > maxLength)
        {
            validation.Add(name, $"must be at most {maxLength} characters");
        }

        return (true, text.Length == 0 ? null : text);
    }

    public (bool Present, double? Value) OptionalNumber(string name)
    {
        if (!IsObject || !body.TryGetProperty(name, out var value))
        {
            return (false, null);
        }

        if (value.ValueKind == JsonValueKind.Null)
        {
            return (true, null);
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
        {
            validation.Add(name, "must be a number or null");
            return (true, null);
        }

        return (true, number);
    }

    public (bool Present, DateTimeOffset? Value) OptionalTimestamp(string name)
    {
        if (!IsObject || !body.TryGetProperty(name, out var value))
        {
            return (false, null);
        }

        if (value.ValueKind == JsonValueKind.Null)
        {
            return (true, null);
        }

        if (value.ValueKind != JsonValueKind.String || !value.TryGetDateTimeOffset(out var at))
        {
            validation.Add(name, "must be an ISO-8601 timestamp or null");
            return (true, null);
        }

        return (true, at.ToUniversalTime());
    }

    public (bool Present, JsonElement Value) Raw(string name) =>
        IsObject && body.TryGetProperty(name, out var value) ? (true, value) : (false, default);
}

public static class InventoryExtensions
{
    public static IHostApplicationBuilder AddInventory(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(InventoryStore.TableName, changeLogged: [ItemEntity.KeyPrefix, StockEntity.KeyPrefix]);
        builder.Services.AddSingleton<InventoryProjections>();
        builder.Services.AddSingleton<InventoryStore>();
        builder.Services.AddSingleton<LocationCommands>();
        builder.Services.AddSingleton<ItemCommands>();
        builder.Services.AddSingleton<MovementCommands>();
        builder.Services.AddSingleton<AlertMonitor>();
        builder.Services.AddOptions<InventoryOptions>().BindConfiguration(InventoryOptions.Section);
        builder.Services.AddTimerFunction<InventoryExpiryScan>("InventoryExpiryScan", "0 0 5 * * *");
        builder.Services.TryAddSingleton<ContinuationTokens>();
        return builder;
    }

    public static IEndpointRouteBuilder MapInventory(this IEndpointRouteBuilder app)
    {
        app.MapLocations();
        app.MapItems();
        app.MapMovements();
        app.MapAlerts();
        app.MapReorderSuggestions();
        app.MapInventoryAnalytics();
        return app;
    }
}
