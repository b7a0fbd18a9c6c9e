using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;

namespace Platform.Functions.Auth;

/// <summary>
/// Password attempts per account (tenant + email, whether or not such a user exists, so the answer reveals nothing).
/// <see cref="AuthOptions.LockoutThreshold"/> attempts within <see cref="AuthOptions.LockoutWindow"/> lock the
/// account; each further lockout doubles, up to <see cref="AuthOptions.MaxLockout"/>, until a successful sign-in.
/// </summary>
/// <remarks>
/// An attempt is counted (<see cref="ReserveAsync"/>) before its password is checked, in one conditional write of the
/// account's row. Counting after the check let any number of guesses sent at once pass the lock test before the first
/// of them was counted, and a right guess that arrived after the lock answered differently from a wrong one. Now the
/// attempt that reaches the threshold sets the lock itself, so of guesses sent at once at most the threshold are ever
/// checked and every other one is refused before anything about its password is known. A right password gives its
/// attempt back (<see cref="ReleaseAsync"/>) or, on a full sign-in, clears the row (<see cref="ClearAsync"/>).
/// A row is scheduled for deletion once, when it is created (<see cref="LockoutExpiry"/> decides when it is really
/// due), so rows of accounts nobody signs in to again do not stay forever.
/// </remarks>
public sealed class Lockouts(StorageAccount storage, Expirations expirations, IOptions<AuthOptions> options, TimeProvider time)
{
    public const string TableName = "lockouts";

    // Each round of a conflict is won by one writer, and once the account is locked the others stop writing, so a
    // burst settles within a few rounds; the bound only keeps a pathological storm from holding a request forever.
    private const int MaxWriteAttempts = 100;

    private TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>
    /// Counts one attempt before its check. Refused (<see cref="AttemptReservation.LockedFor"/> set) while the account is
    /// locked; otherwise the caller checks the password, and the attempt stays a failure unless it is released or cleared.
    /// </summary>
    /// <exception cref="LockoutContendedException">The row stayed contended past every retry (answers 503 busy).</exception>
    public async Task<AttemptReservation> ReserveAsync(TenantId tenant, string normalizedEmail, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var now = time.GetUtcNow();
            var row = await Rows(tenant).GetAsync<LockoutEntity>(normalizedEmail, cancellationToken);
            if (row is null)
            {
                // Scheduled before the row exists (an entry whose row never gets written finds none, or one of
                // another tag, and is dropped); the earliest it can be due is when its first window ends.
                row = new LockoutEntity { RowKey = normalizedEmail, WindowStartedAt = now, Epoch = NewEpoch(), ExpiryTag = Ids.New(time) };
                await expirations.ScheduleAsync(TableName, tenant, normalizedEmail, now + settings.LockoutWindow, cancellationToken, row.ExpiryTag);
            }

            if (row.LockedUntil is { } until && until > now)
            {
                return new AttemptReservation(until - now, null, 0, default);
            }

            if (now - row.WindowStartedAt > settings.LockoutWindow)
            {
                row.Failures = 0;
                row.WindowStartedAt = now;
                row.Epoch++;
            }

            var before = new Counted(row.Failures, row.WindowStartedAt, row.Lockouts, row.LockedUntil);
            row.Failures++;
            TimeSpan? lockout = null;
            if (row.Failures >= settings.LockoutThreshold)
            {
                row.Lockouts++;
                var growth = Math.Pow(2, Math.Min(row.Lockouts - 1, 20));
                lockout = TimeSpan.FromTicks((long)Math.Min(settings.FirstLockout.Ticks * growth, settings.MaxLockout.Ticks));
                row.LockedUntil = now + lockout.Value;
                row.Failures = 0;
                row.WindowStartedAt = now;
                row.Epoch++;
            }

            if (await TryWriteAsync(tenant, row, cancellationToken))
            {
                return new AttemptReservation(null, lockout, row.Epoch, before);
            }

            await BackOffAsync(attempt, cancellationToken);
        }

