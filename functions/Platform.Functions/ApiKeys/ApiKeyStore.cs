using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Storage;

namespace Platform.Functions.ApiKeys;

/// <summary>Who a valid key authenticates: the key, its tenant, the user it acts for and its scopes.</summary>
public sealed record ApiKeyIdentity(TenantId Tenant, string KeyId, string CreatedBy, IReadOnlyList<string> Permissions, DateTimeOffset? ExpiresAt);

public enum ApiKeyOutcome
{
    Done,
    NotFound,

    /// <summary>The tenant already has <see cref="ApiKeyOptions.MaxKeysPerTenant"/> keys.</summary>
    LimitReached,

    /// <summary>An expired key cannot be rotated.</summary>
    Expired,

    /// <summary>The caller's precondition (If-Match) no longer holds.</summary>
    PreconditionFailed,

    /// <summary>The caller may not rotate or revoke this key (<see cref="ApiKeyAccess.MayChange"/>).</summary>
    NotPermitted,
}

/// <summary>The key row after a creation or rotation, and the key text, which exists only in this result.</summary>
public sealed record ApiKeyIssue(ApiKeyOutcome Outcome, ApiKeyEntity? Key = null, string? Text = null);

/// <summary>One key's usage gathered since the last flush.</summary>
public readonly record struct ApiKeyUsageDelta(TenantId Tenant, string KeyId, long Count, DateTimeOffset LastUsedAt);

public enum UsageWrite
{
    Written,

    /// <summary>The key is gone (revoked): its usage is dropped.</summary>
    Gone,

    /// <summary>The row kept changing under us; try again at the next flush.</summary>
    Contended,
}

