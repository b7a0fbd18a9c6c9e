using System.Runtime.Serialization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Events;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// One sign-in: row <c>{userId}:{sessionId}</c> in the tenant's partition of the <c>sessions</c> table, so a user's
/// sessions are one key range. It holds the hash of the current refresh token and its generation: every refresh
/// counts the generation up, so any token of a lower generation is one already spent.
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

    /// <summary>How often the session was refreshed: the generation of its current refresh token (0 at sign-in).</summary>
    public long Generation { get; set; }

    /// <summary>
    /// Hashes of spent refresh tokens of the format before generations (rows written before it): still checked so a
    /// replayed old token revokes its session. New rotations add nothing here.
    /// </summary>
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
/// Creates, refreshes and revokes sessions. Refresh tokens are <c>{tenant}.{user}.{session}.{generation}.{secret}</c>;
/// the secret is 256 random bits followed by a 128-bit HMAC tag over everything before it (key derived from the
/// data-encryption key), and only the SHA-256 of the secret is stored. Every refresh rotates the token and counts
/// the generation up under the session's ETag. A token of an earlier generation whose tag is genuine was issued by
/// us and spent: presenting it revokes the whole session, however many rotations ago it was spent and however
/// recently - of two refreshes racing with one token, one wins and the other is reuse. The tag keeps anyone who only
/// knows a session's id (it is in access tokens and the audit trail) from forging an "old" token to end it.
/// </summary>
public sealed class Sessions(
    StorageAccount storage, Expirations expirations, SessionGuard guard, KeyMaterial keys, EventPublisher events, IOptions<AuthOptions> options, TimeProvider time)
{
    public const string TableName = "sessions";
    private const int MaxSpentHashes = 50;
    private const int SecretBytes = 32;
    private const int TagBytes = 16;
    public const int MaxUserAgentLength = 256;

    private readonly byte[] _tagKey = keys.DeriveKey("platform/refresh-token-tag");

    private AuthOptions Settings => options.Value;

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <remarks>
    /// Sessions over <see cref="AuthOptions.MaxSessionsPerUser"/> (the oldest) are deleted, not marked revoked: a
    /// row kept for an evicted session would only lengthen the next sign-in's read of the user's sessions.
    /// </remarks>
    /// <param name="started">The event of the sign-in, given the new session's id: it commits with the session row.</param>
    public async Task<(SessionEntity Session, string RefreshToken)> StartAsync(
        TenantId tenant, string userId, string? userAgent, string? ip, CancellationToken cancellationToken, Func<string, PlatformEvent>? started = null)
    {
        var now = time.GetUtcNow();
        var active = (await ListAsync(tenant, userId, cancellationToken)).OrderBy(s => s.CreatedAt).ToList();
        foreach (var oldest in active.Take(Math.Max(0, active.Count - Settings.MaxSessionsPerUser + 1)))
        {
            guard.Forget(tenant, userId, oldest.Id);
            try
            {
                await Rows(tenant).DeleteAsync(oldest.RowKey, ETag.All, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
            }
        }

        var rowKey = SessionEntity.KeyFor(userId, Ids.New(time));
        var (token, hash) = NewToken(tenant, rowKey, generation: 0);
        var session = new SessionEntity
        {
            RowKey = rowKey,
            CreatedAt = now,
            LastSeenAt = now,
            ExpiresAt = now + Settings.SessionAbsoluteLifetime,
            UserAgent = userAgent is { Length: > MaxUserAgentLength } ? userAgent[..MaxUserAgentLength] : userAgent,
            Ip = ip,
            RefreshHash = hash,
        };

        // Scheduled once: when the entry comes due, SessionExpiry deletes the session if it went idle or ended, and
        // otherwise schedules it again for its new idle deadline (at most one write per idle timeout, not per refresh).
        await expirations.ScheduleAsync(TableName, tenant, session.RowKey, SessionExpiry.DueAt(session.ExpiresAt, session.LastSeenAt, null, Settings), cancellationToken);
        if (started is null)
        {
            await Rows(tenant).AddAsync(session, cancellationToken);
        }
        else
        {
            await events.CommitAsync(Rows(tenant), new TableTransactionAction(TableTransactionActionType.Add, session), [started(session.Id)], cancellationToken);
        }

        return (session, token);
    }

    /// <summary>The user's active sessions.</summary>
    /// <remarks>
    /// Ended, idle and revoked rows are deleted by housekeeping within minutes of ending, and the filter keeps those
    /// still waiting for it from being read at all (revoked ones cannot be told apart in a filter, as an unset
    /// property matches no comparison; they are few, as revocation schedules their deletion at once).
    /// </remarks>
    public async Task<IReadOnlyList<SessionEntity>> ListAsync(TenantId tenant, string userId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var from = userId + ":";
        var to = userId + ";";
        var seenAfter = now - Settings.SessionIdleTimeout;
        var sessions = new List<SessionEntity>();
        await foreach (var session in Rows(tenant).QueryWhereAsync<SessionEntity>(
            $"RowKey ge {from} and RowKey lt {to} and ExpiresAt gt {now} and LastSeenAt gt {seenAfter}", cancellationToken: cancellationToken))
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

    /// <param name="ip">The presenter's address, for the <c>auth.refresh_token.reused</c> event a reuse commits with the session's revocation.</param>
    public async Task<RefreshResult> RefreshAsync(
        string? refreshToken, UserEntity? user, TenantId tenant, SessionEntity session, string presentedHash, string? ip, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (!session.IsActive(now, Settings.SessionIdleTimeout) || user is not { IsActive: true } || refreshToken is null)
        {
            return new(RefreshOutcome.Invalid);
        }

        var generation = GenerationOf(refreshToken);
        var current = FixedTimeEquals(session.RefreshHash, presentedHash) && (generation ?? 0) == session.Generation;
        if (!current)
        {
            // No grace period: a retry of a refresh whose answer was lost looks exactly like a thief's replay, and
            // telling them apart by timing would give a thief who is quick a free pass.
            if (IsSpent(tenant, session, refreshToken, generation, presentedHash))
            {
                await RevokeAsync(tenant, session, cancellationToken, [Reused(session, ip)]);
                return new(RefreshOutcome.Reused, session);
            }

            return new(RefreshOutcome.Invalid);
        }

        var next = session.Generation + 1;
        var (token, hash) = NewToken(tenant, session.RowKey, next);
        if (generation is null)
        {
            // The first rotation of a token of the older format: remember it, as its format carries no generation.
            var history = JsonSerializer.Deserialize<List<string>>(session.SpentHashes) ?? [];
            history.Add(session.RefreshHash);
            session.SpentHashes = JsonSerializer.Serialize(history.TakeLast(MaxSpentHashes));
        }

        session.RefreshHash = hash;
        session.Generation = next;
        session.LastSeenAt = now;
        try
        {
            await Rows(tenant).UpdateAsync(session, session.ETag, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            // Deleted meanwhile (evicted by a sign-in over the cap, or ended and removed by housekeeping).
            return new(RefreshOutcome.Invalid);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            // Another refresh with the same token won the race, so this token is spent: that is reuse like any other
            // (the contract has clients refresh one at a time). A change of another kind (a revocation) is not.
            var latest = await Rows(tenant).GetAsync<SessionEntity>(session.RowKey, cancellationToken);
            if (latest is not null && latest.IsActive(time.GetUtcNow(), Settings.SessionIdleTimeout) && !FixedTimeEquals(latest.RefreshHash, presentedHash))
            {
                await RevokeAsync(tenant, latest, cancellationToken, [Reused(latest, ip)]);
                return new(RefreshOutcome.Reused, latest);
            }

            return new(RefreshOutcome.Invalid);
        }

        return new(RefreshOutcome.Refreshed, session, token);
    }

    private static PlatformEvent Reused(SessionEntity session, string? ip) =>
        new("auth.refresh_token.reused", Actor.Anonymous(ip), "session", session.Id,
            new Dictionary<string, object?> { ["userId"] = session.UserId, ["sessionRevoked"] = true });

    /// <summary>Whether a token that is not the session's current one is a genuine earlier one of this session.</summary>
    private bool IsSpent(TenantId tenant, SessionEntity session, string refreshToken, long? generation, string presentedHash)
    {
        if (generation is { } g)
        {
            // Parse let only base64url characters through; 64 of them are exactly the 48 bytes of secret and tag.
            var text = refreshToken[(refreshToken.LastIndexOf('.') + 1)..];
            if (g >= session.Generation || text.Length != 64)
            {
                return false;
            }

            var secret = Base64UrlEncoder.DecodeBytes(text);
            return secret.Length == SecretBytes + TagBytes &&
                CryptographicOperations.FixedTimeEquals(secret.AsSpan(SecretBytes), Tag(tenant, session.RowKey, g, secret.AsSpan(0, SecretBytes)));
        }

        var spent = JsonSerializer.Deserialize<List<string>>(session.SpentHashes) ?? [];
        var found = false;
        foreach (var hash in spent)
        {
            found |= FixedTimeEquals(hash, presentedHash);
        }

        return found;
    }

    /// <summary>Parses a refresh token; null when it is not one of ours.</summary>
    /// <remarks>Tokens issued before generations have four parts (no generation); they keep working.</remarks>
    public static (TenantId Tenant, string UserId, string SessionId, string Hash)? Parse(string? token)
    {
        var parts = token?.Split('.');
        if (parts is not { Length: 4 or 5 } || !TenantId.TryParse(parts[0], out var tenant) || parts[1].Length is 0 or > 64 || parts[2].Length is 0 or > 64 ||
            !parts[1].All(char.IsAsciiLetterOrDigit) || !parts[2].All(char.IsAsciiLetterOrDigit) || parts[^1].Length is < 40 or > 64 ||
            !parts[^1].All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_') || (parts.Length == 5 && GenerationOf(token!) is null))
        {
            return null;
        }

        return (tenant, parts[1], parts[2], Hash(parts[^1]));
    }

    /// <summary>The generation a token carries; null for the older four-part format (or a malformed number).</summary>
    private static long? GenerationOf(string token)
    {
        var parts = token.Split('.');
        return parts.Length == 5 && parts[3].Length is > 0 and <= 18 && parts[3].All(char.IsAsciiDigit) &&
            long.TryParse(parts[3], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var generation)
            ? generation
            : null;
    }

    /// <remarks>
    /// The revoked row is deleted by housekeeping at its next run: a row kept longer would serve nothing (a refresh
    /// of a missing session fails exactly like one of a revoked session) and would be read by every sign-in.
    /// </remarks>
    /// <param name="happened">
    /// Events of the revocation: they commit with the write that revokes the row, or, when there is none to make (the
    /// session was already revoked or is gone), are published on their own. Either way exactly once.
    /// </param>
    public async Task RevokeAsync(TenantId tenant, SessionEntity session, CancellationToken cancellationToken, IReadOnlyList<PlatformEvent>? happened = null)
    {
        var committed = false;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            if (session.RevokedAt is not null)
            {
                break;
            }

            var now = time.GetUtcNow();
            session.RevokedAt = now;
            try
            {
                // Scheduled before the row becomes deletable; should the revocation not be written, SessionExpiry
                // finds the row still active and schedules it for its own end instead.
                await expirations.ScheduleAsync(TableName, tenant, session.RowKey, now, cancellationToken);
                if (happened is { Count: > 0 })
                {
                    await events.CommitAsync(Rows(tenant), new TableTransactionAction(TableTransactionActionType.UpdateReplace, session, session.ETag), happened, cancellationToken);
                    committed = true;
                }
                else
                {
                    await Rows(tenant).UpdateAsync(session, session.ETag, cancellationToken);
                }

                break;
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                // Deleted meanwhile (evicted by a sign-in over the cap, or by housekeeping): ended all the same.
                break;
            }
            catch (RequestFailedException ex) when (ex.Status == 412)
            {
                session = await Rows(tenant).GetAsync<SessionEntity>(session.RowKey, cancellationToken) ?? session;
            }
        }

        guard.Forget(tenant, session.UserId, session.Id);
        if (!committed && happened is { Count: > 0 })
        {
            // No row to write it with (revoked meanwhile, or gone): an event that changes no row.
            await events.PublishManyAsync(tenant, happened, cancellationToken);
        }
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

    /// <summary>
    /// Ends every active session of the tenant: after a restore over it, who may act and how they sign in (passwords,
    /// roles, MFA) are what the backup says, so everyone signs in again. Returns how many were ended.
    /// </summary>
    public async Task<int> RevokeEveryoneAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var seenAfter = now - Settings.SessionIdleTimeout;
        var active = new List<SessionEntity>();
        await foreach (var session in Rows(tenant).QueryWhereAsync<SessionEntity>($"ExpiresAt gt {now} and LastSeenAt gt {seenAfter}", cancellationToken: cancellationToken))
        {
            if (session.IsActive(now, Settings.SessionIdleTimeout))
            {
                active.Add(session);
            }
        }

        foreach (var session in active)
        {
            await RevokeAsync(tenant, session, cancellationToken);
        }

        return active.Count;
    }

    /// <summary>Deletes every session row of a user, ended or not (purge: the rows hold user agents and addresses).</summary>
    public async Task DeleteAllAsync(TenantId tenant, string userId, CancellationToken cancellationToken)
    {
        await foreach (var session in Rows(tenant).QueryAsync<SessionEntity>(userId + ":", cancellationToken: cancellationToken))
        {
            guard.Forget(tenant, userId, session.Id);
            try
            {
                await Rows(tenant).DeleteAsync(session.RowKey, cancellationToken: cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                // Housekeeping was there first.
            }
        }
    }

    /// <summary>A refresh token of a generation, and the hash of its secret to store.</summary>
    private (string Token, string Hash) NewToken(TenantId tenant, string rowKey, long generation)
    {
        var secret = new byte[SecretBytes + TagBytes];
        RandomNumberGenerator.Fill(secret.AsSpan(0, SecretBytes));
        Tag(tenant, rowKey, generation, secret.AsSpan(0, SecretBytes)).CopyTo(secret.AsSpan(SecretBytes));
        var text = Base64UrlEncoder.Encode(secret);
        var separator = rowKey.IndexOf(':', StringComparison.Ordinal);
        return ($"{tenant.Value}.{rowKey[..separator]}.{rowKey[(separator + 1)..]}.{generation.ToString(System.Globalization.CultureInfo.InvariantCulture)}.{text}", Hash(text));
    }

    /// <summary>The tag that proves we issued the token of this session and generation with this random part.</summary>
    private byte[] Tag(TenantId tenant, string rowKey, long generation, ReadOnlySpan<byte> random)
    {
        var label = Encoding.UTF8.GetBytes($"{tenant.Value}|{rowKey}|{generation.ToString(System.Globalization.CultureInfo.InvariantCulture)}|");
        var message = new byte[label.Length + random.Length];
        label.CopyTo(message, 0);
        random.CopyTo(message.AsSpan(label.Length));
        return HMACSHA256.HashData(_tagKey, message)[..TagBytes];
    }

    private static string Hash(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));
}

/// <summary>
/// When a session row goes: at revocation, at its absolute end, or once it has been idle for the idle timeout. The
/// idle deadline moves with every refresh, so the entry scheduled at sign-in is scheduled again for the new deadline
/// when it comes due while the session is still in use.
/// </summary>
internal sealed class SessionExpiry(IOptions<AuthOptions> options) : IRowExpiry
{
    public string Table => Sessions.TableName;

    public DateTimeOffset? DueAt(TableEntity row, string? tag) =>
        DueAt(
            row.GetDateTimeOffset(nameof(SessionEntity.ExpiresAt)).GetValueOrDefault(),
            row.GetDateTimeOffset(nameof(SessionEntity.LastSeenAt)).GetValueOrDefault(),
            row.GetDateTimeOffset(nameof(SessionEntity.RevokedAt)),
            options.Value);

    public static DateTimeOffset DueAt(DateTimeOffset expiresAt, DateTimeOffset lastSeenAt, DateTimeOffset? revokedAt, AuthOptions settings)
    {
        var end = lastSeenAt + settings.SessionIdleTimeout < expiresAt ? lastSeenAt + settings.SessionIdleTimeout : expiresAt;
        return revokedAt is { } revoked && revoked < end ? revoked : end;
    }
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