        // Not counted, so not checked either: the caller answers busy without looking at the password.
        throw new LockoutContendedException();
    }

    /// <summary>
    /// Gives back an attempt whose password was right but that did not end in a sign-in (a code is still needed, or it
    /// only confirmed the password of a signed-in user). If the attempt had started a lockout, the lockout is undone.
    /// Nothing happens when the count has moved on meanwhile (a new window, another lockout, or a sign-in cleared it).
    /// </summary>
    public async Task ReleaseAsync(TenantId tenant, string normalizedEmail, AttemptReservation reservation, CancellationToken cancellationToken)
    {
        if (reservation.LockedFor is not null || reservation.Before is not { } before)
        {
            return;
        }

        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var row = await Rows(tenant).GetAsync<LockoutEntity>(normalizedEmail, cancellationToken);
            if (row is null || row.Epoch != reservation.Epoch)
            {
                return;
            }

            if (reservation.StartedLockout is not null)
            {
                row.Failures = before.Failures;
                row.WindowStartedAt = before.WindowStartedAt;
                row.Lockouts = before.Lockouts;
                row.LockedUntil = before.LockedUntil;
                // A new epoch, not the old one: attempts counted before the lock were counted in what is now undone.
                row.Epoch++;
            }
            else if (row.Failures > 0)
            {
                row.Failures--;
            }
            else
            {
                return;
            }

            if (await TryWriteAsync(tenant, row, cancellationToken))
            {
                return;
            }

            await BackOffAsync(attempt, cancellationToken);
        }

        // Past every retry the attempt simply stays counted: the safe side.
    }

    public async Task ClearAsync(TenantId tenant, string normalizedEmail, CancellationToken cancellationToken)
    {
        try
        {
            await Rows(tenant).DeleteAsync(normalizedEmail, cancellationToken: cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
        }
    }

    /// <summary>Writes under the row's ETag (insert when new); false when another request changed the row first.</summary>
    private async Task<bool> TryWriteAsync(TenantId tenant, LockoutEntity row, CancellationToken cancellationToken)
    {
        try
        {
            if (row.ETag == default)
            {
                await Rows(tenant).AddAsync(row, cancellationToken);
            }
            else
            {
                await Rows(tenant).UpdateAsync(row, row.ETag, cancellationToken);
            }

            return true;
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 409 or 412)
        {
            // 409: another request inserted the row first; 412: it changed; 404: a sign-in cleared it. Read again.
            return false;
        }
    }

    // Jittered and growing a little, so the requests that lost a round do not all come back in the same instant.
    private static Task BackOffAsync(int attempt, CancellationToken cancellationToken) =>
        Task.Delay(Random.Shared.Next(1, 10 + 5 * Math.Min(attempt, 10)), cancellationToken);

    // A row deleted by a sign-in and created again must not take back an epoch a reservation still holds.
    private static int NewEpoch() => Random.Shared.Next();

    internal sealed class LockoutEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }

        /// <summary>Attempts counted in the current window, including those still being checked.</summary>
        public int Failures { get; set; }

        public DateTimeOffset WindowStartedAt { get; set; }
        public int Lockouts { get; set; }
        public DateTimeOffset? LockedUntil { get; set; }

        /// <summary>Changes whenever the count starts over (a new window, a lockout), so a late release cannot reach into it.</summary>
        public int Epoch { get; set; }

        /// <summary>Set at creation and never changed: the expiry entry scheduled then concerns this row only.</summary>
        public string? ExpiryTag { get; set; }
    }
}

/// <summary>
/// When an account's lockout row may go. Never while the account is locked, nor while its window still counts
/// failures. After a lockout the row also keeps the number of lockouts, which makes the next one twice as long; it
/// stays until the lock has ended and then <see cref="AuthOptions.MaxLockout"/> more, so an attacker who waits out
/// each lock still meets longer ones, and only an account left alone that long starts over at the first lockout.
/// </summary>
internal sealed class LockoutExpiry(IOptions<AuthOptions> options) : IRowExpiry
{
    public string Table => Lockouts.TableName;

    public DateTimeOffset? DueAt(TableEntity row, string? tag)
    {
        if (tag is null || row.GetString(nameof(Lockouts.LockoutEntity.ExpiryTag)) != tag)
        {
            return null;
        }

        var settings = options.Value;
        var due = row.GetDateTimeOffset(nameof(Lockouts.LockoutEntity.WindowStartedAt)).GetValueOrDefault() + settings.LockoutWindow;
        if (row.GetDateTimeOffset(nameof(Lockouts.LockoutEntity.LockedUntil)) is { } lockedUntil && lockedUntil + settings.MaxLockout > due)
        {
            due = lockedUntil + settings.MaxLockout;
        }

        return due;
    }
}

/// <summary>The row as it was before an attempt was counted, for undoing it.</summary>
public sealed record Counted(int Failures, DateTimeOffset WindowStartedAt, int Lockouts, DateTimeOffset? LockedUntil);

/// <summary>What <see cref="Lockouts.ReserveAsync"/> decided for one attempt.</summary>
/// <param name="LockedFor">Set when the account is locked: the attempt was refused and must not be checked.</param>
/// <param name="StartedLockout">Set when this attempt reached the threshold and locked the account for that long.</param>
public sealed record AttemptReservation(TimeSpan? LockedFor, TimeSpan? StartedLockout, int Epoch, Counted? Before);

/// <summary>The lockout row of an account stayed contended past every retry: the request answers 503 busy.</summary>
public sealed class LockoutContendedException : Exception
{
    public LockoutContendedException()
        : base("Too many attempts on one account are being counted at once.")
    {
    }

    public LockoutContendedException(string message)
        : base(message)
    {
    }

    public LockoutContendedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
