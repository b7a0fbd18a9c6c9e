using Platform.Functions.Hosting;
using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Authentication;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Storage;

namespace Platform.Functions.ApiKeys;

/// <summary>Settings under <c>Platform:ApiKeys</c>.</summary>
public sealed class ApiKeyOptions
{
    public const string Section = "Platform:ApiKeys";

    /// <summary>A tenant has at most this many keys, so the whole list is one page.</summary>
    public const int MaxPageSize = 1000;

    /// <summary>How often gathered usage (<c>lastUsedAt</c>, <c>useCount</c>) is written to the key rows.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:05:00")]
    public TimeSpan UsageFlushInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Keys a tenant may hold (revoked keys do not count; expired ones do until deleted).</summary>
    [Range(1, MaxPageSize)]
    public int MaxKeysPerTenant { get; set; } = MaxPageSize;
}

public static class ApiKeysExtensions
{
    /// <summary>API keys: their tables, the <c>ApiKey</c> authentication scheme and the usage flusher.</summary>
    public static IHostApplicationBuilder AddApiKeys(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<ApiKeyOptions>(ApiKeyOptions.Section);
        services.AddStorageTable(ApiKeyStore.TableName);
        services.AddEventOutbox(ApiKeyStore.TableName);
        services.AddTenantData(ApiKeyStore.TableName, credentials: true);
        services.AddStorageTable(ApiKeyStore.PrefixTableName);
        services.AddMemoryCache();
        services.AddSingleton<ApiKeyStore>();
        services.AddSingleton<ApiKeyUsage>();
        services.AddSingleton<ApiKeyUsageFlusher>();
        services.AddHostedService(sp => sp.GetRequiredService<ApiKeyUsageFlusher>());
        services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(AuthExtensions.ApiKeyScheme, null);
        services.AddSingleton<Users.IUserDeletionHook, RevokeKeysOfDeletedUser>();

        // The routes' permission policies and CallerPermissions come from builder.AddRoles().
        return builder;
    }

    public static RouteGroupBuilder MapApiKeys(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/api-keys").WithTags("API keys");
        ApiKeyEndpoints.Map(group);
        return group;
    }
}

/// <summary>A deleted user's keys are revoked with them: a key can never outlive its creator's access.</summary>
internal sealed class RevokeKeysOfDeletedUser(ApiKeyStore keys) : Users.IUserDeletionHook
{
    public Task OnUserDeletedAsync(TenantId tenant, string userId, CancellationToken cancellationToken) =>
        keys.RevokeAllOfUserAsync(tenant, userId, cancellationToken);
}
