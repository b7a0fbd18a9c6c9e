using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Identity.Passwords;

/// <summary>
/// Argon2id cost under <c>Platform:Auth:PasswordHashing</c>. The minimums are OWASP's (m = 19 MiB, t = 2, p = 1), so
/// a weaker setting stops the app at start. Raising a value is safe at any time: stored hashes keep their own
/// parameters and are re-hashed at the user's next sign-in.
/// </summary>
public sealed class PasswordHashingOptions
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
}
