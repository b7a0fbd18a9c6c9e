using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;
using Konscious.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace Platform.Functions.Identity.Passwords;

/// <summary>What checking a password against a stored hash found. The default value is a mismatch.</summary>
public enum PasswordCheck
{
    Mismatch,
    Match,

    /// <summary>The password is right but its hash is weaker than today's parameters: store a fresh hash.</summary>
    MatchNeedsRehash,
}

/// <summary>Which share of the hashing slots a hash may take.</summary>
public enum HashingLane
{
    /// <summary>A person waiting on this one hash: sign-in, sign-up, a password change. May use every slot.</summary>
    Interactive,

    /// <summary>
    /// One of many hashes of a bulk request: limited to <see cref="PasswordHashingOptions.MaxConcurrentBulkHashes"/>
    /// slots, so bulk work can never hold every slot and sign-ins always find one.
    /// </summary>
    Bulk,
}

/// <summary>
/// Argon2id password hashes as PHC strings (<c>$argon2id$v=19$m=19456,t=2,p=1$salt$hash</c>), the format of the
/// reference implementation, so the parameters travel with each hash and can be raised without invalidating old ones.
/// </summary>
/// <remarks>
/// The password is hashed as the exact UTF-8 of what was typed, with no Unicode normalisation: the app runs with
/// invariant globalization, where .NET has no normalisation data and <see cref="string.Normalize()"/> returns its input
/// unchanged, so "normalising" would be a silent no-op today and would change the bytes of existing non-ASCII
/// passwords the day it started working. Browsers and operating systems already send composed (NFC) text in practice.
/// </remarks>
public sealed class PasswordHasher : IDisposable
{
    /// <summary>The most memory a stored hash may ask for (1 GiB), so a tampered row cannot exhaust the server.</summary>
    public const int MaxMemoryKiB = 1024 * 1024;

    public const int MaxIterations = 16;

    public const int MaxParallelism = 16;

    private const int SaltBytes = 16;
    private const int HashBytes = 32;

    // Bounds on what a stored hash may declare. Argon2 allows salts from 8 bytes; anything far outside what this
    // class writes is a tampered or foreign row.
    private const int MinStoredSaltBytes = 8;
    private const int MaxStoredSaltBytes = 64;
    private const int MinStoredHashBytes = 16;
    private const int MaxStoredHashBytes = 64;
    private const int MaxStoredLength = 512;

    private const string Algorithm = "argon2id";
    private const string Version = "v=19";

    private readonly Argon2Cost current;

    // Hashes take a slot of `slots`; bulk hashes first take one of `bulkSlots`, fewer than `slots`, so bulk can hold at
    // most that many slots and the rest stay for interactive hashes. Waits are asynchronous: a queued sign-in holds no
    // thread, so a burst cannot starve the thread pool that every other request needs.
    private readonly SemaphoreSlim slots;
    private readonly SemaphoreSlim bulkSlots;
    private readonly TimeSpan busyAfter;
    private readonly TimeSpan bulkBusyAfter;

    // A wrong guess against these costs exactly what a wrong password costs, whether the user is unknown or the
    // stored hash is unusable, so neither answers faster. They are random per process so no input can match them.
    private readonly byte[] dummySalt = RandomNumberGenerator.GetBytes(SaltBytes);
    private readonly byte[] dummyHash = RandomNumberGenerator.GetBytes(HashBytes);

    public PasswordHasher(IOptions<PasswordHashingOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = options.Value;
        current = new Argon2Cost(settings.MemoryKiB, settings.Iterations, settings.Parallelism);
        var total = settings.EffectiveMaxConcurrentHashes;
        var bulk = settings.EffectiveMaxConcurrentBulkHashes;
        if (total < 2 || bulk < 1 || bulk >= total)
        {
            throw new ArgumentOutOfRangeException(nameof(options),
                $"Hashing slots {total} with {bulk} for bulk: bulk needs at least one and must leave at least one for sign-in.");
        }

        slots = new SemaphoreSlim(total, total);
        bulkSlots = new SemaphoreSlim(bulk, bulk);
        busyAfter = settings.BusyAfter;
        bulkBusyAfter = settings.BulkBusyAfter;

        // Options validation enforces OWASP's minimums at start; this only refuses what Argon2 or Verify could never
        // accept, so a hasher built by hand with weaker (but valid) settings still works.
        if (!current.IsAcceptable)
        {
            throw new ArgumentOutOfRangeException(nameof(options),
                $"Argon2id cost m={settings.MemoryKiB},t={settings.Iterations},p={settings.Parallelism} is outside what a stored hash may declare.");
        }
    }

