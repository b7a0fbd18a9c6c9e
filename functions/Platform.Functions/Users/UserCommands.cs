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

/// <summary>Why a command did not happen, as a status, a problem code and a message (and field errors for 400).</summary>
public sealed record CommandError(int Status, string Code, string Message, Validation? Fields = null)
{
    public ProblemHttpResult ToProblem() =>
        Fields is { IsValid: false } fields ? fields.ToProblem() : Problems.Create(Status, Code, Title(Status), Message);

    private static string Title(int status) => status switch
    {
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        412 => "Precondition failed",
        _ => "Invalid request",
    };

    public static CommandError NotFound { get; } = new(404, "not_found", "No user of this tenant has this id.");

    public static CommandError Stale { get; } = new(412, "precondition_failed", "The user changed since you read it; read it again.");
}

/// <summary>
/// Every change to users, shared by the single-user routes and the bulk route so both enforce the same rules:
/// the custom-field schema, unique email (index row in the same transaction), no granting of permissions the
/// caller does not hold, and never leaving a tenant without an active admin.
/// </summary>
public sealed class UserCommands(
    UserDirectory users,
    UserSchemas schemas,
    RoleDirectory roles,
    PasswordHasher hasher,
    PasswordPolicy policy,
    Sessions sessions,
    SessionGuard guard,
    UserTokens userTokens,
    IEnumerable<IUserDeletionHook> deletionHooks,
    TimeProvider time)
{
    public const int MaxRoles = 20;

    /// <summary>Checks a create and builds the rows to write; the caller writes them (alone or in a batch).</summary>
    public async Task<(UserEntity? User, CommandError? Error)> PrepareCreateAsync(
        TenantId tenant, IReadOnlySet<string> callerPermissions, UserInput input, CancellationToken cancellationToken)
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

        var fields = UserSchemas.Apply(await schemas.GetAsync(tenant, cancellationToken), "{}", input.Fields, validation);
        var requestedRoles = input.Roles ?? [BuiltInRoles.User];
        if (await CheckRolesAsync(tenant, callerPermissions, requestedRoles, validation, cancellationToken) is { } refused)
        {
            return (null, refused);
        }

        if (!validation.IsValid)
        {
            return (null, new CommandError(400, "validation_failed", "One or more fields are invalid.", validation));
        }

        var now = time.GetUtcNow();
        return (new UserEntity
        {
            RowKey = UserEntity.KeyFor(Ids.New(time)),
            Email = input.Email!.Trim(),
            DisplayName = displayName,
            PasswordHash = input.Password is null ? null : hasher.Hash(input.Password),
            RoleList = [.. requestedRoles.Distinct(StringComparer.Ordinal)],
            Fields = fields!,
            CreatedAt = now,
            UpdatedAt = now,
        }, null);
    }

    public async Task<(UserEntity? User, CommandError? Error)> CreateAsync(
        TenantId tenant, IReadOnlySet<string> callerPermissions, UserInput input, CancellationToken cancellationToken)
    {
        var (user, error) = await PrepareCreateAsync(tenant, callerPermissions, input, cancellationToken);
        if (user is null)
        {
            return (null, error);
        }

        return await users.TryCreateAsync(tenant, user, cancellationToken) ? (user, null) : (null, EmailTaken(user.Email));
    }

    public async Task<(UserEntity? User, CommandError? Error, Dictionary<string, object?>? Changes)> UpdateAsync(
        TenantId tenant, IReadOnlySet<string> callerPermissions, string id, UserInput input, Func<ETag, bool>? ifMatch, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(tenant, id, cancellationToken);
        if (user is null || user.Status == UserStatus.Deleted)
        {
            return (null, CommandError.NotFound, null);
        }

        if (ifMatch?.Invoke(user.ETag) == false)
        {
            return (null, CommandError.Stale, null);
        }

        if (input.Roles is not null && !callerPermissions.Contains(Permissions.RolesManage))
        {
            return (null, new CommandError(403, "forbidden", "Changing roles needs the roles.manage permission."), null);
        }

        // Profile edits (name, custom fields) need only users.write; what could hand over or shut out the account
        // (email, status, roles) needs the caller to hold everything the user holds.
        if ((input.Email is not null || input.Status is not null || input.Roles is not null) &&
            await OutranksAsync(tenant, callerPermissions, user, cancellationToken) is { } outranked)
        {
            return (null, outranked, null);
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
                validation.Add("status", "must be active or locked (delete a user with DELETE)");
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
                return (null, refused, null);
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
            return (null, new CommandError(400, "validation_failed", "One or more fields are invalid.", validation), null);
        }

        if (changes.Count == 0)
        {
            return (user, null, changes);
        }

        user.UpdatedAt = time.GetUtcNow();
        var error = await WriteAsync(tenant, user, oldEmail, removesAdmin: wasActiveAdmin && !IsActiveAdmin(user), cancellationToken);
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

        return error is null ? (user, null, changes) : (null, error, null);
    }

    public async Task<(UserEntity? User, CommandError? Error)> DeleteAsync(
        TenantId tenant, IReadOnlySet<string> callerPermissions, string id, Func<ETag, bool>? ifMatch, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(tenant, id, cancellationToken);
        if (user is null || user.Status == UserStatus.Deleted)
        {
            return (null, CommandError.NotFound);
        }

        if (ifMatch?.Invoke(user.ETag) == false)
        {
            return (null, CommandError.Stale);
        }

        if (await OutranksAsync(tenant, callerPermissions, user, cancellationToken) is { } outranked)
        {
            return (null, outranked);
        }

        var wasAdmin = IsActiveAdmin(user);
        user.Status = UserStatus.Deleted;
        user.DeletedAt = user.UpdatedAt = time.GetUtcNow();
        var error = await WriteAsync(tenant, user, null, wasAdmin, cancellationToken);
        if (error is not null)
        {
            return (null, error);
        }

        guard.ForgetUser(tenant, user.Id);
        await sessions.RevokeAllAsync(tenant, user.Id, null, cancellationToken);
        foreach (var hook in deletionHooks)
        {
            await hook.OnUserDeletedAsync(tenant, user.Id, cancellationToken);
        }

        return (user, null);
    }

    public async Task<(UserEntity? User, CommandError? Error)> RestoreAsync(
        TenantId tenant, IReadOnlySet<string> callerPermissions, string id, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(tenant, id, cancellationToken);
        if (user is null)
        {
            return (null, CommandError.NotFound);
        }

        if (await OutranksAsync(tenant, callerPermissions, user, cancellationToken) is { } outranked)
        {
            return (null, outranked);
        }

        if (user.Status != UserStatus.Deleted)
        {
            return (user, null);
        }

        user.Status = UserStatus.Active;
        user.DeletedAt = null;
        user.UpdatedAt = time.GetUtcNow();
        try
        {
            await users.UpdateAsync(tenant, user, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            return (null, CommandError.Stale);
        }

        guard.ForgetUser(tenant, user.Id);
        return (user, null);
    }

    /// <summary>
    /// Writes a changed user. When the change takes an active admin away, the tenant's admin guard row is touched
    /// in the same transaction, conditioned on the ETag it had when the remaining admins were counted - so two
    /// concurrent demotions cannot both pass the "another admin remains" check.
    /// </summary>
    private async Task<CommandError?> WriteAsync(TenantId tenant, UserEntity user, string? oldEmail, bool removesAdmin, CancellationToken cancellationToken)
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
                return new CommandError(409, "last_admin", "This is the tenant's last active admin; make someone else admin first.");
            }

            actions.Add(guardRow.ETag == default
                ? new(TableTransactionActionType.Add, guardRow)
                : new(TableTransactionActionType.UpdateReplace, guardRow, guardRow.ETag));
        }

        try
        {
            var responses = await users.Users(tenant).SubmitTransactionAsync(actions, cancellationToken);
            user.ETag = responses.Value[0].Headers.ETag ?? default;
            return null;
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 409 && oldEmail is not null && ex.FailedTransactionActionIndex == 1)
        {
            return EmailTaken(user.Email);
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412)
        {
            return CommandError.Stale;
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
    private async Task<CommandError?> OutranksAsync(TenantId tenant, IReadOnlySet<string> callerPermissions, UserEntity target, CancellationToken cancellationToken)
    {
        var targetPermissions = await roles.PermissionsOfAsync(tenant, target.RoleList, cancellationToken);
        var beyond = targetPermissions.Where(p => !callerPermissions.Contains(p)).Order(StringComparer.Ordinal).ToList();
        return beyond.Count == 0
            ? null
            : new CommandError(403, "permission_not_held", $"This user holds permissions you do not hold ({string.Join(", ", beyond)}); only someone who holds them can change the user.");
    }

    private static bool IsActiveAdmin(UserEntity user) => user.IsActive && user.RoleList.Contains(BuiltInRoles.Admin);

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

/// <summary>What else must happen when a user is deleted (API keys revoked ...), registered by the capability that owns it.</summary>
public interface IUserDeletionHook
{
    Task OnUserDeletedAsync(TenantId tenant, string userId, CancellationToken cancellationToken);
}
