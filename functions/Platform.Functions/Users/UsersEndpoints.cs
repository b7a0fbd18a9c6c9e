using System.Security.Claims;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Me;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>Tenant admins manage users: <c>/api/v1/users</c>, the custom-field schema and bulk operations.</summary>
public static partial class UsersEndpoints
{
    public static RouteGroupBuilder MapUsers(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/users").WithTags("Users");
        group.MapGet("/", ListUsers).RequirePermission(Permissions.UsersRead).WithName("ListUsers").WithSummary("The tenant's users, with filter, search, sort and paging.");
        group.MapPost("/", CreateUser).RequirePermission(Permissions.UsersWrite).WithIdempotency().WithName("CreateUser").WithSummary("Creates a user.");
        group.MapGet("/{id}", GetUser).RequirePermission(Permissions.UsersRead).WithName("GetUser").WithSummary("One user of the tenant.");
        group.MapPatch("/{id}", UpdateUser).RequirePermission(Permissions.UsersWrite).WithName("UpdateUser").WithSummary("Changes a user.");
        group.MapDelete("/{id}", DeleteUser).RequirePermission(Permissions.UsersDelete).WithName("DeleteUser").WithSummary("Soft-deletes a user, or with purge=true erases their personal data for good.");
        group.MapPost("/{id}/restore", RestoreUser).RequirePermission(Permissions.UsersDelete).WithName("RestoreUser").WithSummary("Restores a soft-deleted user.");
        group.MapGet("/{id}/export", ExportUser).RequirePermission(Permissions.UsersRead).WithName("ExportUser").WithSummary("Everything stored about a user, as JSON.");
        group.MapPut("/{id}/roles", SetRoles).RequirePermission(Permissions.RolesManage).WithName("SetUserRoles").WithSummary("Replaces a user's roles.");
        group.MapPost("/bulk", Bulk).RequirePermission(Permissions.UsersWrite).WithIdempotency().WithName("BulkUsers").WithSummary("Creates, updates, deletes or restores up to 1000 users; one bad item never fails the others.")
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(8 * 1024 * 1024));