    /// <summary>A PHC string of <paramref name="password"/> with a fresh 16-byte salt and today's parameters.</summary>
    /// <exception cref="ArgumentException">The password is not well-formed UTF-16 (a lone surrogate).</exception>
    /// <exception cref="PasswordHashingBusyException">No slot came free in time (answers 503 busy).</exception>
    public Task<string> HashAsync(string password, CancellationToken cancellationToken) =>
        HashAsync(password, HashingLane.Interactive, cancellationToken);

    /// <inheritdoc cref="HashAsync(string, CancellationToken)"/>
    public async Task<string> HashAsync(string password, HashingLane lane, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(password);
        var secret = TryEncode(password)
            ?? throw new ArgumentException("The password is not well-formed Unicode text.", nameof(password));
        try
        {
            var salt = RandomNumberGenerator.GetBytes(SaltBytes);
            var hash = await DeriveAsync(secret, salt, current, HashBytes, lane, cancellationToken);
            return Format(current, salt, hash);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>
    /// Checks <paramref name="password"/> against <paramref name="phcHash"/>, the stored hash or null when there is no
    /// such user. Never throws for a missing, malformed or tampered hash: those are a <see cref="PasswordCheck.Mismatch"/>
    /// after the same work as a wrong password. Always in the interactive lane: someone is waiting for the answer.
    /// </summary>
    /// <exception cref="PasswordHashingBusyException">No slot came free in time (answers 503 busy).</exception>
    public async Task<PasswordCheck> VerifyAsync(string password, string? phcHash, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(password);
        var secret = TryEncode(password);
        try
        {
            // Argon2 refuses an empty input, and no stored hash is of an empty password: spend the same time on a stand-in.
            if (secret is not { Length: > 0 } || !StoredHash.TryParse(phcHash, out var stored))
            {
                await SpendOneHashAsync(secret is { Length: > 0 } ? secret : [0], cancellationToken);
                return PasswordCheck.Mismatch;
            }

            var actual = await DeriveAsync(secret, stored.Salt, stored.Cost, stored.Hash.Length, HashingLane.Interactive, cancellationToken);
            if (!CryptographicOperations.FixedTimeEquals(actual, stored.Hash))
            {
                return PasswordCheck.Mismatch;
            }

            return IsWeakerThanCurrent(stored) ? PasswordCheck.MatchNeedsRehash : PasswordCheck.Match;
        }
        finally
        {
            if (secret is not null)
            {
                CryptographicOperations.ZeroMemory(secret);
            }
        }
    }

    public void Dispose()
    {
        slots.Dispose();
        bulkSlots.Dispose();
    }

    // Any parameter below today's counts, so stored hashes converge on the configured cost rather than on a mix.
    private bool IsWeakerThanCurrent(StoredHash stored) =>
        stored.Cost.MemoryKiB < current.MemoryKiB
        || stored.Cost.Iterations < current.Iterations
        || stored.Cost.Parallelism < current.Parallelism
        || stored.Salt.Length < SaltBytes
        || stored.Hash.Length < HashBytes;

    private async Task SpendOneHashAsync(byte[] secret, CancellationToken cancellationToken)
    {
        var actual = await DeriveAsync(secret, dummySalt, current, HashBytes, HashingLane.Interactive, cancellationToken);
        _ = CryptographicOperations.FixedTimeEquals(actual, dummyHash);
    }

    /// <summary>
    /// One hash once a slot is free: each takes ~19 MiB and a core for ~50 ms, so a burst queues here (up to
    /// <see cref="PasswordHashingOptions.BusyAfter"/>, then 503 busy) instead of exhausting memory and cores.
    /// </summary>
    private async Task<byte[]> DeriveAsync(byte[] secret, byte[] salt, Argon2Cost cost, int length, HashingLane lane, CancellationToken cancellationToken)
    {
        var bulk = lane == HashingLane.Bulk;
        var wait = bulk ? bulkBusyAfter : busyAfter;
        var started = Stopwatch.GetTimestamp();
        if (bulk && !await bulkSlots.WaitAsync(wait, cancellationToken))
        {
            throw new PasswordHashingBusyException();
        }

        try
        {
            // One limit for the whole wait: the time spent queueing for the bulk lane counts toward it.
            var left = wait - Stopwatch.GetElapsedTime(started);
            if (!await slots.WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero, cancellationToken))
            {
                throw new PasswordHashingBusyException();
            }

            try
            {
                return DeriveNow(secret, salt, cost, length);
            }
            finally
            {
                slots.Release();
            }
        }
        finally
        {
            if (bulk)
            {
                bulkSlots.Release();
            }
        }
    }

    private static byte[] DeriveNow(byte[] secret, byte[] salt, Argon2Cost cost, int length)
    {
        using var argon2 = new Argon2id(secret)
        {
            Salt = salt,
            MemorySize = cost.MemoryKiB,
            Iterations = cost.Iterations,
            DegreeOfParallelism = cost.Parallelism,
        };
        return argon2.GetBytes(length);
    }

    // Lone surrogates would otherwise all become U+FFFD and hash alike; they are refused instead.
    private static byte[]? TryEncode(string password)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(password)];
        var status = Utf8.FromUtf16(password, bytes, out _, out var written, replaceInvalidSequences: false);
        return status == OperationStatus.Done && written == bytes.Length ? bytes : null;
    }

    private static string Format(Argon2Cost cost, byte[] salt, byte[] hash) =>
        string.Create(CultureInfo.InvariantCulture,
            $"${Algorithm}${Version}$m={cost.MemoryKiB},t={cost.Iterations},p={cost.Parallelism}${ToBase64(salt)}${ToBase64(hash)}");

    // PHC strings use the standard alphabet without padding.
    private static string ToBase64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=');

    private readonly record struct Argon2Cost(int MemoryKiB, int Iterations, int Parallelism)
    {
        // Argon2 needs at least 8 KiB per lane.
        public bool IsAcceptable =>
            Parallelism is >= 1 and <= MaxParallelism
            && Iterations is >= 1 and <= MaxIterations
            && MemoryKiB >= 8 * Parallelism && MemoryKiB <= MaxMemoryKiB;
    }

    private sealed record StoredHash(Argon2Cost Cost, byte[] Salt, byte[] Hash)
    {
        public static bool TryParse(string? text, [NotNullWhen(true)] out StoredHash? stored)
        {
            stored = null;
            if (text is null || text.Length > MaxStoredLength)
            {
                return false;
            }

            // "$argon2id$v=19$m=..,t=..,p=..$salt$hash" splits into an empty first part and five fields.
            var parts = text.Split('$');
            if (parts.Length != 6 || parts[0].Length != 0 || parts[1] != Algorithm || parts[2] != Version)
            {
                return false;
            }

            var cost = parts[3].Split(',');
            if (cost.Length != 3
                || !TryParseParameter(cost[0], "m=", out var memory)
                || !TryParseParameter(cost[1], "t=", out var iterations)
                || !TryParseParameter(cost[2], "p=", out var parallelism))
            {
                return false;
            }

            var parsedCost = new Argon2Cost(memory, iterations, parallelism);
            if (!parsedCost.IsAcceptable
                || FromBase64(parts[4], MinStoredSaltBytes, MaxStoredSaltBytes) is not { } salt
                || FromBase64(parts[5], MinStoredHashBytes, MaxStoredHashBytes) is not { } hash)
            {
                return false;
            }

            stored = new StoredHash(parsedCost, salt, hash);
            return true;
        }

        private static bool TryParseParameter(string field, string name, out int value)
        {
            value = 0;
            return field.StartsWith(name, StringComparison.Ordinal)
                && int.TryParse(field.AsSpan(name.Length), NumberStyles.None, CultureInfo.InvariantCulture, out value);
        }

        private static byte[]? FromBase64(string text, int minBytes, int maxBytes)
        {
            // Convert would also accept padding and whitespace; the PHC encoding has neither.
            if (text.Length % 4 == 1 || !text.All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '/'))
            {
                return null;
            }

            var padded = text.PadRight(text.Length + (4 - text.Length % 4) % 4, '=');
            var bytes = new byte[padded.Length / 4 * 3];
            if (!Convert.TryFromBase64String(padded, bytes, out var written) || written < minBytes || written > maxBytes)
            {
                return null;
            }

            return bytes[..written];
        }
    }
}

/// <summary>Every hashing slot of the lane stayed taken for its <see cref="PasswordHashingOptions.BusyAfter"/>: the request answers 503 busy.</summary>
public sealed class PasswordHashingBusyException : Exception
{
    public PasswordHashingBusyException()
        : base("Password hashing is at capacity.")
    {
    }

    public PasswordHashingBusyException(string message)
        : base(message)
    {
    }

    public PasswordHashingBusyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
