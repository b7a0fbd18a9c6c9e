using System.Buffers;
using System.Collections.Frozen;
using System.Text;

namespace Platform.Functions.Identity.Passwords;

/// <summary>
/// What a new password must be, after NIST SP 800-63B and OWASP: 8 to 128 characters, not one of the most common
/// passwords, and nothing else. No composition rules (they push people to predictable patterns), and the password is
/// taken whole: never trimmed or truncated, so spaces and passphrases count in full.
/// </summary>
/// <remarks>
/// Length counts Unicode code points, as NIST asks, not UTF-16 units or bytes, so an emoji or a CJK character is one
/// character. Grapheme clusters were not chosen because their boundaries change with the Unicode version of the
/// runtime, and a password accepted today must not become too long or too short after an upgrade.
/// </remarks>
public sealed class PasswordPolicy
{
    public const int MinLength = 8;
    public const int MaxLength = 128;

    public const string TooShort = "must be at least 8 characters";
    public const string TooLong = "must be at most 128 characters";
    public const string TooCommon = "is one of the most common passwords";
    public const string NotText = "must be valid Unicode text";

    private const string CommonPasswordsResource = "Platform.Functions.Identity.Passwords.common-passwords.txt";

    // The app holds one policy, so the list is read once, and only when the first password is checked.
    private readonly Lazy<FrozenSet<string>> commonPasswords = new(LoadCommonPasswords);

    /// <summary>The lowercased entries of the shipped list of common passwords.</summary>
    internal FrozenSet<string> CommonPasswords => commonPasswords.Value;

    /// <summary>Why <paramref name="password"/> is not acceptable, as phrases about "the password"; empty when it is.</summary>
    public IReadOnlyList<string> Check(string? password)
    {
        password ??= "";
        if (CountCodePoints(password) is not { } length)
        {
            return [NotText];
        }

        var reasons = new List<string>(2);
        if (length < MinLength)
        {
            reasons.Add(TooShort);
        }

        if (length > MaxLength)
        {
            reasons.Add(TooLong);
        }

        // The list is lowercase; "Password1" is no better than "password1".
        if (CommonPasswords.Contains(password.ToLowerInvariant()))
        {
            reasons.Add(TooCommon);
        }

        return reasons;
    }

    /// <summary>The number of code points, or null when the text has a lone surrogate and so is not Unicode at all.</summary>
    private static int? CountCodePoints(ReadOnlySpan<char> text)
    {
        var count = 0;
        while (!text.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(text, out _, out var consumed) != OperationStatus.Done)
            {
                return null;
            }

            text = text[consumed..];
            count++;
        }

        return count;
    }

    private static FrozenSet<string> LoadCommonPasswords()
    {
        using var stream = typeof(PasswordPolicy).Assembly.GetManifestResourceStream(CommonPasswordsResource)
            ?? throw new InvalidOperationException($"The embedded resource {CommonPasswordsResource} is missing.");
        using var reader = new StreamReader(stream, Encoding.UTF8);

        var entries = new List<string>(capacity: 50_000);
        while (reader.ReadLine() is { } line)
        {
            // '#' starts the header that names the list's source and licence.
            if (line.Length > 0 && line[0] != '#')
            {
                entries.Add(line.ToLowerInvariant());
            }
        }

        return entries.ToFrozenSet(StringComparer.Ordinal);
    }
}
