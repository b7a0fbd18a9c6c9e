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
    /// A create body. <see cref="Quantity"/> is only here to be refused: stock changes through movements. Bound as a
    /// record (not raw JSON) so that <c>Idempotency-Key</c> can tell one body from another.
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

    public static RouteGroupBuilder MapItems(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Inventory");
        group.MapGet("/", ListItems).RequirePermission(Permissions.InventoryRead).WithName("ListItems").WithSummary("The tenant's items, with filter, search, sort and paging.");
        group.MapPost("/", CreateItem).RequirePermission(Permissions.InventoryWrite).WithIdempotency().WithName("CreateItem").WithSummary("Creates an item.");
        group.MapGet("/{id}", GetItem).RequirePermission(Permissions.InventoryRead).WithName("GetItem").WithSummary("One item.");
        group.MapPatch("/{id}", UpdateItem).RequirePermission(Permissions.InventoryWrite).WithName("UpdateItem").WithSummary("Changes an item (its quantity changes only through movements).");
        group.MapDelete("/{id}", ArchiveItem).RequirePermission(Permissions.InventoryWrite).WithName("ArchiveItem").WithSummary("Archives an item.");
        return group;
    }

    internal static async Task<Results<Created<ItemView>, ProblemHttpResult>> CreateItem(
        CreateItemRequest request, ClaimsPrincipal principal, HttpContext http, ItemCommands commands, AlertMonitor alerts, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var (item, error) = await commands.CreateAsync(caller.Tenant, JsonSerializer.SerializeToElement(request, Absent), cancellationToken);
        if (item is null)
        {
            return error!.ToProblem();
        }

        await events.PublishAsync(caller.Tenant, new PlatformEvent("inventory.item.created", LocationsEndpoints.Actor(caller, http), "item", item.Id,
            new Dictionary<string, object?> { ["sku"] = item.Sku, ["name"] = item.Name }), cancellationToken);
        item.ETag = await alerts.SyncAsync(caller.Tenant, item, cancellationToken) ?? item.ETag;
        http.Response.Headers.ETag = ETags.For(item.ETag);
        return TypedResults.Created($"{Path}/{item.Id}", ItemView.From(item));
    }

    internal static async Task<Results<Ok<ItemView>, ProblemHttpResult>> GetItem(
        string id, ClaimsPrincipal principal, HttpContext http, ItemCommands commands, CancellationToken cancellationToken)
    {
        var item = await commands.GetAsync(Caller.From(principal)!.Tenant, id, cancellationToken);
        if (item is null)
        {
            return InventoryError.NotFound("item").ToProblem();
        }

        http.Response.Headers.ETag = ETags.For(item.ETag);
        return TypedResults.Ok(ItemView.From(item));
    }

    internal static async Task<Results<Ok<ItemView>, ProblemHttpResult>> UpdateItem(
        string id, JsonElement request, ClaimsPrincipal principal, HttpContext http, ItemCommands commands, AlertMonitor alerts, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        if (request.ValueKind != JsonValueKind.Object)
        {
            return new Validation().Add("body", "must be a JSON object").ToProblem();
        }

        var (item, error, changes) = await commands.UpdateAsync(caller.Tenant, id, request, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken);
        if (item is null)
        {
            return error!.ToProblem();
        }

        if (changes is { Count: > 0 })
        {
            await events.PublishAsync(caller.Tenant, new PlatformEvent("inventory.item.updated", LocationsEndpoints.Actor(caller, http), "item", item.Id, changes), cancellationToken);
            item.ETag = await alerts.SyncAsync(caller.Tenant, item, cancellationToken) ?? item.ETag;
        }

        http.Response.Headers.ETag = ETags.For(item.ETag);
        return TypedResults.Ok(ItemView.From(item));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> ArchiveItem(
        string id, ClaimsPrincipal principal, HttpContext http, ItemCommands commands, AlertMonitor alerts, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var (item, error) = await commands.ArchiveAsync(caller.Tenant, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken);
        if (item is null)
        {
            return error!.ToProblem();
        }

        await events.PublishAsync(caller.Tenant, new PlatformEvent("inventory.item.deleted", LocationsEndpoints.Actor(caller, http), "item", id,
            new Dictionary<string, object?> { ["sku"] = item.Sku, ["quantity"] = item.Quantity }), cancellationToken);
        item.ETag = await alerts.SyncAsync(caller.Tenant, item, cancellationToken) ?? item.ETag;
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Ok<PagedList<ItemView>>, ProblemHttpResult>> ListItems(
        string? filter, string? q, string? sort, bool? includeArchived, string? pageSize, string? continuationToken,
        ClaimsPrincipal principal, InventoryProjections projections, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var rows = (await projections.Items.RowsAsync(caller.Tenant, cancellationToken))
            .Where(i => includeArchived == true || i.Entity.Status != ItemStatus.Archived);
        return InMemoryLists.Page(rows, Schema, filter, q, sort, pageSize, continuationToken, $"{includeArchived == true}", caller.Tenant, tokens);
    }
}
