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
        var milliseconds = (time ?? TimeProvider.System).GetUtcNow().ToUnixTimeMilliseconds();
        Span<byte> random = stackalloc byte[10];
        RandomNumberGenerator.Fill(random);

        Span<char> id = stackalloc char[26];
        for (var i = 9; i >= 0; i--)
        {
            id[i] = Alphabet[(int)(milliseconds & 31)];
            milliseconds >>= 5;
        }

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
}
