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
public static partial class RolesEndpoints
{
    [GeneratedRegex("^[a-z][a-z0-9-]{1,39}$")]
    private static partial Regex RoleName();

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
        string name, RoleRequest request, Caller caller, HttpContext http, RoleDirectory roles, CallerPermissions permissions,
        EventPublisher events, TimeProvider time, CancellationToken cancellationToken)
    {
        if (BuiltInRoles.IsBuiltIn(name))
        {
            return BuiltIn(name);
        }

        var validation = new Validation();
        if (!RoleName().IsMatch(name))
        {
            validation.Add("name", "must be 2-40 of a-z, 0-9 and -, starting with a letter");
        }

        var requested = request.Permissions ?? [];
        var unknown = requested.Where(p => p is null || !Permissions.All.Contains(p)).ToList();
        if (request.Permissions is null || unknown.Count > 0)
        {
            validation.Add("permissions", unknown.Count > 0 ? $"unknown permission(s): {string.Join(", ", unknown.Take(5))}" : "is required");
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var held = await permissions.ForAsync(caller, cancellationToken);
        var notHeld = requested.Where(p => !held.Contains(p)).Distinct().Order(StringComparer.Ordinal).ToList();
        if (notHeld.Count > 0)
        {
            return Problems.Create(403, "permission_not_held", "Forbidden", $"You cannot grant permissions you do not hold: {string.Join(", ", notHeld)}.");
        }

        var rows = roles.Rows(caller.Tenant);
        var existing = await rows.GetAsync<RoleEntity>(name, cancellationToken);
        var now = time.GetUtcNow();
        if (existing is null && (await roles.AllAsync(caller.Tenant, cancellationToken)).Count - BuiltInRoles.Grants.Count >= RoleDirectory.MaxCustomRoles)
        {
            return Problems.Create(409, "role_limit_reached", "Too many roles", $"A tenant has at most {RoleDirectory.MaxCustomRoles} custom roles.");
        }

        var role = existing ?? new RoleEntity { RowKey = name, CreatedAt = now };
        role.PermissionList = [.. requested.Distinct().Order(StringComparer.Ordinal)];
        role.UpdatedAt = now;
        try
        {
            if (existing is null)
            {
                await rows.AddAsync(role, cancellationToken);
            }
            else
            {
                await rows.UpdateAsync(role, role.ETag, cancellationToken);
            }
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 409 or 412)
        {
            // 404: deleted between the read and the replace.
            return Problems.Create(412, "precondition_failed", "Precondition failed", "The role changed meanwhile; try again.");
        }

        roles.Forget(caller.Tenant);
        await events.PublishAsync(caller.Tenant, new PlatformEvent(existing is null ? "role.created" : "role.updated",
            caller.Actor, "role", name, new Dictionary<string, object?> { ["permissions"] = role.PermissionList }), cancellationToken);
        var view = new RoleView(name, role.PermissionList, false);
        return existing is null ? TypedResults.Created($"/api/v1/roles/{name}", view) : TypedResults.Ok(view);
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteRole(
        string name, Caller caller, HttpContext http, RoleDirectory roles, UserProjections users, EventPublisher events,
        CancellationToken cancellationToken)
    {
        if (BuiltInRoles.IsBuiltIn(name))
        {
            return BuiltIn(name);
        }

        var rows = roles.Rows(caller.Tenant);
        if (!RoleName().IsMatch(name) || await rows.GetAsync<RoleEntity>(name, cancellationToken) is null)
        {
            return Problems.NotFound("This tenant has no role of this name.");
        }

        // Soft-deleted users count: a restore gives them their roles back, so deleting the role under them would let a
        // later role of the same name (perhaps wider) reach them. Purged users are gone from the projection.
        var holders = (await users.RowsAsync(caller.Tenant, cancellationToken)).Count(u => u.View.Roles.Contains(name));
        if (holders > 0)
        {
            return Problems.Create(409, "role_in_use", "Role in use",
                $"{holders} user(s), deleted ones included, hold this role; take it from them (or purge deleted ones) first.");
        }

        await rows.DeleteAsync(name, cancellationToken: cancellationToken);
        roles.Forget(caller.Tenant);
        await events.PublishAsync(caller.Tenant, new PlatformEvent("role.deleted", caller.Actor, "role", name), cancellationToken);
        return TypedResults.NoContent();
    }

    private static ProblemHttpResult BuiltIn(string name) =>
        Problems.Create(409, "built_in_role", "Built-in role", $"'{name}' is a built-in role; it cannot be changed or deleted.");
}
