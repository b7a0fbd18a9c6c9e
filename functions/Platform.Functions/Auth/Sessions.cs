using System.Runtime.Serialization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// One sign-in: row <c>{userId}:{sessionId}</c> in the tenant's partition of the <c>sessions</c> table, so a user's
/// sessions are one key range. It holds the hash of the current refresh token and of the ones already spent.
/// </summary>
public sealed class SessionEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset LastSeenAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public string? UserAgent { get; set; }
    public string? Ip { get; set; }
    public string RefreshHash { get; set; } = "";

    /// <summary>Hashes of refresh tokens already exchanged, newest last: presenting one again is theft.</summary>
    public string SpentHashes { get; set; } = "[]";

    public DateTimeOffset? RevokedAt { get; set; }

    [IgnoreDataMember]
    public string UserId => RowKey[..RowKey.IndexOf(':', StringComparison.Ordinal)];

    [IgnoreDataMember]
    public string Id => RowKey[(RowKey.IndexOf(':', StringComparison.Ordinal) + 1)..];

    public static string KeyFor(string userId, string sessionId) => $"{userId}:{sessionId}";

    public bool IsActive(DateTimeOffset now, TimeSpan idleTimeout) => RevokedAt is null && now < ExpiresAt && now < LastSeenAt + idleTimeout;
}

public enum RefreshOutcome
{
    Refreshed,
    Invalid,
    Reused,
}

public sealed record RefreshResult(RefreshOutcome Outcome, SessionEntity? Session = null, string? RefreshToken = null);

/// <summary>
/// Creates, refreshes and revokes sessions. Refresh tokens are <c>{tenant}.{user}.{session}.{secret}</c> with a
/// 256-bit secret; only the SHA-256 of the secret is stored. Every refresh rotates the token under the session's
/// ETag, so of two refreshes racing with one token exactly one wins; a spent token presented again revokes the
/// whole session.
/// </summary>
public sealed class Sessions(StorageAccount storage, Expirations expirations, SessionGuard guard, IOptions<AuthOptions> options, TimeProvider time)
{
    public const string TableName = "sessions";
    private const int MaxSpentHashes = 50;
    private static readonly TimeSpan ReuseGrace = TimeSpan.FromSeconds(30);
    public const int MaxUserAgentLength = 256;

    private AuthOptions Settings => options.Value;

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    public async Task<(SessionEntity Session, string RefreshToken)> StartAsync(TenantId tenant, string userId, string? userAgent, string? ip, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var active = (await ListAsync(tenant, userId, cancellationToken)).OrderBy(s => s.CreatedAt).ToList();
        foreach (var oldest in active.Take(Math.Max(0, active.Count - Settings.MaxSessionsPerUser + 1)))
        {
            await RevokeAsync(tenant, oldest, cancellationToken);
        }

        var (secret, hash) = NewSecret();
        var session = new SessionEntity
        {
            RowKey = SessionEntity.KeyFor(userId, Ids.New(time)),
            CreatedAt = now,
            LastSeenAt = now,
            ExpiresAt = now + Settings.SessionAbsoluteLifetime,
            UserAgent = userAgent is { Length: > MaxUserAgentLength } ? userAgent[..MaxUserAgentLength] : userAgent,
            Ip = ip,
            RefreshHash = hash,
        };
        await expirations.ScheduleAsync(TableName, tenant, session.RowKey, session.ExpiresAt, cancellationToken);
        await Rows(tenant).AddAsync(session, cancellationToken);
        return (session, Token(tenant, session, secret));
    }

    public async Task<IReadOnlyList<SessionEntity>> ListAsync(TenantId tenant, string userId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var sessions = new List<SessionEntity>();
        await foreach (var session in Rows(tenant).QueryAsync<SessionEntity>(userId + ":", cancellationToken: cancellationToken))
        {
            if (session.IsActive(now, Settings.SessionIdleTimeout))
            {
                sessions.Add(session);
            }
        }

        return sessions;
    }

    public Task<SessionEntity?> GetAsync(TenantId tenant, string userId, string sessionId, CancellationToken cancellationToken) =>
        Rows(tenant).GetAsync<SessionEntity>(SessionEntity.KeyFor(userId, sessionId), cancellationToken);

