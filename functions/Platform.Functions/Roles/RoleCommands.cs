using System.Text.RegularExpressions;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Users;

namespace Platform.Functions.Roles;

/// <summary>A role as saved, and whether the save created it.</summary>
public sealed record SavedRole(RolesEndpoints.RoleView Role, bool Created);

/// <summary>
/// Changes to custom roles: nobody defines a role granting more than they hold, built-in roles never change, and a
/// role someone holds (deleted users included, since a restore gives roles back) cannot be deleted.
/// </summary>
public sealed partial class RoleCommands(RoleDirectory roles, CallerPermissions permissions, UserProjections users, EventPublisher events, TimeProvider time)
{
    [GeneratedRegex("^[a-z][a-z0-9-]{1,39}$")]
    private static partial Regex RoleName();

    public async Task<Outcome<SavedRole>> SaveAsync(Caller caller, string name, IReadOnlyList<string>? requested, CancellationToken cancellationToken)
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

        var unknown = (requested ?? []).Where(p => p is null || !Permissions.All.Contains(p)).ToList();
        if (requested is null || unknown.Count > 0)
        {
            validation.Add("permissions", unknown.Count > 0 ? $"unknown permission(s): {string.Join(", ", unknown.Take(5))}" : "is required");
        }

        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        var held = await permissions.ForAsync(caller, cancellationToken);
        var notHeld = requested!.Where(p => !held.Contains(p)).Distinct().Order(StringComparer.Ordinal).ToList();
        if (notHeld.Count > 0)
        {
            return new CommandError(403, "permission_not_held", $"You cannot grant permissions you do not hold: {string.Join(", ", notHeld)}.");
        }

        var rows = roles.Rows(caller.Tenant);
        var existing = await rows.GetAsync<RoleEntity>(name, cancellationToken);
        var now = time.GetUtcNow();
        if (existing is null && (await roles.AllAsync(caller.Tenant, cancellationToken)).Count - BuiltInRoles.Grants.Count >= RoleDirectory.MaxCustomRoles)
        {
            return CommandError.Conflict("role_limit_reached", $"A tenant has at most {RoleDirectory.MaxCustomRoles} custom roles.");
        }

        var role = existing ?? new RoleEntity { RowKey = name, CreatedAt = now };
        role.PermissionList = [.. requested!.Distinct().Order(StringComparer.Ordinal)];
        role.UpdatedAt = now;
        try
        {
            // The event commits with the role row.
            var write = existing is null
                ? new TableTransactionAction(TableTransactionActionType.Add, role)
                : new TableTransactionAction(TableTransactionActionType.UpdateReplace, role, role.ETag);
            await events.CommitAsync(rows, write,
                [new PlatformEvent(existing is null ? "role.created" : "role.updated", caller.Actor, "role", name,
                    new Dictionary<string, object?> { ["permissions"] = role.PermissionList })],
                cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 409 or 412)
        {
            // 404: deleted between the read and the replace.
            return new CommandError(412, "precondition_failed", "The role changed meanwhile; try again.");
        }

        roles.Forget(caller.Tenant);
        return new SavedRole(new RolesEndpoints.RoleView(name, role.PermissionList, false), existing is null);
    }

    public async Task<Outcome<string>> DeleteAsync(Caller caller, string name, CancellationToken cancellationToken)
    {
        if (BuiltInRoles.IsBuiltIn(name))
        {
            return BuiltIn(name);
        }

        var rows = roles.Rows(caller.Tenant);
        if (!RoleName().IsMatch(name) || await rows.GetAsync<RoleEntity>(name, cancellationToken) is null)
        {
            return new CommandError(404, "not_found", "This tenant has no role of this name.");
        }

        // Soft-deleted users count: a restore gives them their roles back, so deleting the role under them would let a
        // later role of the same name (perhaps wider) reach them. Purged users are gone from the projection.
        var holders = (await users.RowsAsync(caller.Tenant, cancellationToken)).Count(u => u.View.Roles.Contains(name));
        if (holders > 0)
        {
            return CommandError.Conflict("role_in_use",
                $"{holders} user(s), deleted ones included, hold this role; take it from them (or purge deleted ones) first.");
        }

        try
        {
            await events.CommitAsync(rows, new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity { RowKey = name }, ETag.All),
                [new PlatformEvent("role.deleted", caller.Actor, "role", name)], cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            // Deleted by another request meanwhile.
            return new CommandError(404, "not_found", "This tenant has no role of this name.");
        }

        roles.Forget(caller.Tenant);
        return name;
    }

    private static CommandError BuiltIn(string name) =>
        CommandError.Conflict("built_in_role", $"'{name}' is a built-in role; it cannot be changed or deleted.");
}
