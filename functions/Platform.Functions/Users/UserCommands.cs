using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>What a create or update may set. Anything else in a body (tenantId, passwordHash ...) is ignored.</summary>
public sealed record UserInput(string? Email, string? DisplayName, string? Password, IReadOnlyList<string>? Roles, JsonElement? Fields, string? Status);

/// <summary>
/// Every change to users, shared by the single-user routes and the bulk route so both enforce the same rules:
/// the custom-field schema, unique email (index row in the same transaction), no granting of permissions the
/// caller does not hold, and never leaving a tenant without an active admin. A command does the whole change: the
/// write, this instance's list projection and the event it causes; handlers only translate HTTP.
/// </summary>
public sealed partial class UserCommands(
    UserDirectory users,
    UserSchemas schemas,
    RoleDirectory roles,
    CallerPermissions permissions,
    UserProjections projections,
    EventPublisher events,
    PasswordHasher hasher,
    PasswordPolicy policy,
    Sessions sessions,
    SessionGuard guard,
    UserPurge purge,
    UserTokens userTokens,
    IEnumerable<IUserDeletionHook> deletionHooks,
    TimeProvider time)
{
    public const int MaxRoles = 20;

    /// <summary>Checks a create and builds the rows to write; the caller writes them (alone or in a batch).</summary>
    /// <param name="lane">Where the password is hashed: <see cref="HashingLane.Bulk"/> for the bulk route, so its many
    /// hashes can never take every slot from sign-ins.</param>
    /// <param name="id">The new user's id when the writer needs one it can make again (an import, see
    /// <see cref="Storage.Ids.Derived"/>); a fresh id otherwise.</param>
    /// <param name="checkOnly">Validates only: the password is not hashed (nothing will be written).</param>
    public async Task<Outcome<UserEntity>> PrepareCreateAsync(
        TenantId tenant, IReadOnlySet<string> callerPermissions, UserInput input, CancellationToken cancellationToken,
        HashingLane lane = HashingLane.Interactive, string? id = null, bool checkOnly = false)
    {
        var validation = new Validation();
        var email = UserDirectory.NormalizeEmail(input.Email);
        if (email is null)
        {
            validation.Add("email", "must be a valid email address");
        }

        var displayName = validation.Text("displayName", input.DisplayName, UserDirectory.MaxDisplayNameLength);
        if (input.Password is not null)
        {
            foreach (var problem in policy.Check(input.Password))
            {
                validation.Add("password", problem);
            }
        }

        // The HTTP create takes no status (a user starts active); an import may create a user locked, which is what a
        // create followed by a PATCH of the status would do, under the same rule.
        if (input.Status is not null && input.Status is not (UserStatus.Active or UserStatus.Locked))
        {
            validation.Add("status", SettableStatus);
        }

        var fields = UserSchemas.Apply(await schemas.GetAsync(tenant, cancellationToken), "{}", input.Fields, validation);
        var requestedRoles = input.Roles ?? [BuiltInRoles.User];
        if (await CheckRolesAsync(tenant, callerPermissions, requestedRoles, validation, cancellationToken) is { } refused)
        {
            return refused;
        }

        // Checked after the grant check, so granting more than one holds still answers permission_not_held.
        // As on update: naming roles is assigning them, which needs roles.manage; without it a users.write caller
        // could mint accounts holding any role within their own permissions (a second manager, say). Leaving roles
        // out still gives the default role.
        if (input.Roles is not null && !callerPermissions.Contains(Permissions.RolesManage))
        {
            return CommandError.Forbidden("Assigning roles needs the roles.manage permission; leave roles out to give the default role.");
        }

        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        var passwordHash = input.Password is null || checkOnly ? null : await hasher.HashAsync(input.Password, lane, cancellationToken);
        var now = time.GetUtcNow();
        return new UserEntity
        {
            RowKey = UserEntity.KeyFor(id ?? Ids.New(time)),
            Status = input.Status ?? UserStatus.Active,
            Email = input.Email!.Trim(),
            DisplayName = displayName,
            PasswordHash = passwordHash,
            RoleList = [.. requestedRoles.Distinct(StringComparer.Ordinal)],
            Fields = fields!,
            CreatedAt = now,
            UpdatedAt = now,
        };
    }

    public async Task<Outcome<UserEntity>> CreateAsync(Caller caller, UserInput input, CancellationToken cancellationToken)
    {
        var prepared = await PrepareCreateAsync(caller.Tenant, await permissions.ForAsync(caller, cancellationToken), input, cancellationToken);
        if (prepared.Failed(out var error, out var user))
        {
            return error;
        }

        var created = await events.CommitWithAsync(users.Users(caller.Tenant), [Created(caller, user)],
            (outbox, token) => users.TryCreateAsync(caller.Tenant, user, outbox, token), cancellationToken);
        switch (created)
        {
            case UserDirectory.CreateResult.EmailTaken:
                return EmailTaken(user.Email);
            case UserDirectory.CreateResult.LimitReached:
                return UserLimitReached(users.MaxUsersPerTenant);
        }

        projections.Apply(caller.Tenant, user);
        return user;
    }

    /// <summary>The event of a created user (the bulk route writes creates in its own transactions).</summary>
    public static PlatformEvent Created(Caller caller, UserEntity user) =>
        new("user.created", caller.Actor, "user", user.Id, new Dictionary<string, object?> { ["email"] = user.Email, ["roles"] = user.RoleList });

    /// <summary>Changes what <paramref name="input"/> sets; an update that changes nothing writes and publishes nothing.</summary>
    public async Task<Outcome<UserEntity>> UpdateAsync(Caller caller, string id, UserInput input, Func<ETag, bool>? ifMatch, CancellationToken cancellationToken)
    {
        var updated = await UpdateCoreAsync(caller.Tenant, caller.Actor, await permissions.ForAsync(caller, cancellationToken), id, input, ifMatch, cancellationToken);
        if (updated.Failed(out var error, out var change))
        {
            return error;
        }

        if (change.Changes.Count > 0)
        {
            projections.Apply(caller.Tenant, change.User);
        }

        return change.User;
    }

    /// <summary>The one message for a status a write may not set.</summary>
    private const string SettableStatus = "must be active or locked (delete a user with DELETE)";

    private sealed record UserChange(UserEntity User, Dictionary<string, object?> Changes);

    /// <param name="checkOnly">Runs every rule, the last-admin rule included, and writes nothing.</param>
    /// <param name="actor">Who changes the user: the <c>user.updated</c> event commits with the change.</param>
    private async Task<Outcome<UserChange>> UpdateCoreAsync(
        TenantId tenant, Actor actor, IReadOnlySet<string> callerPermissions, string id, UserInput input, Func<ETag, bool>? ifMatch, CancellationToken cancellationToken,
        bool checkOnly = false)
    {
        var user = await users.GetAsync(tenant, id, cancellationToken);
        if (user is null || user.Status == UserStatus.Deleted)
        {
            return UserNotFound;
        }

        if (ifMatch?.Invoke(user.ETag) == false)
        {
            return UserStale;
        }

        if (input.Roles is not null && !callerPermissions.Contains(Permissions.RolesManage))
        {
            return CommandError.Forbidden("Changing roles needs the roles.manage permission.");
        }

        // Profile edits (name, custom fields) need only users.write; what could hand over or shut out the account
        // (email, status, roles) needs the caller to hold everything the user holds.
        if ((input.Email is not null || input.Status is not null || input.Roles is not null) &&
            await OutranksAsync(tenant, callerPermissions, user, cancellationToken) is { } outranked)
        {
            return outranked;
        }

        var wasActiveAdmin = IsActiveAdmin(user);
        var validation = new Validation();
        var changes = new Dictionary<string, object?>();
        if (input.DisplayName is not null)
        {
            var displayName = validation.Text("displayName", input.DisplayName, UserDirectory.MaxDisplayNameLength);
            if (displayName != user.DisplayName)
            {
                changes["displayName"] = displayName;
                user.DisplayName = displayName;
            }
        }

        string? oldEmail = null;
        if (input.Email is not null)
        {
            if (UserDirectory.NormalizeEmail(input.Email) is not { } normalized)
            {
                validation.Add("email", "must be a valid email address");
            }
            else if (normalized != UserDirectory.NormalizeEmail(user.Email))
            {
                oldEmail = user.Email;
                changes["email"] = input.Email.Trim();
                user.Email = input.Email.Trim();
                user.EmailVerified = false;
            }
        }

        if (input.Fields is not null)
        {
            var fields = UserSchemas.Apply(await schemas.GetAsync(tenant, cancellationToken), user.Fields, input.Fields, validation);
            if (fields is not null && fields != user.Fields)
            {
                changes["fields"] = JsonSerializer.Deserialize<JsonElement>(fields);
                user.Fields = fields;
            }
        }

        if (input.Status is not null && input.Status != user.Status)
        {
            if (input.Status is not (UserStatus.Active or UserStatus.Locked))
            {
                validation.Add("status", SettableStatus);
            }
            else
            {
                changes["status"] = input.Status;
                user.Status = input.Status;
            }
        }

        if (input.Roles is not null)
        {
            if (await CheckRolesAsync(tenant, callerPermissions, input.Roles, validation, cancellationToken) is { } refused)
            {
                return refused;
            }

            var newRoles = input.Roles.Distinct(StringComparer.Ordinal).ToList();
            if (!newRoles.Order(StringComparer.Ordinal).SequenceEqual(user.RoleList.Order(StringComparer.Ordinal)))
            {
                changes["roles"] = newRoles;
                user.RoleList = newRoles;
            }
        }

        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        if (changes.Count == 0)
        {
            return new UserChange(user, changes);
        }

        if (checkOnly)
        {
            return wasActiveAdmin && !IsActiveAdmin(user) && (await OtherActiveAdminsAsync(tenant, user.Id, cancellationToken)).Others == 0
                ? LastAdmin
                : new UserChange(user, changes);
        }

        user.UpdatedAt = time.GetUtcNow();
        var error = await WriteAsync(tenant, user, oldEmail, removesAdmin: wasActiveAdmin && !IsActiveAdmin(user), countDelta: 0,
            new PlatformEvent("user.updated", actor, "user", user.Id, changes), cancellationToken);
        if (error is null)
        {
            guard.ForgetUser(tenant, user.Id);
            if (oldEmail is not null)
            {
                // Reset and verification links went to the old address: they no longer match (tokens are bound to
                // their address), and deleting them keeps a change back to that address from reviving them.
                await userTokens.RevokeAllAsync(tenant, user.Id, cancellationToken);
            }

            if (user.Status == UserStatus.Locked && changes.ContainsKey("status"))
            {
                await sessions.RevokeAllAsync(tenant, user.Id, null, cancellationToken);
            }
        }

        return error is null ? new UserChange(user, changes) : error;
    }

    /// <summary>Soft-deletes the user: sessions revoked, what other capabilities hold for them released (API keys ...).</summary>
    public async Task<Outcome<UserEntity>> DeleteAsync(Caller caller, string id, Func<ETag, bool>? ifMatch, CancellationToken cancellationToken)
    {
        var deleted = await DeleteCoreAsync(caller.Tenant, caller.Actor, await permissions.ForAsync(caller, cancellationToken), id, ifMatch, cancellationToken);
        if (deleted.Succeeded)
        {
            projections.Apply(caller.Tenant, deleted.Value);
        }

        return deleted;
    }

    /// <param name="actor">Who deletes the user, for the <c>user.deleted</c> event that commits with the delete; null for none (a purge tells its own).</param>
    private async Task<Outcome<UserEntity>> DeleteCoreAsync(
        TenantId tenant, Actor? actor, IReadOnlySet<string> callerPermissions, string id, Func<ETag, bool>? ifMatch, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(tenant, id, cancellationToken);
        if (user is null || user.Status == UserStatus.Deleted)
        {
            return UserNotFound;
        }

        if (ifMatch?.Invoke(user.ETag) == false)
        {
            return UserStale;
        }

        if (await OutranksAsync(tenant, callerPermissions, user, cancellationToken) is { } outranked)
        {
            return outranked;
        }

        var wasAdmin = IsActiveAdmin(user);
        user.Status = UserStatus.Deleted;
        user.DeletedAt = user.UpdatedAt = time.GetUtcNow();
        if (await WriteAsync(tenant, user, null, wasAdmin, countDelta: -1,
            actor is null ? null : new PlatformEvent("user.deleted", actor, "user", id), cancellationToken) is { } error)
        {
            return error;
        }

        guard.ForgetUser(tenant, user.Id);
        await sessions.RevokeAllAsync(tenant, user.Id, null, cancellationToken);
        foreach (var hook in deletionHooks)
        {
            await hook.OnUserDeletedAsync(tenant, user.Id, cancellationToken);
        }

        return user;
    }

    public async Task<Outcome<UserEntity>> RestoreAsync(Caller caller, string id, CancellationToken cancellationToken)
    {
        var restored = await RestoreCoreAsync(caller.Tenant, caller.Actor, await permissions.ForAsync(caller, cancellationToken), id, cancellationToken);
        if (restored.Succeeded)
        {
            projections.Apply(caller.Tenant, restored.Value);
        }

        return restored;
    }

    private async Task<Outcome<UserEntity>> RestoreCoreAsync(TenantId tenant, Actor actor, IReadOnlySet<string> callerPermissions, string id, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(tenant, id, cancellationToken);
        if (user is null)
        {
            return UserNotFound;
        }

        if (await OutranksAsync(tenant, callerPermissions, user, cancellationToken) is { } outranked)
        {
            return outranked;
        }

        if (user.Status != UserStatus.Deleted)
        {
            return user;
        }

        user.Status = UserStatus.Active;
        user.DeletedAt = null;
        user.UpdatedAt = time.GetUtcNow();
        try
        {
            // A restored user counts again, so a restore takes a slot like a create (and is refused at the cap).
            var restored = new PlatformEvent("user.restored", actor, "user", id);
            var responses = await events.CommitWithAsync(users.Users(tenant), [restored], (outbox, token) => users.Count.SubmitAsync(tenant, count => count >= users.MaxUsersPerTenant
                    ? null
                    : new([new(TableTransactionActionType.UpdateReplace, user, user.ETag), outbox], +1),
                token), cancellationToken);
            if (responses is null)
            {
                return UserLimitReached(users.MaxUsersPerTenant);
            }

            user.ETag = responses.Value[0].Headers.ETag ?? default;
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 404 or 409 or 412)
        {
            return UserStale;
        }

        guard.ForgetUser(tenant, user.Id);
        return user;
    }

    /// <summary>
    /// Erases the user for good (see <see cref="UserPurge"/>): deleted first if they are not, with every rule of a
    /// delete, then their personal data removed.
    /// </summary>
    public async Task<Outcome<string>> PurgeAsync(Caller caller, string id, Func<ETag, bool>? ifMatch, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(caller.Tenant, id, cancellationToken);
        if (user is null)
        {
            return UserNotFound;
        }

        if (ifMatch?.Invoke(user.ETag) == false)
        {
            return UserStale;
        }

        // Outranking is checked for a user who is already deleted too: nobody erases for good whom they could not
        // delete, restore or change.
        var granted = await permissions.ForAsync(caller, cancellationToken);
        if (await OutranksAsync(caller.Tenant, granted, user, cancellationToken) is { } outranked)
        {
            return outranked;
        }

        if (user.Status != UserStatus.Deleted &&
            (await DeleteCoreAsync(caller.Tenant, null, granted, id, null, cancellationToken)).Failed(out var refused, out _))
        {
            return refused;
        }

        await purge.EraseAsync(caller.Tenant, user, new PlatformEvent("user.purged", caller.Actor, "user", id), cancellationToken);
        projections.Remove(caller.Tenant, id);
        return id;
    }

    /// <summary>
    /// Runs one bulk operation with the permissions the bulk request resolved once; its event commits with its write.
    /// </summary>
    /// <param name="checkOnly">An update is checked by every rule and not written (an import's dry run).</param>
    internal async Task<Outcome<UserEntity>> RunBulkAsync(
        Caller caller, IReadOnlySet<string> granted, string op, string id, UserInput? input, CancellationToken cancellationToken,
        bool checkOnly = false)
    {
        if (checkOnly && op != "update")
        {
            throw new ArgumentException("Only an update can be checked without writing.", nameof(op));
        }

        var tenant = caller.Tenant;
        Outcome<UserEntity> outcome;
        switch (op)
        {
            case "update":
                var updated = await UpdateCoreAsync(tenant, caller.Actor, granted, id, input!, null, cancellationToken, checkOnly);
                if (updated.Failed(out var error, out var change))
                {
                    return error;
                }

                if (checkOnly)
                {
                    return change.User;
                }

                outcome = change.User;
                break;
            case "delete":
                outcome = await DeleteCoreAsync(tenant, caller.Actor, granted, id, null, cancellationToken);
                break;
            default:
                outcome = await RestoreCoreAsync(tenant, caller.Actor, granted, id, cancellationToken);
                break;
        }

        if (outcome.Succeeded)
        {
            projections.Apply(tenant, outcome.Value);
        }

        return outcome;
    }

    /// <summary>Replaces the tenant's custom-field schema; a schema that does not check out is refused whole.</summary>
    public async Task<Outcome<SchemaDocument>> SaveSchemaAsync(Caller caller, SchemaDocument schema, CancellationToken cancellationToken)
    {
        var validation = UserSchemas.Check(schema);
        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        await schemas.SaveAsync(caller.Tenant, schema, events, [new PlatformEvent("schema.users.updated", caller.Actor, "schema", "users",
            new Dictionary<string, object?> { ["fields"] = schema.Fields.Select(f => f.Name).ToList() })], cancellationToken);
        return schema;
    }

    /// <summary>
    /// Writes a changed user. When the change takes an active admin away, the tenant's admin guard row is touched
    /// in the same transaction, conditioned on the ETag it had when the remaining admins were counted - so two
    /// concurrent demotions cannot both pass the "another admin remains" check. A change that makes the user stop
    /// counting against the cap (a delete) moves the tenant's user count in the same transaction too.
    /// </summary>
    private async Task<CommandError?> WriteAsync(
        TenantId tenant, UserEntity user, string? oldEmail, bool removesAdmin, long countDelta, PlatformEvent? happened, CancellationToken cancellationToken)
    {
        var actions = new List<TableTransactionAction> { new(TableTransactionActionType.UpdateReplace, user, user.ETag) };
        if (oldEmail is not null)
        {
            actions.Add(new(TableTransactionActionType.Add, new EmailIndexEntity { RowKey = EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(user.Email)!), UserId = user.Id }));
            actions.Add(new(TableTransactionActionType.Delete, new EmailIndexEntity { RowKey = EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(oldEmail)!) }, ETag.All));
        }

        if (removesAdmin)
        {
            var (others, guardRow) = await OtherActiveAdminsAsync(tenant, user.Id, cancellationToken);
            if (others == 0)
            {
                return LastAdmin;
            }

            actions.Add(guardRow.ETag == default
                ? new(TableTransactionActionType.Add, guardRow)
                : new(TableTransactionActionType.UpdateReplace, guardRow, guardRow.ETag));
        }

        try
        {
            // The event is the last action: the indexes of the others stay as the failures below read them.
            var partition = users.Users(tenant);
            async Task<Response<IReadOnlyList<Response>>> SubmitAsync(CancellationToken token) => countDelta == 0
                ? await partition.SubmitTransactionAsync(actions, token)
                : (await users.Count.SubmitAsync(tenant, _ => new(actions, countDelta), token))!;
            var responses = happened is null
                ? await SubmitAsync(cancellationToken)
                : await events.CommitWithAsync(partition, [happened], (outbox, token) =>
                {
                    actions.Add(outbox);
                    return SubmitAsync(token);
                }, cancellationToken);
            user.ETag = responses.Value[0].Headers.ETag ?? default;
            return null;
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 409 && oldEmail is not null && ex.FailedTransactionActionIndex == 1)
        {
            return EmailTaken(user.Email);
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412)
        {
            return UserStale;
        }
    }

    private async Task<(int Others, AdminGuardEntity Guard)> OtherActiveAdminsAsync(TenantId tenant, string exceptUserId, CancellationToken cancellationToken)
    {
        var partition = users.Users(tenant);
        var guardRow = await partition.GetAsync<AdminGuardEntity>(AdminGuardEntity.Key, cancellationToken) ?? new AdminGuardEntity { RowKey = AdminGuardEntity.Key };
        guardRow.ChangedAt = time.GetUtcNow();
        var others = 0;
        await foreach (var other in partition.QueryAsync<UserEntity>(UserEntity.KeyPrefix, cancellationToken: cancellationToken))
        {
            if (other.Id != exceptUserId && other.IsActive && other.RoleList.Contains(BuiltInRoles.Admin))
            {
                others++;
                break;
            }
        }

        return (others, guardRow);
    }

    /// <summary>Every role must exist, and together they may grant nothing the caller does not hold.</summary>
    private async Task<CommandError?> CheckRolesAsync(
        TenantId tenant, IReadOnlySet<string> callerPermissions, IReadOnlyList<string> requested, Validation validation, CancellationToken cancellationToken)
    {
        if (requested.Count > MaxRoles)
        {
            validation.Add("roles", $"at most {MaxRoles} roles");
            return null;
        }

        var known = await roles.AllAsync(tenant, cancellationToken);
        var unknown = requested.Where(r => r is null || !known.ContainsKey(r)).ToList();
        if (unknown.Count > 0)
        {
            validation.Add("roles", $"unknown role(s): {string.Join(", ", unknown.Take(5))}");
            return null;
        }

        var granted = await roles.PermissionsOfAsync(tenant, requested, cancellationToken);
        var notHeld = granted.Where(p => !callerPermissions.Contains(p)).Order(StringComparer.Ordinal).ToList();
        return notHeld.Count == 0
            ? null
            : new CommandError(403, "permission_not_held", $"You cannot grant permissions you do not hold: {string.Join(", ", notHeld)}.");
    }

    /// <summary>
    /// Nobody may change, lock, delete or restore a user who holds a permission they lack: otherwise a manager could
    /// point an admin's email at their own mailbox and reset their way into the admin's account.
    /// </summary>
    internal async Task<CommandError?> OutranksAsync(TenantId tenant, IReadOnlySet<string> callerPermissions, UserEntity target, CancellationToken cancellationToken)
    {
        var targetPermissions = await roles.PermissionsOfAsync(tenant, target.RoleList, cancellationToken);
        var beyond = targetPermissions.Where(p => !callerPermissions.Contains(p)).Order(StringComparer.Ordinal).ToList();
        return beyond.Count == 0
            ? null
            : new CommandError(403, "permission_not_held", $"This user holds permissions you do not hold ({string.Join(", ", beyond)}); only someone who holds them can change the user.");
    }

    private static bool IsActiveAdmin(UserEntity user) => user.IsActive && user.RoleList.Contains(BuiltInRoles.Admin);

    public static CommandError UserNotFound { get; } = CommandError.NotFound("user");

    public static CommandError UserStale { get; } = CommandError.Stale("user");

    public static CommandError UserLimitReached(int max) =>
        new(409, "user_limit_reached", $"This tenant has reached its limit of {max} users; delete users it no longer needs.");

    private static CommandError LastAdmin { get; } = CommandError.Conflict("last_admin", "This is the tenant's last active admin; make someone else admin first.");

    public static CommandError EmailTaken(string email) => new(409, "email_taken", $"Another user of this tenant has the email {email}.");

    private sealed class AdminGuardEntity : ITableEntity
    {
        public const string Key = "g:admins";

        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public DateTimeOffset ChangedAt { get; set; }
    }
}

/// <summary>What else must be erased when a user is purged (their avatar ...), registered by the capability that holds it.</summary>
public interface IUserPurgeHook
{
    Task OnUserPurgedAsync(TenantId tenant, string userId, CancellationToken cancellationToken);
}

/// <summary>What else must happen when a user is deleted (API keys revoked ...), registered by the capability that owns it.</summary>
public interface IUserDeletionHook
{
    Task OnUserDeletedAsync(TenantId tenant, string userId, CancellationToken cancellationToken);
}
