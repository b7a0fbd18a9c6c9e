using System.Text.Json;
using Platform.Functions.Query;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>A user as lists see it: the response item plus what filters, search and sort read, and the sign-in history reports read.</summary>
/// <param name="HeldBytes">An estimate of the memory this item keeps alive, for the projection's budget.</param>
public sealed record UserListItem(UserView View, string SearchText, long HeldBytes, SignInHistory SignIns) : IListed<UserView>
{
    /// <summary>
    /// The record, its view, the two parsed JSON documents and the roles list, as objects without their text: about
    /// 1 KB a user all told, as measured at 100,000 users (README, users at scale); and the sign-in history.
    /// </summary>
    private const long FixedBytes = 640 + 32;

    public string Id => View.Id;

    public object? ValueOf(string field) => field switch
    {
        "id" => View.Id,
        "email" => View.Email,
        "displayName" => View.DisplayName,
        "status" => View.Status,
        "roles" => View.Roles,
        "emailVerified" => View.EmailVerified,
        "mfaEnabled" => View.MfaEnabled,
        "createdAt" => View.CreatedAt,
        "updatedAt" => View.UpdatedAt,
        "lastLoginAt" => View.LastLoginAt,
        "deletedAt" => View.DeletedAt,
        _ when field.StartsWith(FilterSchema.CustomFieldPrefix, StringComparison.Ordinal) => CustomValue(field[FilterSchema.CustomFieldPrefix.Length..]),
        _ => null,
    };

    // The filter evaluator reads a JSON value by the type the filter expects (a date string only where a date is compared).
    private JsonElement? CustomValue(string name) =>
        View.Fields.ValueKind == JsonValueKind.Object && View.Fields.TryGetProperty(name, out var value) ? value : null;

    public static UserListItem From(UserEntity user)
    {
        var view = UserView.From(user);
        var text = new List<string> { user.Email, user.DisplayName };
        if (view.Fields.ValueKind == JsonValueKind.Object)
        {
            text.AddRange(view.Fields.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.String).Select(p => p.Value.GetString()!));
        }

        var searchText = string.Join('\n', text).ToLowerInvariant();

        // UTF-16 strings at 2 bytes a char; a parsed JSON document keeps its UTF-8 text plus 12 bytes a token.
        var bytes = FixedBytes + 2L * (view.Id.Length + view.Email.Length + view.DisplayName.Length + view.Status.Length + searchText.Length)
            + view.Roles.Sum(r => 2L * r.Length + 32) + 3L * (user.Settings.Length + user.Fields.Length);
        return new UserListItem(view, searchText, bytes, SignInHistory.Of(user));
    }
}

/// <summary>
/// The tenant's users as lists see them, kept in memory per instance and caught up through the users table's change
/// log (see <see cref="ListProjection{TEntity, TItem}"/> for how and why). Purged users leave a tombstone row, which
/// the projection drops.
/// </summary>
public sealed class UserProjections(StorageAccount storage, ProjectionMemory memory, TimeProvider time)
{
    private readonly ListProjection<UserEntity, UserListItem> _users = new(
        storage, UserDirectory.TableName, UserEntity.KeyPrefix, user => user.Status == UserStatus.Purged ? null : UserListItem.From(user),
        item => item.HeldBytes, memory, time);

    /// <summary>Scans of a tenant's users made by this instance (a first list, or one after the tenant was dropped).</summary>
    public long Loads => _users.Loads;

    public Task<HeldRows<UserListItem>> RowsAsync(TenantId tenant, CancellationToken cancellationToken) =>
        _users.RowsAsync(tenant, cancellationToken);

    /// <summary>Applies a write made on this instance, so the writer's next list shows it.</summary>
    public void Apply(TenantId tenant, UserEntity user) => _users.Apply(tenant, user);

    public void Remove(TenantId tenant, string userId) => _users.Remove(tenant, UserEntity.KeyFor(userId));
}