        var schema = app.MapGroup("/api/v1/schema/users").WithTags("Users");
        schema.MapGet("/", GetSchema).RequirePermission(Permissions.UsersRead).WithName("GetUserSchema").WithSummary("The tenant's custom user fields.");
        schema.MapPut("/", PutSchema).RequirePermission(Permissions.TenantManage).WithName("PutUserSchema").WithSummary("Replaces the tenant's custom user fields.");
        return group;
    }

    public sealed record CreateUserRequest(string? Email, string? DisplayName, string? Password, IReadOnlyList<string>? Roles, JsonElement? Fields);

    public sealed record UpdateUserRequest(string? Email, string? DisplayName, IReadOnlyList<string>? Roles, JsonElement? Fields, string? Status);

    public sealed record RolesRequest(IReadOnlyList<string>? Roles);

    internal static async Task<Results<Created<UserView>, ProblemHttpResult>> CreateUser(
        CreateUserRequest request, ClaimsPrincipal principal, HttpContext http, CallerPermissions permissions, UserCommands commands,
        UserProjections projections, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var (user, error) = await commands.CreateAsync(caller.Tenant, await permissions.ForAsync(principal, cancellationToken),
            new UserInput(request.Email, request.DisplayName, request.Password, request.Roles, request.Fields, null), cancellationToken);
        if (user is null)
        {
            return error!.ToProblem();
        }

        projections.Apply(caller.Tenant, user);
        await events.PublishAsync(caller.Tenant, Created(caller, http, user), cancellationToken);
        http.Response.Headers.ETag = ETags.For(user.ETag);
        return TypedResults.Created($"/api/v1/users/{user.Id}", UserView.From(user));
    }

    internal static async Task<Results<Ok<UserView>, ProblemHttpResult>> GetUser(
        string id, ClaimsPrincipal principal, HttpContext http, UserDirectory users, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var user = await users.GetAsync(caller.Tenant, id, cancellationToken);
        if (user is null)
        {
            return CommandError.NotFound.ToProblem();
        }

        http.Response.Headers.ETag = ETags.For(user.ETag);
        return TypedResults.Ok(UserView.From(user));
    }

    internal static async Task<Results<Ok<UserView>, ProblemHttpResult>> UpdateUser(
        string id, UpdateUserRequest request, ClaimsPrincipal principal, HttpContext http, CallerPermissions permissions, UserCommands commands,
        UserProjections projections, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var (user, error, changes) = await commands.UpdateAsync(caller.Tenant, await permissions.ForAsync(principal, cancellationToken), id,
            new UserInput(request.Email, request.DisplayName, null, request.Roles, request.Fields, request.Status),
            etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken);
        if (user is null)
        {
            return error!.ToProblem();
        }

        if (changes is { Count: > 0 })
        {
            projections.Apply(caller.Tenant, user);
            await events.PublishAsync(caller.Tenant, new PlatformEvent("user.updated", Actor(caller, http), "user", user.Id, changes), cancellationToken);
        }

        http.Response.Headers.ETag = ETags.For(user.ETag);
        return TypedResults.Ok(UserView.From(user));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteUser(
        string id, bool? purge, ClaimsPrincipal principal, HttpContext http, CallerPermissions permissions, UserCommands commands, UserPurge purger,
        UserProjections projections, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var granted = await permissions.ForAsync(principal, cancellationToken);
        if (purge == true)
        {
            if (await purger.PurgeAsync(caller.Tenant, granted, id, commands, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken) is { } refused)
            {
                return refused.ToProblem();
            }

            projections.Remove(caller.Tenant, id);
            await events.PublishAsync(caller.Tenant, new PlatformEvent("user.purged", Actor(caller, http), "user", id), cancellationToken);
            return TypedResults.NoContent();
        }

        var (user, error) = await commands.DeleteAsync(caller.Tenant, granted, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken);
        if (user is null)
        {
            return error!.ToProblem();
        }

        projections.Apply(caller.Tenant, user);
        await events.PublishAsync(caller.Tenant, new PlatformEvent("user.deleted", Actor(caller, http), "user", id), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Ok<UserView>, ProblemHttpResult>> RestoreUser(
        string id, ClaimsPrincipal principal, HttpContext http, CallerPermissions permissions, UserCommands commands, UserProjections projections,
        EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var (user, error) = await commands.RestoreAsync(caller.Tenant, await permissions.ForAsync(principal, cancellationToken), id, cancellationToken);
        if (user is null)
        {
            return error!.ToProblem();
        }

        projections.Apply(caller.Tenant, user);
        await events.PublishAsync(caller.Tenant, new PlatformEvent("user.restored", Actor(caller, http), "user", id), cancellationToken);
        return TypedResults.Ok(UserView.From(user));
    }

    internal static Task<Results<Ok<UserView>, ProblemHttpResult>> SetRoles(
        string id, RolesRequest request, ClaimsPrincipal principal, HttpContext http, CallerPermissions permissions, UserCommands commands,
        UserProjections projections, EventPublisher events, CancellationToken cancellationToken) =>
        request.Roles is null
            ? Task.FromResult<Results<Ok<UserView>, ProblemHttpResult>>(new Validation().Add("roles", "is required (an empty list removes every role)").ToProblem())
            : UpdateUser(id, new UpdateUserRequest(null, null, request.Roles, null, null), principal, http, permissions, commands, projections, events, cancellationToken);

    public sealed record UserExport(UserView User, IReadOnlyList<string> Permissions, IReadOnlyList<AuthEndpoints.SessionView> Sessions, IReadOnlyList<AuditEntryView> AuditEntries);

    /// <summary>Everything stored about a user, as one document (data portability).</summary>
    internal static async Task<Results<Ok<UserExport>, ProblemHttpResult>> ExportUser(
        string id, ClaimsPrincipal principal, UserDirectory users, RoleDirectory roles, Sessions sessions, AuditTrail audit,
        CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var user = await users.GetAsync(caller.Tenant, id, cancellationToken);
        if (user is null)
        {
            return CommandError.NotFound.ToProblem();
        }

        var granted = await roles.PermissionsOfAsync(caller.Tenant, user.RoleList, cancellationToken);
        var userSessions = (await sessions.ListAsync(caller.Tenant, user.Id, cancellationToken))
            .Select(s => new AuthEndpoints.SessionView(s.Id, s.CreatedAt, s.LastSeenAt, s.UserAgent, s.Ip, false)).ToList();
        var entries = new List<AuditEntryView>();
        await foreach (var entry in audit.Entries(caller.Tenant).QueryWhereAsync<AuditEntry>($"TargetId eq {user.Id} or ActorId eq {user.Id}", cancellationToken: cancellationToken))
        {
            entries.Add(AuditEntryView.From(entry));
        }

        return TypedResults.Ok(new UserExport(UserView.From(user), [.. granted.Order(StringComparer.Ordinal)], userSessions, entries));
    }

    internal static async Task<Ok<SchemaDocument>> GetSchema(ClaimsPrincipal principal, UserSchemas schemas, CancellationToken cancellationToken) =>
        TypedResults.Ok(await schemas.GetAsync(Caller.From(principal)!.Tenant, cancellationToken));

    internal static async Task<Results<Ok<SchemaDocument>, ProblemHttpResult>> PutSchema(
        SchemaDocument request, ClaimsPrincipal principal, HttpContext http, UserSchemas schemas, EventPublisher events, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var validation = UserSchemas.Check(request);
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        await schemas.SaveAsync(caller.Tenant, request, cancellationToken);
        await events.PublishAsync(caller.Tenant, new PlatformEvent("schema.users.updated", Actor(caller, http), "schema", "users",
            new Dictionary<string, object?> { ["fields"] = request.Fields.Select(f => f.Name).ToList() }), cancellationToken);
        return TypedResults.Ok(request);
    }

    internal static Events.Actor Actor(Caller caller, HttpContext http) => Events.Actor.User(caller.UserId, AuthEndpoints.ClientIp(http));

    internal static PlatformEvent Created(Caller caller, HttpContext http, UserEntity user) =>
        new("user.created", Actor(caller, http), "user", user.Id, new Dictionary<string, object?> { ["email"] = user.Email, ["roles"] = user.RoleList });
}

/// <summary>An audit entry as the API shows it.</summary>
public sealed record AuditEntryView(string Id, DateTimeOffset At, string? ActorId, string ActorType, string Action, string? TargetType, string? TargetId, string? Ip, JsonElement? Changes)
{
    public static AuditEntryView From(AuditEntry entry) => new(entry.RowKey, entry.At, entry.ActorId, entry.ActorType, entry.Action, entry.TargetType, entry.TargetId, entry.Ip,
        entry.Changes is null ? null : JsonSerializer.Deserialize<JsonElement>(entry.Changes));
}

/// <summary>
/// Erases a user's personal data for good: the user row becomes a tombstone holding only the id and dates, the
/// email index row, avatar, sessions and keys go, and so do the field values recorded in audit entries about them. The audit entries themselves stay, with ids only - the
/// anonymised trace of what happened.
/// </summary>
public sealed class UserPurge(UserDirectory users, StorageAccount storage, AuditTrail audit, Sessions sessions)
{
    /// <summary>Null when the user is gone for good; otherwise why not (not found, stale ETag, last admin, outranked).</summary>
    public async Task<CommandError?> PurgeAsync(
        TenantId tenant, IReadOnlySet<string> callerPermissions, string id, UserCommands commands, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(tenant, id, cancellationToken);
        if (user is null)
        {
            return CommandError.NotFound;
        }

        if (!ifMatch(user.ETag))
        {
            return CommandError.Stale;
        }

        if (user.Status != UserStatus.Deleted)
        {
            // Deleting first runs every rule and side effect of a delete (last admin, sessions, keys).
            var (_, error) = await commands.DeleteAsync(tenant, callerPermissions, id, null, cancellationToken);
            if (error is not null)
            {
                return error;
            }
        }

        await sessions.DeleteAllAsync(tenant, id, cancellationToken);

        await storage.Container(MeEndpoints.AvatarContainer).GetBlobClient($"{tenant.Value}/{id}").DeleteIfExistsAsync(cancellationToken: cancellationToken);
        var tombstone = new UserEntity { RowKey = UserEntity.KeyFor(id), Status = UserStatus.Purged, DeletedAt = user.DeletedAt, CreatedAt = user.CreatedAt, UpdatedAt = user.UpdatedAt };
        await users.Users(tenant).SubmitTransactionAsync(
            [
                new TableTransactionAction(TableTransactionActionType.UpsertReplace, tombstone),
                new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(tenant.Value, EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(user.Email)!)), ETag.All),
            ],
            cancellationToken);

        var entries = audit.Entries(tenant);
        await foreach (var entry in entries.QueryWhereAsync<AuditEntry>($"TargetId eq {id} or ActorId eq {id}", cancellationToken: cancellationToken))
        {
            if (entry.Changes is not null || entry.Ip is not null)
            {
                entry.Changes = null;
                entry.Ip = null;
                await entries.UpdateAsync(entry, ETag.All, cancellationToken);
            }
        }

        return null;
    }
}
