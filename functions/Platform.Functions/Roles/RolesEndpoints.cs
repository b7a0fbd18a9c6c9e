using System.Security.Claims;
using System.Text.RegularExpressions;
using Azure;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Roles;

/// <summary><c>/api/v1/roles</c> and <c>/api/v1/permissions</c>: the tenant's roles and what they grant.</summary>
public static class RolesEndpoints
{
    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/permissions", () => TypedResults.Ok(new PagedList<PermissionView>(
                [.. Permissions.Descriptions.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new PermissionView(p.Key, p.Value))], null)))
            .RequireAuthorization().WithTags("Roles").WithName("ListPermissions").WithSummary("Every permission a role can grant.");

        var group = app.MapGroup("/api/v1/roles").WithTags("Roles");
        group.MapGet("/", ListRoles).RequirePermission(Permissions.UsersRead).WithName("ListRoles").WithSummary("The tenant's roles, built-in and custom.");
        group.MapPut("/{name}", PutRole).RequirePermission(Permissions.RolesManage).WithName("PutRole").WithSummary("Creates or replaces a custom role.");
        group.MapDelete("/{name}", DeleteRole).RequirePermission(Permissions.RolesManage).WithName("DeleteRole").WithSummary("Deletes a custom role that no user holds.");
        return group;
    }

    public sealed record PermissionView(string Name, string Description);

    public sealed record RoleView(string Name, IReadOnlyList<string> Permissions, bool BuiltIn);

    public sealed record RoleRequest(IReadOnlyList<string>? Permissions);

    internal static async Task<Ok<PagedList<RoleView>>> ListRoles(Caller caller, RoleDirectory roles, CancellationToken cancellationToken)
    {
        var all = await roles.AllAsync(caller.Tenant, cancellationToken);
        return TypedResults.Ok(new PagedList<RoleView>(
            [.. all.OrderBy(r => BuiltInRoles.IsBuiltIn(r.Key) ? 0 : 1).ThenBy(r => r.Key, StringComparer.Ordinal)
                .Select(r => new RoleView(r.Key, [.. r.Value.Order(StringComparer.Ordinal)], BuiltInRoles.IsBuiltIn(r.Key)))],
            null));
    }

    internal static async Task<Results<Ok<RoleView>, Created<RoleView>, ProblemHttpResult>> PutRole(
        string name, RoleRequest request, Caller caller, RoleCommands commands, CancellationToken cancellationToken)
    {
        var saved = await commands.SaveAsync(caller, name, request.Permissions, cancellationToken);
        if (saved.Failed(out var error, out var role))
        {
            return error.ToProblem();
        }

        return role.Created ? TypedResults.Created($"/api/v1/roles/{name}", role.Role) : TypedResults.Ok(role.Role);
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteRole(
        string name, Caller caller, RoleCommands commands, CancellationToken cancellationToken) =>
        (await commands.DeleteAsync(caller, name, cancellationToken)).ToResult(_ => TypedResults.NoContent());
}
