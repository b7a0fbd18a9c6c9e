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

    internal static RouteGroupBuilder MapRoutes(RouteGroupBuilder inventory)
    {
        var group = inventory.MapGroup("/locations");
        group.MapGet("/", ListLocations).RequirePermission(Permissions.InventoryRead).WithName("ListLocations").WithSummary("The tenant's locations, with filter, search, sort and paging.");
        group.MapPost("/", CreateLocation).RequirePermission(Permissions.InventoryWrite).WithIdempotency().WithName("CreateLocation").WithSummary("Creates a location.");
        group.MapGet("/{id}", GetLocation).RequirePermission(Permissions.InventoryRead).WithName("GetLocation").WithSummary("One location.");
        group.MapPatch("/{id}", UpdateLocation).RequirePermission(Permissions.InventoryWrite).WithName("UpdateLocation").WithSummary("Changes a location.");
        group.MapDelete("/{id}", DeleteLocation).RequirePermission(Permissions.InventoryWrite).WithName("DeleteLocation").WithSummary("Deletes a location that holds no stock and no other locations.");
        return group;
    }

    internal static async Task<Results<Created<LocationView>, ProblemHttpResult>> CreateLocation(
        CreateLocationRequest request, Caller caller, HttpContext http, LocationCommands commands, CancellationToken cancellationToken) =>
        (await commands.CreateAsync(caller, new LocationInput(request.Name, request.Code, request.ParentId, request.Description), cancellationToken))
            .ToResult(location => TypedResults.Created($"{Path}/{location.Id}", http.Tagged(location.ETag, LocationView.From(location))));

    internal static async Task<Results<Ok<LocationView>, ProblemHttpResult>> GetLocation(
        string id, Caller caller, HttpContext http, LocationCommands commands, CancellationToken cancellationToken) =>
        await commands.GetAsync(caller.Tenant, id, cancellationToken) is { } location
            ? TypedResults.Ok(http.Tagged(location.ETag, LocationView.From(location)))
            : CommandError.NotFound("location").ToProblem();

    internal static async Task<Results<Ok<LocationView>, ProblemHttpResult>> UpdateLocation(
        string id, JsonElement request, Caller caller, HttpContext http, LocationCommands commands, CancellationToken cancellationToken) =>
        (await commands.UpdateAsync(caller, id, request, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken))
            .ToResult(location => TypedResults.Ok(http.Tagged(location.ETag, LocationView.From(location))));

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteLocation(
        string id, Caller caller, HttpContext http, LocationCommands commands, CancellationToken cancellationToken) =>
        (await commands.DeleteAsync(caller, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken)).ToResult(_ => TypedResults.NoContent());

    internal static async Task<Results<Ok<PagedList<LocationView>>, ProblemHttpResult>> ListLocations(
        string? filter, string? q, string? sort, string? pageSize, string? continuationToken,
        Caller caller, LocationCommands commands, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var rows = (await commands.AllAsync(caller.Tenant, cancellationToken)).Select(l => new ListedLocation(LocationView.From(l)));
        return InMemoryLists.Page(rows, Schema, filter, q, sort, pageSize, continuationToken, "", caller.Tenant, tokens);
    }

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
