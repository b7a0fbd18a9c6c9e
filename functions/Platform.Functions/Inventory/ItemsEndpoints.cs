using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Query;
using Platform.Functions.Roles;

namespace Platform.Functions.Inventory;

/// <summary><c>/api/v1/inventory/items</c>: the things a tenant keeps in stock.</summary>
public static class ItemsEndpoints
{
    public const string Path = "/api/v1/inventory/items";

    /// <summary>
    /// A create body. <see cref="Quantity"/> is only here to be refused: stock changes through movements.
    /// </summary>
    public sealed record CreateItemRequest(
        string? Sku, string? Name, string? Description, string? Category, string? LocationId, JsonElement? Quantity, string? Unit,
        double? UnitCost, double? ReorderPoint, double? ReorderQuantity, DateTimeOffset? ExpiresAt, string? Supplier,
        IReadOnlyList<string>? Tags, JsonElement? Fields);

    private static readonly JsonSerializerOptions Absent = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public static FilterSchema Schema { get; } = new(new Dictionary<string, FieldType>(StringComparer.Ordinal)
    {
        ["id"] = FieldType.String,
        ["sku"] = FieldType.String,
        ["name"] = FieldType.String,
        ["category"] = FieldType.String,
        ["locationId"] = FieldType.String,
        ["quantity"] = FieldType.Number,
        ["unit"] = FieldType.String,
        ["unitCost"] = FieldType.Number,
        ["reorderPoint"] = FieldType.Number,
        ["reorderQuantity"] = FieldType.Number,
        ["tags"] = FieldType.StringList,
        ["supplier"] = FieldType.String,
        ["status"] = FieldType.String,
        ["createdAt"] = FieldType.Timestamp,
        ["updatedAt"] = FieldType.Timestamp,
        ["expiresAt"] = FieldType.Timestamp,
    }, _ => FieldType.String);

    internal static RouteGroupBuilder MapRoutes(RouteGroupBuilder inventory)
    {
        var group = inventory.MapGroup("/items");
        group.MapGet("/", ListItems).RequirePermission(Permissions.InventoryRead).WithName("ListItems").WithSummary("The tenant's items, with filter, search, sort and paging.");
        group.MapPost("/", CreateItem).RequirePermission(Permissions.InventoryWrite).WithIdempotency().WithName("CreateItem").WithSummary("Creates an item.");
        group.MapGet("/{id}", GetItem).RequirePermission(Permissions.InventoryRead).WithName("GetItem").WithSummary("One item.");
        group.MapPatch("/{id}", UpdateItem).RequirePermission(Permissions.InventoryWrite).WithName("UpdateItem").WithSummary("Changes an item (its quantity changes only through movements).");
        group.MapDelete("/{id}", ArchiveItem).RequirePermission(Permissions.InventoryWrite).WithName("ArchiveItem").WithSummary("Archives an item.");
        return group;
    }

    internal static async Task<Results<Created<ItemView>, ProblemHttpResult>> CreateItem(
        CreateItemRequest request, Caller caller, HttpContext http, ItemCommands commands, CancellationToken cancellationToken) =>
        (await commands.CreateAsync(caller, JsonSerializer.SerializeToElement(request, Absent), cancellationToken))
            .ToResult(item => TypedResults.Created($"{Path}/{item.Id}", http.Tagged(item.ETag, ItemView.From(item))));

    internal static async Task<Results<Ok<ItemView>, ProblemHttpResult>> GetItem(
        string id, Caller caller, HttpContext http, ItemCommands commands, CancellationToken cancellationToken) =>
        await commands.GetAsync(caller.Tenant, id, cancellationToken) is { } item
            ? TypedResults.Ok(http.Tagged(item.ETag, ItemView.From(item)))
            : CommandError.NotFound("item").ToProblem();

    internal static async Task<Results<Ok<ItemView>, ProblemHttpResult>> UpdateItem(
        string id, JsonElement request, Caller caller, HttpContext http, ItemCommands commands, CancellationToken cancellationToken) =>
        request.ValueKind != JsonValueKind.Object
            ? new Validation().Add("body", "must be a JSON object").ToProblem()
            : (await commands.UpdateAsync(caller, id, request, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken))
                .ToResult(item => TypedResults.Ok(http.Tagged(item.ETag, ItemView.From(item))));

    internal static async Task<Results<NoContent, ProblemHttpResult>> ArchiveItem(
        string id, Caller caller, HttpContext http, ItemCommands commands, CancellationToken cancellationToken) =>
        (await commands.ArchiveAsync(caller, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken)).ToResult(_ => TypedResults.NoContent());

    internal static async Task<Results<Ok<PagedList<ItemView>>, ProblemHttpResult>> ListItems(
        string? filter, string? q, string? sort, bool? includeArchived, string? pageSize, string? continuationToken,
        Caller caller, InventoryProjections projections, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var rows = (await projections.Items.RowsAsync(caller.Tenant, cancellationToken))
            .Where(i => includeArchived == true || i.Entity.Status != ItemStatus.Archived);
        return InMemoryLists.Page(rows, Schema, filter, q, sort, pageSize, continuationToken, $"{includeArchived == true}", caller.Tenant, tokens);
    }
}
