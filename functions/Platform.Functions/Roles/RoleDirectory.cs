using System.Runtime.Serialization;
using System.Security.Claims;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Caching.Memory;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Storage;

namespace Platform.Functions.Roles;

/// <summary>A custom role: row <c>{name}</c> in the tenant's partition of the <c>roles</c> table.</summary>
public sealed class RoleEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Permissions { get; set; } = "[]";
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    [IgnoreDataMember]
    public IReadOnlyList<string> PermissionList
    {
        get => JsonSerializer.Deserialize<string[]>(Permissions) ?? [];
        set => Permissions = JsonSerializer.Serialize(value);
    }
}

/// <summary>
/// The roles of a tenant - the built-in ones plus its custom ones - and what they grant. The custom roles of a
/// tenant are one small partition, read once and kept in memory for 30 s; a change on this instance is seen at
/// once, on others within that time, like session revocation.
/// </summary>
public sealed class RoleDirectory(StorageAccount storage, IMemoryCache cache)
{
    public const string TableName = "roles";
    public const int MaxCustomRoles = 100;
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>Role name → permissions, built-in roles first.</summary>
    public async Task<IReadOnlyDictionary<string, IReadOnlySet<string>>> AllAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var key = "roles:" + tenant.Value;
        if (cache.TryGetValue(key, out IReadOnlyDictionary<string, IReadOnlySet<string>>? roles) && roles is not null)
        {
            return roles;
        }

        var all = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        foreach (var (name, grants) in BuiltInRoles.Grants)
        {
            all[name] = grants;
        }

        // Role names start with a letter: the partition's event outbox (keys from '~') is not a role.
        await foreach (var role in Rows(tenant).QueryWhereAsync<RoleEntity>($"RowKey lt {EventOutbox.KeyStart}", cancellationToken: cancellationToken))
        {
            all[role.RowKey] = role.PermissionList.Where(Permissions.All.Contains).ToHashSet(StringComparer.Ordinal);
        }

        cache.Set(key, (IReadOnlyDictionary<string, IReadOnlySet<string>>)all, CacheFor);
        return all;
    }

    public async Task<IReadOnlySet<string>> PermissionsOfAsync(TenantId tenant, IEnumerable<string> roleNames, CancellationToken cancellationToken)
    {
        var roles = await AllAsync(tenant, cancellationToken);
        var granted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in roleNames)
        {
            if (roles.TryGetValue(name, out var permissions))
            {
                granted.UnionWith(permissions);
            }
        }

        return granted;
    }

    public void Forget(TenantId tenant) => cache.Remove("roles:" + tenant.Value);
}

/// <summary>
/// The permissions of the caller of a request: those of the user's roles, narrowed to an API key's scopes when
/// the caller is a key (a key can never do more than its creator can do today).
/// </summary>
public sealed class CallerPermissions(SessionGuard guard, RoleDirectory roles)
{
    public Task<IReadOnlySet<string>> ForAsync(ClaimsPrincipal principal, CancellationToken cancellationToken) =>
        Caller.From(principal) is { } caller ? ForAsync(caller, cancellationToken) : Task.FromResult<IReadOnlySet<string>>(new HashSet<string>());

    public async Task<IReadOnlySet<string>> ForAsync(Caller caller, CancellationToken cancellationToken)
    {
        var standing = await guard.GetStandingAsync(caller, cancellationToken);
        if (!standing.IsValid)
        {
            return new HashSet<string>();
        }

        var granted = await roles.PermissionsOfAsync(caller.Tenant, standing.Roles, cancellationToken);
        if (caller.Scopes is { } scopes)
        {
            var scoped = scopes.ToHashSet(StringComparer.Ordinal);
            scoped.IntersectWith(granted);
            return scoped;
        }

        return granted;
    }
}

public sealed record PermissionRequirement(string Permission) : IAuthorizationRequirement;

internal sealed class PermissionHandler(CallerPermissions permissions) : AuthorizationHandler<PermissionRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, PermissionRequirement requirement)
    {
        var cancellationToken = (context.Resource as HttpContext)?.RequestAborted ?? CancellationToken.None;
        if ((await permissions.ForAsync(context.User, cancellationToken)).Contains(requirement.Permission))
        {
            context.Succeed(requirement);
        }
    }
}

public static class PermissionExtensions
{
    internal const string PolicyPrefix = "permission:";

    /// <summary>The route needs an authenticated caller holding <paramref name="permission"/>; otherwise 401 or 403.</summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder builder, string permission) where TBuilder : IEndpointConventionBuilder =>
        Permissions.All.Contains(permission)
            ? builder.RequireAuthorization(PolicyPrefix + permission)
            : throw new ArgumentException($"'{permission}' is not a permission.", nameof(permission));
}