    public async Task<RefreshResult> RefreshAsync(string? refreshToken, UserEntity? user, TenantId tenant, SessionEntity session, string presentedHash, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (!session.IsActive(now, Settings.SessionIdleTimeout) || user is not { IsActive: true } || refreshToken is null)
        {
            return new(RefreshOutcome.Invalid);
        }

        if (!FixedTimeEquals(session.RefreshHash, presentedHash))
        {
            var spent = JsonSerializer.Deserialize<List<string>>(session.SpentHashes) ?? [];

            // The token rotated moments ago: most likely the same client retrying or a second tab racing, not theft.
            // It gets nothing, but the session (and the pair the first refresh returned) survives.
            if (spent.Count > 0 && FixedTimeEquals(spent[^1], presentedHash) && now - session.LastSeenAt < ReuseGrace)
            {
                return new(RefreshOutcome.Invalid);
            }

            if (spent.Any(h => FixedTimeEquals(h, presentedHash)))
            {
                await RevokeAsync(tenant, session, cancellationToken);
                return new(RefreshOutcome.Reused, session);
            }

            return new(RefreshOutcome.Invalid);
        }

        var (secret, hash) = NewSecret();
        var history = JsonSerializer.Deserialize<List<string>>(session.SpentHashes) ?? [];
        history.Add(session.RefreshHash);
        session.SpentHashes = JsonSerializer.Serialize(history.TakeLast(MaxSpentHashes));
        session.RefreshHash = hash;
        session.LastSeenAt = now;
        try
        {
            await Rows(tenant).UpdateAsync(session, session.ETag, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            // Another refresh with the same token won the race; this one gets nothing.
            return new(RefreshOutcome.Invalid);
        }

        return new(RefreshOutcome.Refreshed, session, Token(tenant, session, secret));
    }

    /// <summary>Parses a refresh token; null when it is not one of ours.</summary>
    public static (TenantId Tenant, string UserId, string SessionId, string Hash)? Parse(string? token)
    {
        var parts = token?.Split('.');
        if (parts is not { Length: 4 } || !TenantId.TryParse(parts[0], out var tenant) || parts[1].Length is 0 or > 64 || parts[2].Length is 0 or > 64 ||
            !parts[1].All(char.IsAsciiLetterOrDigit) || !parts[2].All(char.IsAsciiLetterOrDigit) || parts[3].Length is < 40 or > 64)
        {
            return null;
        }

        return (tenant, parts[1], parts[2], Hash(parts[3]));
    }

    public async Task RevokeAsync(TenantId tenant, SessionEntity session, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            if (session.RevokedAt is not null)
            {
                break;
            }

            session.RevokedAt = time.GetUtcNow();
            try
            {
                await Rows(tenant).UpdateAsync(session, session.ETag, cancellationToken);
                break;
            }
            catch (RequestFailedException ex) when (ex.Status == 412)
            {
                session = await Rows(tenant).GetAsync<SessionEntity>(session.RowKey, cancellationToken) ?? session;
            }
        }

        guard.Forget(tenant, session.UserId, session.Id);
    }

    /// <summary>Ends every session of a user (password reset, MFA change, deletion), optionally sparing one.</summary>
    public async Task RevokeAllAsync(TenantId tenant, string userId, string? exceptSessionId, CancellationToken cancellationToken)
    {
        foreach (var session in await ListAsync(tenant, userId, cancellationToken))
        {
            if (session.Id != exceptSessionId)
            {
                await RevokeAsync(tenant, session, cancellationToken);
            }
        }
    }

    /// <summary>Deletes every session row of a user, ended or not (purge: the rows hold user agents and addresses).</summary>
    public async Task DeleteAllAsync(TenantId tenant, string userId, CancellationToken cancellationToken)
    {
        await foreach (var session in Rows(tenant).QueryAsync<SessionEntity>(userId + ":", cancellationToken: cancellationToken))
        {
            guard.Forget(tenant, userId, session.Id);
            await Rows(tenant).DeleteAsync(session.RowKey, cancellationToken: cancellationToken);
        }
    }

    private static string Token(TenantId tenant, SessionEntity session, string secret) => $"{tenant.Value}.{session.UserId}.{session.Id}.{secret}";

    private static (string Secret, string Hash) NewSecret()
    {
        var secret = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        return (secret, Hash(secret));
    }

