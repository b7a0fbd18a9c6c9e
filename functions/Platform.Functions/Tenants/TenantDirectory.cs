using System.Text.RegularExpressions;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Caching.Memory;
using Platform.Functions.Storage;

namespace Platform.Functions.Tenants;

/// <summary>
/// The tenants. All live in one partition of the <c>tenants</c> table - row <c>id:{id}</c> and row
/// <c>slug:{slug}</c> - so a tenant and its slug are created in one transaction and a slug can never be claimed
/// twice. Sign-ups are rare; slug lookups on sign-in are served from memory.
/// </summary>
public sealed partial class TenantDirectory(StorageAccount storage, IMemoryCache cache)
{
    public const string TableName = "tenants";
    public const string Partition = "tenants";
    private static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(5);

    private TableClient Table => storage.Table(TableName);

    [GeneratedRegex("^[a-z0-9-]{3,40}$")]
    public static partial Regex SlugPattern();

    public static bool IsValidSlug(string? slug) => slug is not null && SlugPattern().IsMatch(slug);

    /// <summary>Creates the tenant and claims its slug atomically; false when the slug is taken.</summary>
    public async Task<bool> TryCreateAsync(TenantEntity tenant, CancellationToken cancellationToken)
    {
        tenant.PartitionKey = Partition;
        tenant.RowKey = TenantEntity.KeyFor(tenant.Id);
        var slug = new TenantSlugEntity { PartitionKey = Partition, RowKey = TenantSlugEntity.KeyFor(tenant.Slug), TenantId = tenant.Id };
        try
        {
            await Table.SubmitTransactionAsync(
                [new TableTransactionAction(TableTransactionActionType.Add, tenant), new TableTransactionAction(TableTransactionActionType.Add, slug)],
                cancellationToken);
            return true;
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 409)
        {
            return false;
        }
    }

    /// <summary>Undoes a sign-up whose first user could not be written, freeing the slug again.</summary>
    public async Task DeleteAsync(TenantEntity tenant, CancellationToken cancellationToken)
    {
        await Table.SubmitTransactionAsync(
            [
                new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(Partition, TenantEntity.KeyFor(tenant.Id)), ETag.All),
                new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(Partition, TenantSlugEntity.KeyFor(tenant.Slug)), ETag.All),
            ],
            cancellationToken);
        cache.Remove(SlugCacheKey(tenant.Slug));
    }

    /// <summary>The tenant's directory row as stored (name, slug, settings), for a backup; null when there is none.</summary>
    public async Task<TableEntity?> RowAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var row = await Table.GetEntityIfExistsAsync<TableEntity>(Partition, TenantEntity.KeyFor(tenant.Value), cancellationToken: cancellationToken);
        return row.HasValue ? row.Value : null;
    }

    /// <summary>
    /// Claims a slug for a tenant that does not exist yet (a restore writing its new tenant): true when it is claimed for
    /// <paramref name="tenantId"/>, now or by an earlier try; false when another tenant holds it.
    /// </summary>
    public async Task<bool> ReserveSlugAsync(string slug, string tenantId, CancellationToken cancellationToken)
    {
        var claim = new TenantSlugEntity { PartitionKey = Partition, RowKey = TenantSlugEntity.KeyFor(slug), TenantId = tenantId };
        try
        {
            await Table.AddEntityAsync(claim, cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            var held = await Table.GetEntityIfExistsAsync<TenantSlugEntity>(Partition, claim.RowKey, cancellationToken: cancellationToken);
            return held.HasValue && held.Value!.TenantId == tenantId;
        }
    }

    /// <summary>Frees a slug claimed for <paramref name="tenantId"/> (a restore that failed before its tenant became visible).</summary>
    public async Task ReleaseSlugAsync(string slug, string tenantId, CancellationToken cancellationToken)
    {
        var held = await Table.GetEntityIfExistsAsync<TenantSlugEntity>(Partition, TenantSlugEntity.KeyFor(slug), cancellationToken: cancellationToken);
        if (held.HasValue && held.Value!.TenantId == tenantId)
        {
            await Table.DeleteEntityAsync(Partition, held.Value.RowKey, held.Value.ETag, cancellationToken);
        }

        cache.Remove(SlugCacheKey(slug));
    }

    /// <summary>Writes a tenant's directory row whole (a restored tenant: the row goes last, and makes it visible).</summary>
    public async Task PutRowAsync(TableEntity row, CancellationToken cancellationToken)
    {
        row.PartitionKey = Partition;
        await Table.UpsertEntityAsync(row, TableUpdateMode.Replace, cancellationToken);
    }

    /// <summary>Whether a slug is claimed, by a tenant or by a restore that is still writing its new tenant.</summary>
    public async Task<bool> SlugTakenAsync(string slug, CancellationToken cancellationToken) =>
        (await Table.GetEntityIfExistsAsync<TenantSlugEntity>(Partition, TenantSlugEntity.KeyFor(slug), cancellationToken: cancellationToken)).HasValue;

    public async Task<TenantEntity?> FindBySlugAsync(string? slug, CancellationToken cancellationToken)
    {
        if (!IsValidSlug(slug))
        {
            return null;
        }

        if (cache.TryGetValue(SlugCacheKey(slug!), out TenantEntity? cached))
        {
            return cached;
        }

        var index = await Table.GetEntityIfExistsAsync<TenantSlugEntity>(Partition, TenantSlugEntity.KeyFor(slug!), cancellationToken: cancellationToken);
        var tenant = index.HasValue ? await GetAsync(new TenantId(index.Value!.TenantId), cancellationToken) : null;
        if (tenant is not null)
        {
            cache.Set(SlugCacheKey(slug!), tenant, CacheFor);
        }

        return tenant;
    }

    public async Task<TenantEntity?> GetAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var row = await Table.GetEntityIfExistsAsync<TenantEntity>(Partition, TenantEntity.KeyFor(tenant.Value), cancellationToken: cancellationToken);
        return row.HasValue ? row.Value : null;
    }

    /// <summary>Every tenant's id, for work that runs across tenants (timers, housekeeping).</summary>
    public async IAsyncEnumerable<TenantId> AllIdsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var tenant in Table.QueryAsync<TenantEntity>(
            t => t.PartitionKey == Partition && t.RowKey.CompareTo("id:") >= 0 && t.RowKey.CompareTo("id;") < 0, cancellationToken: cancellationToken))
        {
            yield return new TenantId(tenant.Id);
        }
    }

    private static string SlugCacheKey(string slug) => "tenant-slug:" + slug;
}

public sealed class TenantEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Id { get; set; } = "";
    public string Slug { get; set; } = "";
    public string Name { get; set; } = "";
    public string Plan { get; set; } = "free";
    public DateTimeOffset CreatedAt { get; set; }

    public static string KeyFor(string id) => "id:" + id;
}

public sealed class TenantSlugEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string TenantId { get; set; } = "";

    public static string KeyFor(string slug) => "slug:" + slug;
}
