using System.Security.Cryptography;

namespace Platform.Functions.Storage;

/// <summary>
/// ULID-style ids: 48 bits of milliseconds then 80 random bits, in Crockford base32 (26 characters). They sort
/// by creation time as strings, which makes them good row keys, and reveal nothing about storage.
/// </summary>
public static class Ids
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    public static string New(TimeProvider? time = null)
    {
        Span<byte> random = stackalloc byte[10];
        RandomNumberGenerator.Fill(random);

        Span<char> id = stackalloc char[26];
        WriteTime((time ?? TimeProvider.System).GetUtcNow(), id);

        // 80 random bits -> 16 characters of 5 bits each.
        UInt128 bits = 0;
        foreach (var b in random)
        {
            bits = (bits << 8) | b;
        }

        for (var i = 25; i >= 10; i--)
        {
            id[i] = Alphabet[(int)(bits & 31)];
            bits >>= 5;
        }

        return new string(id);
    }

    /// <summary>
    /// An id that is the same every time it is made from the same <paramref name="key"/>: the time characters of
    /// <paramref name="at"/>, then 80 bits of the key's SHA-256. For writes that must land on the same row when they
    /// are repeated (an import chunk run again after a crash), so a repeat finds its own row instead of adding one.
    /// </summary>
    public static string Derived(DateTimeOffset at, string key)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key), hash);

        Span<char> id = stackalloc char[26];
        WriteTime(at, id);
        UInt128 bits = 0;
        foreach (var b in hash[..10])
        {
            bits = (bits << 8) | b;
        }

        for (var i = 25; i >= 10; i--)
        {
            id[i] = Alphabet[(int)(bits & 31)];
            bits >>= 5;
        }

        return new string(id);
    }

    /// <summary>The instant an id made by <see cref="New"/> was made at (to the millisecond); false for any other text.</summary>
    public static bool TryReadTime(string? id, out DateTimeOffset at)
    {
        at = default;
        if (id is not { Length: 26 })
        {
            return false;
        }

        long milliseconds = 0;
        foreach (var c in id)
        {
            if (Alphabet.IndexOf(c, StringComparison.Ordinal) < 0)
            {
                return false;
            }
        }

        foreach (var c in id.AsSpan(0, 10))
        {
            milliseconds = (milliseconds << 5) | (long)Alphabet.IndexOf(c, StringComparison.Ordinal);
        }

        if (milliseconds > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())
        {
            return false;
        }

        at = DateTimeOffset.FromUnixTimeMilliseconds(milliseconds);
        return true;
    }

    /// <summary>
    /// The smallest id of a millisecond (its 10 time characters, then zeros): row keys made by <see cref="New"/>
    /// from that millisecond on sort at or after it, which turns a time range into a row-key range.
    /// </summary>
    public static string Floor(DateTimeOffset at)
    {
        Span<char> id = stackalloc char[26];
        WriteTime(at, id);
        id[10..].Fill('0');
        return new string(id);
    }

    /// <summary>
    /// The smallest id of the millisecond after <paramref name="at"/>: the exclusive upper bound of a time range that
    /// ends at <paramref name="at"/>. The last representable instant has no next millisecond and bounds by itself.
    /// </summary>
    public static string After(DateTimeOffset at) =>
        Floor(at < DateTimeOffset.MaxValue.AddMilliseconds(-1) ? at.AddMilliseconds(1) : DateTimeOffset.MaxValue);

    private static void WriteTime(DateTimeOffset at, Span<char> id)
    {
        var milliseconds = Math.Clamp(at.ToUnixTimeMilliseconds(), 0, (1L << 48) - 1);
        for (var i = 9; i >= 0; i--)
        {
            id[i] = Alphabet[(int)(milliseconds & 31)];
            milliseconds >>= 5;
        }
    }

    /// <summary>An id of <paramref name="milliseconds"/> with the given 80 random bits.</summary>
    internal static string Format(long milliseconds, UInt128 bits)
    {
        Span<char> id = stackalloc char[26];
        WriteTime(DateTimeOffset.FromUnixTimeMilliseconds(milliseconds), id);
        for (var i = 25; i >= 10; i--)
        {
            id[i] = Alphabet[(int)(bits & 31)];
            bits >>= 5;
        }

        return new string(id);
    }
}

/// <summary>
/// Ids like <see cref="Ids.New"/> that also sort in the order this instance made them, within a millisecond too (the
/// random part counts up from the last one): events keyed by them keep their order wherever they are sorted by id.
/// A clock that steps back keeps the last millisecond until it catches up.
/// </summary>
public sealed class MonotonicIds(TimeProvider time)
{
    private static readonly UInt128 RandomMask = (UInt128.One << 80) - 1;
    private readonly Lock _lock = new();
    private long _milliseconds = -1;
    private UInt128 _bits;

    public string Next()
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_lock)
        {
            if (now > _milliseconds)
            {
                Span<byte> random = stackalloc byte[10];
                System.Security.Cryptography.RandomNumberGenerator.Fill(random);
                UInt128 bits = 0;
                foreach (var b in random)
                {
                    bits = (bits << 8) | b;
                }

                // The top bit clear leaves room to count up within the millisecond without wrapping.
                _milliseconds = now;
                _bits = bits >> 1;
            }
            else
            {
                _bits = (_bits + 1) & RandomMask;
            }

            return Ids.Format(_milliseconds, _bits);
        }
    }
}