    private static string Hash(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));
}

/// <summary>
/// Answers "does this access token's session still stand?" on every authenticated request. What it read about a
/// session and its user is kept in memory for <see cref="AuthOptions.RevocationCheckInterval"/> (30 s at most), so
/// a request costs no storage read in the common case and a revocation elsewhere takes effect within that time;
/// the instance that revokes forgets its entry at once.
/// </summary>
public sealed class SessionGuard(StorageAccount storage, UserDirectory users, IMemoryCache cache, IOptions<AuthOptions> options, TimeProvider time)
{
    /// <summary>What a request needs to know about its caller: whether the session and user stand, and the user's roles.</summary>
    public sealed record Standing(bool SessionActive, bool UserActive, IReadOnlyList<string> Roles)
    {
        public bool IsValid => SessionActive && UserActive;
    }

    /// <remarks>
    /// Nothing per token needs checking beyond this: every event that must cut tokens (logout, reset, MFA change,
    /// deletion, lock) either revokes the sessions or deactivates the user.
    /// </remarks>
    public async Task<bool> IsValidAsync(Caller caller, CancellationToken cancellationToken) =>
        (await GetStandingAsync(caller, cancellationToken)).IsValid;

    public async Task<Standing> GetStandingAsync(Caller caller, CancellationToken cancellationToken)
    {
        // A revocation made here is final for this instance, even if a request that read the row just before the
        // revocation caches what it read afterwards.
        if (cache.TryGetValue(RevokedKey(caller.Tenant, caller.UserId, caller.SessionId), out _))
        {
            return new Standing(false, false, []);
        }

        var key = CacheKey(caller.Tenant, caller.UserId, caller.SessionId);
        if (cache.TryGetValue(key, out Standing? standing) && standing is not null)
        {
            return standing;
        }

        // Entra ID sign-ins and API keys have no Platform session row: only the user's standing counts for them
        // (an API key's own validity is checked where the key is authenticated).
        var sessionless = caller.SessionId.StartsWith(Entra.SessionPrefix, StringComparison.Ordinal) ||
            caller.SessionId.StartsWith(SessionlessPrefix, StringComparison.Ordinal);
        var sessionRow = sessionless ? null : await storage.TenantTable(Sessions.TableName).For(caller.Tenant)
            .GetAsync<SessionEntity>(SessionEntity.KeyFor(caller.UserId, caller.SessionId), cancellationToken);
        var userRow = await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken);
        standing = new Standing(
            sessionless || sessionRow?.IsActive(time.GetUtcNow(), options.Value.SessionIdleTimeout) == true,
            userRow?.IsActive == true,
            userRow?.RoleList ?? []);
        cache.Set(key, standing, options.Value.RevocationCheckInterval);
        return standing;
    }

    private static int _generations;

    /// <summary>Session ids of callers that sign in without a session (API keys) start with this.</summary>
    public const string SessionlessPrefix = "apikey:";

    /// <summary>Marks a session revoked on this instance at once; other instances learn it within the check interval.</summary>
    public void Forget(TenantId tenant, string userId, string sessionId)
    {
        cache.Set(RevokedKey(tenant, userId, sessionId), true, options.Value.RevocationCheckInterval + TimeSpan.FromSeconds(1));
        cache.Remove(CacheKey(tenant, userId, sessionId));
    }

    private static string RevokedKey(TenantId tenant, string userId, string sessionId) => $"revoked:{tenant.Value}:{userId}:{sessionId}";

    /// <summary>Forgets every cached standing of a user on this instance (after a change to the user row).</summary>
    public void ForgetUser(TenantId tenant, string userId) => cache.Remove(UserGenerationKey(tenant, userId));

    private string CacheKey(TenantId tenant, string userId, string sessionId) =>
        $"session:{tenant.Value}:{userId}:{sessionId}:{Generation(tenant, userId)}";

    private int Generation(TenantId tenant, string userId) =>
        cache.GetOrCreate(UserGenerationKey(tenant, userId), entry =>
        {
            entry.AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(10);
            return Interlocked.Increment(ref _generations);
        });

    private static string UserGenerationKey(TenantId tenant, string userId) => $"user-generation:{tenant.Value}:{userId}";
}
