using System.Collections.Concurrent;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Query;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>A user as lists see it: the response item plus what filters, search and sort read.</summary>
public sealed record UserListItem(UserView View, string SearchText) : IListed<UserView>
{
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

        return new UserListItem(view, string.Join('\n', text).ToLowerInvariant());
    }
}

/// <summary>
/// How user lists stay fast for a tenant with 100,000 users when Table storage has no secondary index or text search:
/// each instance keeps a projection of a tenant's users in memory. It is loaded once with a scan of the tenant's
/// <c>u:</c> rows, then kept current two ways - writes made on this instance are applied at once (a caller sees
/// their own change), and before serving a list an instance fetches only the rows changed since its last look
/// (a <c>Timestamp</c> query over the same key range, at most every <see cref="RefreshEvery"/>), so other instances'
/// writes show within seconds. Purges leave a tombstone row rather than deleting, so that incremental fetch sees
/// them too. Filtering, search and sort then run over memory, in milliseconds, instead of a partition scan per
/// request; the cost is memory (roughly 1 KB per user) and the first list after a cold start, which pays the scan.
/// At most <see cref="MaxTenants"/> tenants are kept; the least recently listed one is dropped first.
/// </summary>
public sealed class UserProjections(StorageAccount storage, TimeProvider time)
{
    public static readonly TimeSpan RefreshEvery = TimeSpan.FromSeconds(2);
    public const int MaxTenants = 50;

    /// <summary>Changes are fetched from a little before the newest timestamp seen, since instances' clocks and commit order differ.</summary>
    private static readonly TimeSpan Overlap = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, TenantProjection> _tenants = new(StringComparer.Ordinal);

    public async Task<IReadOnlyCollection<UserListItem>> SnapshotAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var projection = _tenants.GetOrAdd(tenant.Value, _ => new TenantProjection());
        projection.LastUsed = time.GetUtcNow();
        await projection.Gate.WaitAsync(cancellationToken);
        try
        {
            var now = time.GetUtcNow();
            if (projection.LoadedAt is null || now - projection.RefreshedAt >= RefreshEvery)
            {
                await RefreshAsync(tenant, projection, cancellationToken);
                projection.RefreshedAt = now;
                projection.LoadedAt ??= now;
                Trim();
            }

            return [.. projection.Users.Values];
        }
        finally
        {
            projection.Gate.Release();
        }
    }

    /// <summary>Applies a write made on this instance, so the writer's next list shows it.</summary>
    public void Apply(TenantId tenant, UserEntity user)
    {
        if (_tenants.TryGetValue(tenant.Value, out var projection) && projection.LoadedAt is not null)
        {
            projection.Users[user.Id] = UserListItem.From(user);
        }
    }

    public void Remove(TenantId tenant, string userId)
    {
        if (_tenants.TryGetValue(tenant.Value, out var projection))
        {
            projection.Users.TryRemove(userId, out _);
        }
    }

    private async Task RefreshAsync(TenantId tenant, TenantProjection projection, CancellationToken cancellationToken)
    {
        var table = storage.TenantTable(UserDirectory.TableName).For(tenant);
        var changed = projection.NewestTimestamp is { } newest
            ? table.QueryWhereAsync<UserEntity>($"RowKey ge {UserEntity.KeyPrefix} and RowKey lt {"u;"} and Timestamp ge {newest - Overlap}", maxPerPage: 1000, cancellationToken)
            : table.QueryAsync<UserEntity>(UserEntity.KeyPrefix, maxPerPage: 1000, cancellationToken);
        await foreach (var user in changed)
        {
            if (user.Status == UserStatus.Purged)
            {
                projection.Users.TryRemove(user.Id, out _);
            }
            else
            {
                projection.Users[user.Id] = UserListItem.From(user);
            }

            if (user.Timestamp > projection.NewestTimestamp || projection.NewestTimestamp is null)
            {
                projection.NewestTimestamp = user.Timestamp;
            }
        }
    }

    private void Trim()
    {
        while (_tenants.Count > MaxTenants)
        {
            var oldest = _tenants.MinBy(t => t.Value.LastUsed);
            _tenants.TryRemove(oldest.Key, out _);
        }
    }

    private sealed class TenantProjection
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public ConcurrentDictionary<string, UserListItem> Users { get; } = new(StringComparer.Ordinal);
        public DateTimeOffset? LoadedAt { get; set; }
        public DateTimeOffset RefreshedAt { get; set; }
        public DateTimeOffset? NewestTimestamp { get; set; }
        public DateTimeOffset LastUsed { get; set; }
    }
}
