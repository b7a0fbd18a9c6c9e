using System.Runtime.CompilerServices;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>
/// Movements (<c>POST/GET /api/v1/inventory/items/{id}/movements</c>, <c>GET /api/v1/inventory/movements</c>) and
/// stock per location (<c>GET /api/v1/inventory/items/{id}/stock</c>). Lists are oldest first (ledger order).
/// </summary>
public static class MovementsEndpoints
{
    public const string Path = "/api/v1/inventory/movements";

    public sealed record CreateMovementRequest(
        string? Type, double? Quantity, string? Reason, string? FromLocationId, string? ToLocationId, string? Batch, string? Supplier, string? Reference);

    /// <summary>Where the next page starts: the row key of the last movement served.</summary>
    public sealed record MovementPosition(string LastRowKey);

    internal static RouteGroupBuilder MapRoutes(RouteGroupBuilder inventory)
    {
        var items = inventory.MapGroup("/items");
        items.MapPost("/{id}/movements", RecordMovement).RequirePermission(Permissions.InventoryWrite).WithIdempotency().WithName("RecordMovement").WithSummary("Records a stock movement (in, out, transfer or adjust) and returns the new quantity.");
        items.MapGet("/{id}/movements", ListItemMovements).RequirePermission(Permissions.InventoryRead).WithName("ListItemMovements").WithSummary("An item's movements.");
        items.MapGet("/{id}/stock", GetStock).RequirePermission(Permissions.InventoryRead).WithName("GetItemStock").WithSummary("An item's stock per location.");

        var movements = inventory.MapGroup("/movements");
        movements.MapGet("/", ListMovements).RequirePermission(Permissions.InventoryRead).WithName("ListMovements").WithSummary("The tenant's movements, by type, item, batch, supplier and date range.");
        movements.MapGet("/{id}", GetMovement).RequirePermission(Permissions.InventoryRead).WithName("GetMovement").WithSummary("One movement.");
        return movements;
    }

    internal static async Task<Results<Created<MovementResult>, ProblemHttpResult>> RecordMovement(
        string id, CreateMovementRequest request, Caller caller, HttpContext http, MovementCommands commands, CancellationToken cancellationToken) =>
        (await commands.RecordAsync(caller, id,
            new MovementInput(request.Type, request.Quantity, request.Reason, request.FromLocationId, request.ToLocationId, request.Batch, request.Supplier, request.Reference),
            cancellationToken))
            .ToResult(recorded => TypedResults.Created($"{Path}/{recorded.Movement.Id}",
                http.Tagged(recorded.Item.ETag, new MovementResult(MovementView.From(recorded.Movement), recorded.Item.Quantity))));

    internal static async Task<Results<Ok<MovementView>, ProblemHttpResult>> GetMovement(
        string id, Caller caller, InventoryStore store, CancellationToken cancellationToken)
    {
        var movement = InventoryStore.IsPlausibleId(id)
            ? await store.For(caller.Tenant).GetAsync<MovementEntity>(MovementEntity.TenantPrefix + id, cancellationToken)
            : null;
        return movement is null ? CommandError.NotFound("movement").ToProblem() : TypedResults.Ok(MovementView.From(movement));
    }

    internal static async Task<Results<Ok<ItemStockView>, ProblemHttpResult>> GetStock(
        string id, Caller caller, ItemCommands items, MovementCommands commands, CancellationToken cancellationToken)
    {
        var item = await items.GetAsync(caller.Tenant, id, cancellationToken);
        if (item is null)
        {
            return CommandError.NotFound("item").ToProblem();
        }

        var rows = await commands.StockOfAsync(caller.Tenant, item.Id, cancellationToken);
        return TypedResults.Ok(new ItemStockView(item.Id, item.Quantity,
            [.. rows.Select(s => new StockView(s.LocationId == StockEntity.Unassigned ? null : s.LocationId, s.Quantity))]));
    }

