using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Query;
using Platform.Functions.Roles;

namespace Platform.Functions.Inventory;

/// <summary><c>/api/v1/inventory/locations</c>: the tree of places stock is kept.</summary>
public static class LocationsEndpoints
{
    public const string Path = "/api/v1/inventory/locations";

    public sealed record CreateLocationRequest(string? Name, string? Code, string? ParentId, string? Description);

    private static readonly FilterSchema Schema = new(new Dictionary<string, FieldType>(StringComparer.Ordinal)
    {
        ["id"] = FieldType.String,
        ["name"] = FieldType.String,
        ["code"] = FieldType.String,
        ["parentId"] = FieldType.String,
        ["createdAt"] = FieldType.Timestamp,
        ["updatedAt"] = FieldType.Timestamp,
    });

    public static RouteGroupBuilder MapLocations(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Inventory");
        group.MapGet("/", ListLocations).RequirePermission(Permissions.InventoryRead).WithName("ListLocations").WithSummary("The tenant's locations, with filter, search, sort and paging.");
        group.MapPost("/", CreateLocation).RequirePermission(Permissions.InventoryWrite).WithIdempotency().WithName("CreateLocation").WithSummary("Creates a location.");
        group.MapGet("/{id}", GetLocation).RequirePermission(Permissions.InventoryRead).WithName("GetLocation").WithSummary("One location.");
        group.MapPatch("/{id}", UpdateLocation).RequirePermission(Permissions.InventoryWrite).WithName("UpdateLocation").WithSummary("Changes a location.");
        group.MapDelete("/{id}", DeleteLocation).RequirePermission(Permissions.InventoryWrite).WithName("DeleteLocation").WithSummary("Deletes a location that holds no stock and no other locations.");
        return group;
    }

    internal static async Task<Results<Created<LocationView>, ProblemHttpResult>> CreateLocation(
        CreateLocationRequest request, ClaimsPrincipal principal, HttpContext http, LocationCommands commands, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var (location, error) = await commands.CreateAsync(caller.Tenant, new LocationInput(request.Name, request.Code, request.ParentId, request.Description), cancellationToken);
        if (location is null)
        {
            return error!.ToProblem();
        }

        await events.PublishAsync(caller.Tenant, new PlatformEvent("inventory.location.created", Actor(caller, http), "location", location.Id,
            new Dictionary<string, object?> { ["name"] = location.Name, ["parentId"] = location.ParentId }), cancellationToken);
        http.Response.Headers.ETag = ETags.For(location.ETag);
        return TypedResults.Created($"{Path}/{location.Id}", LocationView.From(location));
    }

    internal static async Task<Results<Ok<LocationView>, ProblemHttpResult>> GetLocation(
        string id, ClaimsPrincipal principal, HttpContext http, LocationCommands commands, CancellationToken cancellationToken)
    {
        var location = await commands.GetAsync(Caller.From(principal)!.Tenant, id, cancellationToken);
        if (location is null)
        {
            return InventoryError.NotFound("location").ToProblem();
        }

        http.Response.Headers.ETag = ETags.For(location.ETag);
        return TypedResults.Ok(LocationView.From(location));
    }

    internal static async Task<Results<Ok<LocationView>, ProblemHttpResult>> UpdateLocation(
        string id, JsonElement request, ClaimsPrincipal principal, HttpContext http, LocationCommands commands, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var validation = new Validation();
        if (request.ValueKind != JsonValueKind.Object)
        {
            return validation.Add("body", "must be a JSON object").ToProblem();
        }

        var (location, error, changes) = await commands.UpdateAsync(caller.Tenant, id, new PatchBody(request, validation),
            etag => ETags.IfMatchAllows(http.Request, etag), validation, cancellationToken);
        if (location is null)
        {
            return error!.ToProblem();
        }

        if (changes is { Count: > 0 })
        {
            await events.PublishAsync(caller.Tenant, new PlatformEvent("inventory.location.updated", Actor(caller, http), "location", location.Id, changes), cancellationToken);
        }

        http.Response.Headers.ETag = ETags.For(location.ETag);
        return TypedResults.Ok(LocationView.From(location));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteLocation(
        string id, ClaimsPrincipal principal, HttpContext http, LocationCommands commands, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var error = await commands.DeleteAsync(caller.Tenant, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken);
        if (error is not null)
        {
            return error.ToProblem();
        }

        await events.PublishAsync(caller.Tenant, new PlatformEvent("inventory.location.deleted", Actor(caller, http), "location", id), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Ok<PagedList<LocationView>>, ProblemHttpResult>> ListLocations(
        string? filter, string? q, string? sort, string? pageSize, string? continuationToken,
        ClaimsPrincipal principal, LocationCommands commands, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var rows = (await commands.AllAsync(caller.Tenant, cancellationToken)).Select(l => new ListedLocation(LocationView.From(l)));
        return InMemoryLists.Page(rows, Schema, filter, q, sort, pageSize, continuationToken, "", caller.Tenant, tokens);
    }

    internal static Events.Actor Actor(Caller caller, HttpContext http) => Events.Actor.User(caller.UserId, AuthEndpoints.ClientIp(http));

    private sealed record ListedLocation(LocationView View) : IListed<LocationView>
    {
        public string Id => View.Id;

        public string SearchText { get; } = string.Join('\n', View.Name, View.Code, View.Description).ToLowerInvariant();

        public object? ValueOf(string field) => field switch
        {
            "id" => View.Id,
            "name" => View.Name,
            "code" => View.Code,
            "parentId" => View.ParentId,
            "createdAt" => View.CreatedAt,
            "updatedAt" => View.UpdatedAt,
            _ => null,
        };
    }
}
