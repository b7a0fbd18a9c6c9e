using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Identity.Passwords;

/// <summary>
/// Argon2id cost under <c>Platform:Auth:PasswordHashing</c>. The minimums are OWASP's (m = 19 MiB, t = 2, p = 1), so
/// a weaker setting stops the app at start. Raising a value is safe at any time: stored hashes keep their own
/// parameters and are re-hashed at the user's next sign-in.
/// </summary>
/// <remarks>
/// Hashing runs through a gate of <see cref="MaxConcurrentHashes"/> slots, because each hash takes ~19 MiB and a core
/// for tens of milliseconds. Bulk work (creating many users with passwords) has a smaller lane inside it,
/// <see cref="MaxConcurrentBulkHashes"/>, so that however much bulk work is queued, sign-ins always find slots free.
/// </remarks>
public sealed class PasswordHashingOptions : IValidatableObject
{
    public const string Section = "Platform:Auth:PasswordHashing";

    // The maxima equal what PasswordHasher accepts from a stored hash; a configured cost above them would produce
    // hashes that can never verify.

    /// <summary>Memory per hash in KiB (the <c>m</c> of the PHC string).</summary>
    [Range(19456, PasswordHasher.MaxMemoryKiB)]
    public int MemoryKiB { get; set; } = 19456;

    /// <summary>Passes over the memory (<c>t</c>).</summary>
    [Range(2, PasswordHasher.MaxIterations)]
    public int Iterations { get; set; } = 2;

    /// <summary>Lanes (<c>p</c>); each sign-in occupies this many threads while it hashes.</summary>
    [Range(1, PasswordHasher.MaxParallelism)]
    public int Parallelism { get; set; } = 1;

    /// <summary>Hashes running at once in this instance; unset: two per core.</summary>
    [Range(2, 1024)]
    public int? MaxConcurrentHashes { get; set; }

    /// <summary>
    /// How many of those slots bulk work (POST /api/v1/users/bulk) may hold at once; must be fewer than
    /// <see cref="MaxConcurrentHashes"/>, so bulk can never take every slot. Unset: a quarter of the slots, at least one.
    /// </summary>
    [Range(1, 1023)]
    public int? MaxConcurrentBulkHashes { get; set; }

    /// <summary>
    /// How long a sign-in (or any other single hash) waits for a free slot before it answers 503 <c>busy</c>. Zero:
    /// never wait, answer busy unless a slot is free.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan BusyAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one bulk hash waits for its lane and a slot: bulk requests queue behind each other, so longer.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:30:00")]
    public TimeSpan BulkBusyAfter { get; set; } = TimeSpan.FromSeconds(60);

    public int EffectiveMaxConcurrentHashes => MaxConcurrentHashes ?? Math.Max(2, Environment.ProcessorCount * 2);

    public int EffectiveMaxConcurrentBulkHashes => MaxConcurrentBulkHashes ?? Math.Max(1, EffectiveMaxConcurrentHashes / 4);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (EffectiveMaxConcurrentBulkHashes >= EffectiveMaxConcurrentHashes)
        {
            yield return new ValidationResult(
                $"MaxConcurrentBulkHashes ({EffectiveMaxConcurrentBulkHashes}) must be less than MaxConcurrentHashes ({EffectiveMaxConcurrentHashes}): bulk work must leave slots for sign-in.",
                [nameof(MaxConcurrentBulkHashes)]);
        }
    }
}