    internal static async Task<Results<Ok<PagedList<MovementView>>, ProblemHttpResult>> ListItemMovements(
        string id, string? type, string? batch, string? supplier, DateTimeOffset? from, DateTimeOffset? to, string? pageSize, string? continuationToken,
        Caller caller, ItemCommands items, InventoryStore store, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        if (await items.GetAsync(caller.Tenant, id, cancellationToken) is null)
        {
            return CommandError.NotFound("item").ToProblem();
        }

        return await PageAsync(caller.Tenant, MovementEntity.ItemPrefixFor(id), type, batch, supplier, from, to, pageSize, continuationToken, store, tokens, cancellationToken);
    }

    internal static async Task<Results<Ok<PagedList<MovementView>>, ProblemHttpResult>> ListMovements(
        string? type, string? itemId, string? batch, string? supplier, DateTimeOffset? from, DateTimeOffset? to, string? pageSize, string? continuationToken,
        Caller caller, InventoryStore store, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        if (itemId is not null && !InventoryStore.IsPlausibleId(itemId))
        {
            return new Validation().Add("itemId", "must be an item id").ToProblem();
        }

        // One item's movements are one key range of their own; the tenant's are another.
        var prefix = itemId is null ? MovementEntity.TenantPrefix : MovementEntity.ItemPrefixFor(itemId);
        return await PageAsync(caller.Tenant, prefix, type, batch, supplier, from, to, pageSize, continuationToken, store, tokens, cancellationToken);
    }

    private static async Task<Results<Ok<PagedList<MovementView>>, ProblemHttpResult>> PageAsync(
        TenantId tenant, string prefix, string? type, string? batch, string? supplier, DateTimeOffset? from, DateTimeOffset? to,
        string? pageSize, string? continuationToken, InventoryStore store, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation);
        if (type is not null && !MovementType.All.Contains(type))
        {
            validation.Add("type", "must be in, out, transfer or adjust");
        }

        if (batch?.Length > MovementCommands.MaxTextLength)
        {
            validation.Add("batch", $"must be at most {MovementCommands.MaxTextLength} characters");
        }

        if (supplier?.Length > MovementCommands.MaxTextLength)
        {
            validation.Add("supplier", $"must be at most {MovementCommands.MaxTextLength} characters");
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var query = $"{prefix}\n{type}\n{batch}\n{supplier}\n{from:O}\n{to:O}";
        MovementPosition? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, tenant, query, out after))
        {
            return ContinuationTokens.Invalid();
        }

        // The condition is assembled from placeholders only; every value is an argument the SDK escapes.
        var conditions = new List<string> { "RowKey gt {0}", "RowKey lt {1}" };
        var arguments = new List<object?> { after?.LastRowKey ?? prefix, prefix + char.MaxValue };
        void Add(string condition, object? value)
        {
            conditions.Add(condition.Replace("?", "{" + arguments.Count + "}", StringComparison.Ordinal));
            arguments.Add(value);
        }

        if (type is not null)
        {
            Add("Type eq ?", type);
        }

        if (batch is not null)
        {
            Add("Batch eq ?", batch);
        }

        if (supplier is not null)
        {
            Add("Supplier eq ?", supplier);
        }

        if (from is not null)
        {
            Add("At ge ?", from.Value.ToUniversalTime());
        }

        if (to is not null)
        {
            Add("At lt ?", to.Value.ToUniversalTime());
        }

        var condition = FormattableStringFactory.Create(string.Join(" and ", conditions), [.. arguments]);
        var page = new List<MovementEntity>();
        var more = false;
        await foreach (var movement in store.For(tenant).QueryWhereAsync<MovementEntity>(condition, maxPerPage: size!.Value + 1, cancellationToken))
        {
            if (page.Count == size.Value)
            {
                more = true;
                break;
            }

            page.Add(movement);
        }

        return TypedResults.Ok(new PagedList<MovementView>(
            [.. page.Select(MovementView.From)],
            more ? tokens.Create(tenant, query, new MovementPosition(page[^1].RowKey)) : null));
    }
}