/// <summary>
/// API keys: creation, rotation, revocation and authentication. A key is found from its text alone through the
/// platform table <c>apikeyprefixes</c> (prefix → tenant and key id); its row in the tenant's <c>apikeys</c>
/// partition decides whether it is valid. What an instance read about a key is kept in memory for at most
/// <see cref="AuthOptions.RevocationCheckInterval"/> (30 s); the instance that rotates or revokes forgets it at once,
/// and validity times (expiry, grace) are compared with the clock on every request, never cached as a verdict.
/// </summary>
/// <remarks>
/// Prefix rows are not given to <c>Expirations</c>: that index addresses partitions by <see cref="TenantId"/>, and the
/// rows that retire a prefix delete it themselves - revocation deletes both prefixes of the key, a rotation deletes
/// the one that drops out of the grace slot. A prefix row left behind (a crash between two writes) authenticates
/// nothing because the key row no longer names it, so at most one dead prefix row per key can linger.
/// Key rows are not expired by housekeeping either: an expired key stays listed (status <c>expired</c>) and counts
/// against the limit until it is deleted, as with GitHub's tokens, so its owner sees why a client stopped working.
/// </remarks>
public sealed partial class ApiKeyStore(
    StorageAccount storage,
    IMemoryCache cache,
    EventPublisher events,
    IOptions<AuthOptions> auth,
    IOptions<ApiKeyOptions> options,
    TimeProvider time,
    ILogger<ApiKeyStore> logger)
{
    public const string TableName = "apikeys";
    public const string PrefixTableName = "apikeyprefixes";
    public const int MaxNameLength = 100;

    /// <summary>Longest grace period of a rotation.</summary>
    public static readonly TimeSpan MaxGrace = TimeSpan.FromDays(7);

    /// <summary>Longest lifetime a key may be given.</summary>
    public const int MaxLifetimeYears = 2;

    /// <summary>The prefix index never changes, so what an instance learnt from it is kept longer.</summary>
    private static readonly TimeSpan PrefixCacheFor = TimeSpan.FromMinutes(5);

    private const int MaxAttempts = 5;

    /// <summary>Each round of racing creations lets one through, so this bounds how many may race at once.</summary>
    private const int MaxCreateAttempts = 20;
    private static int _generations;

    public int MaxKeysPerTenant => options.Value.MaxKeysPerTenant;

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    private TableClient Prefixes => storage.Table(PrefixTableName);

    public async Task<ApiKeyEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        IsId(id) ? await Rows(tenant).GetAsync<ApiKeyEntity>(ApiKeyEntity.KeyFor(id), cancellationToken) : null;

    /// <summary>Whether the key still exists (not revoked) and has not expired at <paramref name="now"/>: what it set up may act.</summary>
    public async Task<bool> IsActiveAsync(TenantId tenant, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        await GetAsync(tenant, id, cancellationToken) is { } key && !key.IsExpired(now);

    /// <summary>Every key of a tenant, oldest first (at most <see cref="ApiKeyOptions.MaxKeysPerTenant"/>).</summary>
    public async Task<IReadOnlyList<ApiKeyEntity>> ListAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var keys = new List<ApiKeyEntity>();
        await foreach (var key in Rows(tenant).QueryAsync<ApiKeyEntity>(ApiKeyEntity.KeyPrefix, cancellationToken: cancellationToken))
        {
            keys.Add(key);
        }

        return keys;
    }

    /// <summary>Creates a key. Inputs must already be validated and the permissions checked against the caller's.</summary>
    public async Task<ApiKeyIssue> CreateAsync(
        TenantId tenant, string createdBy, string name, IReadOnlyList<string> permissions, DateTimeOffset? expiresAt, Actor actor,
        CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var id = Ids.New(time);
        var (secret, hash) = ApiKeyText.NewSecret();

        // The index row is written first: by the time the key row exists, its text can be found.
        var prefix = await ReservePrefixAsync(tenant, id, cancellationToken);
        var key = new ApiKeyEntity
        {
            RowKey = ApiKeyEntity.KeyFor(id),
            Name = name,
            PermissionList = permissions,
            CreatedBy = createdBy,
            CreatedAt = now,
            ExpiresAt = expiresAt,
            Prefix = prefix,
            SecretHash = hash,
        };

        var created = new PlatformEvent("apikey.created", actor, "apikey", id, new Dictionary<string, object?>
        {
            ["name"] = name,
            ["prefix"] = prefix,
            ["permissions"] = permissions,
            ["expiresAt"] = expiresAt,
            ["createdBy"] = createdBy,
        });
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                // The guard row is read before counting and rewritten under its ETag with the new key: a creation that
                // commits between our count and our write changes the guard and fails ours, which then counts again.
                var guard = await Rows(tenant).GetAsync<ApiKeyCreationGuard>(ApiKeyCreationGuard.Key, cancellationToken);
                if (await CountAsync(tenant, cancellationToken) >= options.Value.MaxKeysPerTenant)
                {
                    await DeletePrefixAsync(tenant, prefix, cancellationToken);
                    return new ApiKeyIssue(ApiKeyOutcome.LimitReached);
                }

                var isNew = guard is null;
                guard ??= new ApiKeyCreationGuard();
                guard.LastCreatedAt = now;
                try
                {
                    // The key row is the decisive write (the prefix row before it finds nothing without it): the event
                    // commits with it, its outbox row last.
                    var responses = await events.CommitAsync(Rows(tenant),
                    [
                        isNew ? new TableTransactionAction(TableTransactionActionType.Add, guard) : new TableTransactionAction(TableTransactionActionType.UpdateReplace, guard, guard.ETag),
                        new TableTransactionAction(TableTransactionActionType.Add, key),
                    ], [created], cancellationToken);
                    key.ETag = responses.Value[1].Headers.ETag ?? default;
                    break;
                }
                catch (RequestFailedException ex) when (ex.Status is 409 or 412 && attempt < MaxCreateAttempts)
                {
                    // Another creation won the guard; count again.
                }
            }
        }
        catch
        {
            await DeletePrefixQuietlyAsync(tenant, prefix);
            throw;
        }

        return new ApiKeyIssue(ApiKeyOutcome.Done, key, ApiKeyText.Format(prefix, secret));
    }

    /// <summary>
    /// Gives the key a new text. The replaced text keeps working for <paramref name="grace"/>; a text still in the
    /// grace of an earlier rotation stops at once (a key has one previous text at a time).
    /// </summary>
    public async Task<ApiKeyIssue> RotateAsync(
        TenantId tenant, string id, TimeSpan grace, Actor actor, CancellationToken cancellationToken, Func<ApiKeyEntity, bool>? mayChange = null)
    {
        var key = await GetAsync(tenant, id, cancellationToken);
        if (key is null || key.IsExpired(time.GetUtcNow()))
        {
            return new ApiKeyIssue(key is null ? ApiKeyOutcome.NotFound : ApiKeyOutcome.Expired);
        }

        // A key's creator and permissions never change, so deciding on the first read holds for the retries below.
        if (mayChange?.Invoke(key) == false)
        {
            return new ApiKeyIssue(ApiKeyOutcome.NotPermitted);
        }

        var (secret, hash) = ApiKeyText.NewSecret();
        var prefix = await ReservePrefixAsync(tenant, id, cancellationToken);
        string replaced;
        string? dropped;
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                var now = time.GetUtcNow();
                replaced = key.Prefix;
                dropped = key.PreviousPrefix;
                key.PreviousPrefix = key.Prefix;
                key.PreviousSecretHash = key.SecretHash;
                key.PreviousValidUntil = now + grace;
                key.Prefix = prefix;
                key.SecretHash = hash;
                key.RotatedAt = now;
                try
                {
                    // The decisive write (the new text works from here on): the event commits with it; the dropped
                    // prefix row deleted after it is only cleanup.
                    await events.CommitAsync(Rows(tenant), new TableTransactionAction(TableTransactionActionType.UpdateReplace, key, key.ETag),
                        [new PlatformEvent("apikey.rotated", actor, "apikey", id, new Dictionary<string, object?>
                        {
                            ["prefix"] = new { from = replaced, to = prefix },
                            ["previousValidUntil"] = key.PreviousValidUntil,
                        })],
                        cancellationToken);
                    break;
                }
                catch (RequestFailedException ex) when (ex.Status is 412 or 404 && attempt < MaxAttempts)
                {
                    // Changed (usage, another rotation) or revoked meanwhile: start again from what is stored now.
                    key = await GetAsync(tenant, id, cancellationToken);
                    if (key is null || key.IsExpired(time.GetUtcNow()))
                    {
                        await DeletePrefixAsync(tenant, prefix, cancellationToken);
                        return new ApiKeyIssue(key is null ? ApiKeyOutcome.NotFound : ApiKeyOutcome.Expired);
                    }
                }
            }
        }
        catch
        {
            await DeletePrefixQuietlyAsync(tenant, prefix);
            throw;
        }

        Forget(tenant, id);
        if (dropped is not null)
        {
            await DeletePrefixQuietlyAsync(tenant, dropped);
        }

        return new ApiKeyIssue(ApiKeyOutcome.Done, key, ApiKeyText.Format(prefix, secret));
    }

    /// <summary>
    /// Revokes a key: its row and index rows are deleted, and this instance forgets it at once (others within
    /// <see cref="AuthOptions.RevocationCheckInterval"/>). <paramref name="precondition"/> sees the row before it goes.
    /// </summary>
    public async Task<ApiKeyOutcome> RevokeAsync(
        TenantId tenant, string id, Actor actor, CancellationToken cancellationToken, string? reason = null, Func<ApiKeyEntity, bool>? precondition = null,
        Func<ApiKeyEntity, bool>? mayChange = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            var key = await GetAsync(tenant, id, cancellationToken);
            if (key is null)
            {
                return ApiKeyOutcome.NotFound;
            }

            if (mayChange?.Invoke(key) == false)
            {
                return ApiKeyOutcome.NotPermitted;
            }

            if (precondition?.Invoke(key) == false)
            {
                return ApiKeyOutcome.PreconditionFailed;
            }

            var changes = new Dictionary<string, object?> { ["name"] = key.Name, ["prefix"] = key.Prefix };
            if (reason is not null)
            {
                changes["reason"] = reason;
            }

            try
            {
                // Under the ETag just read: a rotation in between would otherwise leave its new prefix row behind. The
                // delete is the decisive write (the prefix rows deleted after it authenticate nothing without the key
                // row), so the event commits with it.
                await events.CommitAsync(Rows(tenant), new TableTransactionAction(TableTransactionActionType.Delete, key, key.ETag),
                    [new PlatformEvent("apikey.revoked", actor, "apikey", id, changes)], cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                return ApiKeyOutcome.NotFound;
            }
            catch (RequestFailedException ex) when (ex.Status == 412 && attempt < MaxAttempts)
            {
                continue;
            }

            Forget(tenant, id);
            foreach (var prefix in new[] { key.Prefix, key.PreviousPrefix })
            {
                if (prefix is not null)
                {
                    await DeletePrefixQuietlyAsync(tenant, prefix);
                }
            }

            return ApiKeyOutcome.Done;
        }
    }

    /// <summary>Revokes every key a user created (the user is being deleted); returns how many.</summary>
    public Task<int> RevokeAllOfUserAsync(TenantId tenant, string userId, CancellationToken cancellationToken) =>
        RevokeAllOfUserAsync(tenant, userId, Actor.System, cancellationToken);

    public async Task<int> RevokeAllOfUserAsync(TenantId tenant, string userId, Actor actor, CancellationToken cancellationToken)
    {
        var revoked = 0;
        foreach (var key in await ListAsync(tenant, cancellationToken))
        {
            if (key.CreatedBy == userId &&
                await RevokeAsync(tenant, key.Id, actor, cancellationToken, reason: "creator_removed") == ApiKeyOutcome.Done)
            {
                revoked++;
            }
        }

        return revoked;
    }

    /// <summary>
    /// Finds the key a presented text belongs to and checks it: the secret's hash (the current one, or the previous
    /// one within its grace), expiry. Null for anything else - malformed, unknown, rotated out, revoked or expired.
    /// Whether the creator still stands is the caller's to check (<see cref="SessionGuard"/>).
    /// </summary>
    public async Task<ApiKeyIdentity?> AuthenticateAsync(string? text, CancellationToken cancellationToken)
    {
        if (!ApiKeyText.TryParse(text, out var prefix, out var secret) || await FindPrefixAsync(prefix, cancellationToken) is not { } target)
        {
            return null;
        }

        var (tenant, keyId) = target;
        var generation = Generation(tenant, keyId);
        if (!cache.TryGetValue(RowCacheKey(tenant, keyId, generation), out Snapshot? snapshot) || snapshot is null || !snapshot.Names(prefix))
        {
            // Not cached, or cached before a rotation made this prefix: read the row.
            var row = await Rows(tenant).GetAsync<ApiKeyEntity>(ApiKeyEntity.KeyFor(keyId), cancellationToken);
            if (row is null)
            {
                return null;
            }

            snapshot = Snapshot.Of(row);
            if (auth.Value.RevocationCheckInterval > TimeSpan.Zero)
            {
                cache.Set(RowCacheKey(tenant, keyId, generation), snapshot, auth.Value.RevocationCheckInterval);
            }
        }

        var now = time.GetUtcNow();
        var hash = ApiKeyText.Hash(secret);
        var matches = prefix == snapshot.Prefix
            ? ApiKeyText.HashEquals(snapshot.SecretHash, hash)
            : prefix == snapshot.PreviousPrefix && now < snapshot.PreviousValidUntil && ApiKeyText.HashEquals(snapshot.PreviousSecretHash, hash);
        if (!matches || now >= snapshot.ExpiresAt)
        {
            return null;
        }

        return new ApiKeyIdentity(tenant, keyId, snapshot.CreatedBy, snapshot.Permissions, snapshot.ExpiresAt);
    }

    /// <summary>Adds usage to a key row under its ETag: at most one write per key per flush.</summary>
    public async Task<UsageWrite> AddUsageAsync(ApiKeyUsageDelta usage, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var key = await Rows(usage.Tenant).GetAsync<ApiKeyEntity>(ApiKeyEntity.KeyFor(usage.KeyId), cancellationToken);
            if (key is null)
            {
                return UsageWrite.Gone;
            }

            key.UseCount += usage.Count;
            if (key.LastUsedAt is not { } last || usage.LastUsedAt > last)
            {
                key.LastUsedAt = usage.LastUsedAt;
            }

            try
            {
                await Rows(usage.Tenant).UpdateAsync(key, key.ETag, cancellationToken);
                return UsageWrite.Written;
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                return UsageWrite.Gone;
            }
            catch (RequestFailedException ex) when (ex.Status == 412)
            {
                // Rotated or revoked meanwhile: merge into what is stored now.
            }
        }

        return UsageWrite.Contended;
    }

    /// <summary>True for a string shaped like a key id (a ULID), so that no other text reaches a row key.</summary>
    public static bool IsId(string? id) => id is { Length: 26 } && id.All(c => char.IsAsciiDigit(c) || char.IsAsciiLetterUpper(c));

    private async Task<int> CountAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var count = 0;
        await foreach (var _ in Rows(tenant).QueryAsync<ApiKeyEntity>(ApiKeyEntity.KeyPrefix, cancellationToken: cancellationToken))
        {
            count++;
        }

        return count;
    }

    private async Task<string> ReservePrefixAsync(TenantId tenant, string keyId, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var prefix = ApiKeyText.NewPrefix();
            try
            {
                await Prefixes.AddEntityAsync(new ApiKeyPrefixEntity
                {
                    PartitionKey = ApiKeyPrefixEntity.PartitionFor(prefix),
                    RowKey = prefix,
                    TenantId = tenant.Value,
                    KeyId = keyId,
                    CreatedAt = time.GetUtcNow(),
                }, cancellationToken);
                return prefix;
            }
            catch (RequestFailedException ex) when (ex.Status == 409 && attempt < MaxAttempts)
            {
                // 60 random bits collided: draw again.
            }
        }
    }

    private async Task<PrefixTarget?> FindPrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var cacheKey = "apikey-prefix:" + prefix;
        if (cache.TryGetValue(cacheKey, out PrefixTarget? target) && target is not null)
        {
            return target;
        }

        var row = await Prefixes.GetEntityIfExistsAsync<ApiKeyPrefixEntity>(ApiKeyPrefixEntity.PartitionFor(prefix), prefix, cancellationToken: cancellationToken);
        if (!row.HasValue || row.Value is not { } entry || !TenantId.TryParse(entry.TenantId, out var tenant) || !IsId(entry.KeyId))
        {
            // Unknown prefixes are not remembered: anyone can send them, and the cache must not grow with them.
            return null;
        }

        target = new PrefixTarget(tenant, entry.KeyId);
        cache.Set(cacheKey, target, PrefixCacheFor);
        return target;
    }

    /// <summary>
    /// Deletes a prefix row of this tenant's. A row naming another tenant is left alone: a sandbox restored from a
    /// backup holds copies of the key rows, naming the prefixes of the tenant it was copied from, and revoking or
    /// rotating such a copy must never end the original key.
    /// </summary>
    private async Task DeletePrefixAsync(TenantId tenant, string prefix, CancellationToken cancellationToken)
    {
        cache.Remove("apikey-prefix:" + prefix);
        var row = await Prefixes.GetEntityIfExistsAsync<ApiKeyPrefixEntity>(ApiKeyPrefixEntity.PartitionFor(prefix), prefix, cancellationToken: cancellationToken);
        if (!row.HasValue || row.Value!.TenantId != tenant.Value)
        {
            return;
        }

        try
        {
            await Prefixes.DeleteEntityAsync(ApiKeyPrefixEntity.PartitionFor(prefix), prefix, row.Value.ETag, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
            // Gone, or written again meanwhile: a prefix row is only ever rewritten by its own reservation, never reused.
        }
    }

    /// <summary>Cleanup after the decisive write: a failure only leaves a row that authenticates nothing.</summary>
    private async Task DeletePrefixQuietlyAsync(TenantId tenant, string prefix)
    {
        try
        {
            await DeletePrefixAsync(tenant, prefix, CancellationToken.None);
        }
        catch (RequestFailedException ex)
        {
            LogPrefixLeft(logger, ex, prefix);
        }
    }

    /// <summary>Makes this instance read the key row again on its next use.</summary>
    private void Forget(TenantId tenant, string keyId) => cache.Remove(GenerationKey(tenant, keyId));

    // The generation is part of the row's cache key and is taken before the row is read, so a request that read the
    // row just before a rotation or revocation on this instance caches it under a generation nobody asks for again.
    private int Generation(TenantId tenant, string keyId) =>
        cache.GetOrCreate(GenerationKey(tenant, keyId), entry =>
        {
            entry.AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(10);
            return Interlocked.Increment(ref _generations);
        });

    private static string GenerationKey(TenantId tenant, string keyId) => $"apikey-generation:{tenant.Value}:{keyId}";

    private static string RowCacheKey(TenantId tenant, string keyId, int generation) => $"apikey-row:{tenant.Value}:{keyId}:{generation}";

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not delete API key prefix row {Prefix}; it authenticates nothing and stays behind")]
    private static partial void LogPrefixLeft(ILogger logger, Exception exception, string prefix);

    private sealed record PrefixTarget(TenantId Tenant, string KeyId);

    /// <summary>What authentication needs of a key row; immutable, so cached copies are shared safely.</summary>
    private sealed record Snapshot(
        string Prefix,
        string SecretHash,
        string? PreviousPrefix,
        string? PreviousSecretHash,
        DateTimeOffset? PreviousValidUntil,
        DateTimeOffset? ExpiresAt,
        string CreatedBy,
        IReadOnlyList<string> Permissions)
    {
        public static Snapshot Of(ApiKeyEntity key) => new(
            key.Prefix, key.SecretHash, key.PreviousPrefix, key.PreviousSecretHash, key.PreviousValidUntil, key.ExpiresAt, key.CreatedBy, key.PermissionList);

        public bool Names(string prefix) => prefix == Prefix || prefix == PreviousPrefix;
    }
}
