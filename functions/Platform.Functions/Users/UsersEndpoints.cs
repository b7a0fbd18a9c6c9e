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
    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
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
        CreateUserRequest request, Caller caller, HttpContext http, UserCommands commands, CancellationToken cancellationToken) =>
        (await commands.CreateAsync(caller, new UserInput(request.Email, request.DisplayName, request.Password, request.Roles, request.Fields, null), cancellationToken))
            .ToResult(user => TypedResults.Created($"/api/v1/users/{user.Id}", http.Tagged(user.ETag, UserView.From(user))));

    internal static async Task<Results<Ok<UserView>, ProblemHttpResult>> GetUser(
        string id, Caller caller, HttpContext http, UserDirectory users, CancellationToken cancellationToken) =>
        await users.GetAsync(caller.Tenant, id, cancellationToken) is { } user
            ? TypedResults.Ok(http.Tagged(user.ETag, UserView.From(user)))
            : UserCommands.UserNotFound.ToProblem();

    internal static async Task<Results<Ok<UserView>, ProblemHttpResult>> UpdateUser(
        string id, UpdateUserRequest request, Caller caller, HttpContext http, UserCommands commands, CancellationToken cancellationToken) =>
        (await commands.UpdateAsync(caller, id, new UserInput(request.Email, request.DisplayName, null, request.Roles, request.Fields, request.Status),
            etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken))
            .ToResult(user => TypedResults.Ok(http.Tagged(user.ETag, UserView.From(user))));

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteUser(
        string id, bool? purge, Caller caller, HttpContext http, UserCommands commands, CancellationToken cancellationToken)
    {
        var refused = purge == true
            ? (await commands.PurgeAsync(caller, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken)).Error
            : (await commands.DeleteAsync(caller, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken)).Error;
        return refused is null ? TypedResults.NoContent() : refused.ToProblem();
    }

    internal static async Task<Results<Ok<UserView>, ProblemHttpResult>> RestoreUser(
        string id, Caller caller, UserCommands commands, CancellationToken cancellationToken) =>
        (await commands.RestoreAsync(caller, id, cancellationToken)).ToResult(user => TypedResults.Ok(UserView.From(user)));

    internal static Task<Results<Ok<UserView>, ProblemHttpResult>> SetRoles(
        string id, RolesRequest request, Caller caller, HttpContext http, UserCommands commands, CancellationToken cancellationToken) =>
        request.Roles is null
            ? Task.FromResult<Results<Ok<UserView>, ProblemHttpResult>>(new Validation().Add("roles", "is required (an empty list removes every role)").ToProblem())
            : UpdateUser(id, new UpdateUserRequest(null, null, request.Roles, null, null), caller, http, commands, cancellationToken);

    public sealed record UserExport(UserView User, IReadOnlyList<string> Permissions, IReadOnlyList<AuthEndpoints.SessionView> Sessions, IReadOnlyList<AuditEntryView> AuditEntries);

    /// <summary>Everything stored about a user, as one document (data portability).</summary>
    internal static async Task<Results<Ok<UserExport>, ProblemHttpResult>> ExportUser(
        string id, Caller caller, UserDirectory users, RoleDirectory roles, Sessions sessions, AuditTrail audit, EventRelay relay,
        CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(caller.Tenant, id, cancellationToken);
        if (user is null)
        {
            return UserCommands.UserNotFound.ToProblem();
        }

        var granted = await roles.PermissionsOfAsync(caller.Tenant, user.RoleList, cancellationToken);
        var userSessions = (await sessions.ListAsync(caller.Tenant, user.Id, cancellationToken))
            .Select(s => new AuthEndpoints.SessionView(s.Id, s.CreatedAt, s.LastSeenAt, s.UserAgent, s.Ip, false)).ToList();
        var entries = new List<AuditEntryView>();
        await relay.CatchUpAsync(caller.Tenant, cancellationToken);
        await foreach (var entry in audit.AboutAsync(caller.Tenant, user.Id, cancellationToken))
        {
            entries.Add(AuditEntryView.From(entry));
        }

        return TypedResults.Ok(new UserExport(UserView.From(user), [.. granted.Order(StringComparer.Ordinal)], userSessions, entries));
    }

    internal static async Task<Ok<SchemaDocument>> GetSchema(Caller caller, UserSchemas schemas, CancellationToken cancellationToken) =>
        TypedResults.Ok(await schemas.GetAsync(caller.Tenant, cancellationToken));

    internal static async Task<Results<Ok<SchemaDocument>, ProblemHttpResult>> PutSchema(
        SchemaDocument request, Caller caller, UserCommands commands, CancellationToken cancellationToken) =>
        (await commands.SaveSchemaAsync(caller, request, cancellationToken)).ToResult(TypedResults.Ok);

}

/// <summary>An audit entry as the API shows it.</summary>
/// <param name="OnBehalfOf">For an API key's entry, the user who holds the key.</param>
public sealed record AuditEntryView(
    string Id, DateTimeOffset At, string? ActorId, string ActorType, string Action, string? TargetType, string? TargetId, string? Ip, JsonElement? Changes,
    string? OnBehalfOf)
{
    public static AuditEntryView From(AuditEntry entry) => new(entry.RowKey, entry.At, entry.ActorId, entry.ActorType, entry.Action, entry.TargetType, entry.TargetId, entry.Ip,
        entry.Changes is null ? null : JsonSerializer.Deserialize<JsonElement>(entry.Changes), entry.OnBehalfOf);
}

/// <summary>
/// Erases a user's personal data for good: the user row becomes a tombstone holding only the id and dates, the
/// email index row, avatar, sessions and keys go, and so do the field values recorded in audit entries about them.
/// The audit entries themselves stay, with ids only - the anonymised trace of what happened.
/// </summary>
public sealed class UserPurge(UserDirectory users, AuditTrail audit, EventPublisher events, EventRelay relay, Sessions sessions, IEnumerable<IUserPurgeHook> purgeHooks)
{
    /// <summary>Erases a user who is already deleted (<see cref="UserCommands.PurgeAsync"/> runs the rules first).</summary>
    /// <param name="purged">The event of the purge, committed with the tombstone.</param>
    public async Task EraseAsync(TenantId tenant, UserEntity user, PlatformEvent purged, CancellationToken cancellationToken)
    {
        await sessions.DeleteAllAsync(tenant, user.Id, cancellationToken);
        foreach (var hook in purgeHooks)
        {
            await hook.OnUserPurgedAsync(tenant, user.Id, cancellationToken);
        }

        var tombstone = new UserEntity { RowKey = UserEntity.KeyFor(user.Id), Status = UserStatus.Purged, DeletedAt = user.DeletedAt, CreatedAt = user.CreatedAt, UpdatedAt = user.UpdatedAt };
        await events.CommitAsync(users.Users(tenant),
            [
                new TableTransactionAction(TableTransactionActionType.UpsertReplace, tombstone),
                new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(tenant.Value, EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(user.Email)!)), ETag.All),
            ],
            [purged],
            cancellationToken);

        // Events about the user still waiting in an outbox would reach the trail after the scrub, addresses and all.
        await relay.CatchUpAsync(tenant, cancellationToken);
        await audit.ScrubAsync(tenant, user.Id, cancellationToken);
    }
}
