using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Auth;

/// <summary>
/// Failed sign-ins per account (tenant + email, whether or not such a user exists, so the answer reveals nothing).
/// <see cref="AuthOptions.LockoutThreshold"/> failures within <see cref="AuthOptions.LockoutWindow"/> lock the
/// account; each further lockout doubles, up to <see cref="AuthOptions.MaxLockout"/>, until a successful sign-in.
/// </summary>
public sealed class Lockouts(StorageAccount storage, IOptions<AuthOptions> options, TimeProvider time)
{
    public const string TableName = "lockouts";

    private TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>How much longer the account stays locked; null when it is not locked.</summary>
    public async Task<TimeSpan?> LockedForAsync(TenantId tenant, string normalizedEmail, CancellationToken cancellationToken)
    {
        var row = await Rows(tenant).GetAsync<LockoutEntity>(normalizedEmail, cancellationToken);
        var now = time.GetUtcNow();
        return row?.LockedUntil is { } until && until > now ? until - now : null;
    }

    /// <summary>Counts a failure; returns the lockout it started, if it started one.</summary>
    public async Task<TimeSpan?> RecordFailureAsync(TenantId tenant, string normalizedEmail, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        for (var attempt = 0; ; attempt++)
        {
            var now = time.GetUtcNow();
            var row = await Rows(tenant).GetAsync<LockoutEntity>(normalizedEmail, cancellationToken)
                ?? new LockoutEntity { RowKey = normalizedEmail, WindowStartedAt = now };
            if (now - row.WindowStartedAt > settings.LockoutWindow)
            {
                row.Failures = 0;
                row.WindowStartedAt = now;
            }

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
            }

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

                return lockout;
            }
            catch (RequestFailedException ex) when (ex.Status is 409 or 412 && attempt < 20)
            {
                // Another failure was counted at the same moment; count this one on top of it. Past the last try the
                // conflict surfaces as a 409, never as a success: a failure that was not counted is not let through.
                await Task.Delay(Random.Shared.Next(5, 25), cancellationToken);
            }
        }
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

    private sealed class LockoutEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public int Failures { get; set; }
        public DateTimeOffset WindowStartedAt { get; set; }
        public int Lockouts { get; set; }
        public DateTimeOffset? LockedUntil { get; set; }
    }
}
