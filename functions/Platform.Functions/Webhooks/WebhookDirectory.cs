using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Storage;

namespace Platform.Functions.Webhooks;

/// <summary>
/// Reads endpoints, and remembers each tenant's list for <see cref="WebhookOptions.EndpointCacheLifetime"/> so the
/// fan-out on the event path costs no storage read (an empty list is remembered too: a tenant without endpoints pays
/// one read per lifetime). Writes on this instance forget the tenant at once; other instances see them within the
/// lifetime.
/// </summary>
public sealed class WebhookDirectory(StorageAccount storage, SecretBox secrets, IOptions<WebhookOptions> options, TimeProvider time)
{
    public const string TableName = "webhooks";

    private readonly ConcurrentDictionary<string, (DateTimeOffset Until, IReadOnlyList<EndpointEntity> Endpoints)> _cache = new(StringComparer.Ordinal);

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    public Task<EndpointEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        IsId(id) ? Rows(tenant).GetAsync<EndpointEntity>(WebhookRows.Endpoint(id), cancellationToken) : Task.FromResult<EndpointEntity?>(null);

    public async Task<List<EndpointEntity>> ListAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var list = new List<EndpointEntity>();
        await foreach (var row in Rows(tenant).QueryAsync<EndpointEntity>("endpoint:", cancellationToken: cancellationToken))
        {
            list.Add(row);
        }

        return list;
    }

    /// <summary>The tenant's endpoints as the fan-out sees them (possibly a little stale on other instances).</summary>
    public async ValueTask<IReadOnlyList<EndpointEntity>> CachedAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(tenant.Value, out var cached) && cached.Until > now)
        {
            return cached.Endpoints;
        }

        var endpoints = await ListAsync(tenant, cancellationToken);
        _cache[tenant.Value] = (now + options.Value.EndpointCacheLifetime, endpoints);
        return endpoints;
    }

    public void Forget(TenantId tenant) => _cache.TryRemove(tenant.Value, out _);

    /// <summary>The keys that sign a delivery now: the current secret, and the previous one during its grace.</summary>
    public IReadOnlyList<byte[]> SigningKeys(TenantId tenant, EndpointEntity endpoint)
    {
        var keys = new List<byte[]> { secrets.Open(endpoint.Secret, Binding(tenant, endpoint.Id)) };
        if (endpoint.PreviousSecret is { } previous && endpoint.PreviousSecretUntil > time.GetUtcNow())
        {
            keys.Add(secrets.Open(previous, Binding(tenant, endpoint.Id)));
        }

        return keys;
    }

    public byte[] Seal(TenantId tenant, string endpointId, byte[] key) => secrets.SealBytes(key, Binding(tenant, endpointId));

    public static bool IsId(string? id) => id is { Length: 26 } && Ids.TryReadTime(id, out _);

    private static string Binding(TenantId tenant, string endpointId) => $"webhook-secret:{tenant.Value}:{endpointId}";
}
