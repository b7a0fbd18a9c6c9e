using System.Diagnostics.CodeAnalysis;

namespace Platform.Functions.Storage;

/// <summary>
/// The tenant a piece of data belongs to. It is the partition key of every tenant row, so it is validated to
/// the characters an id can hold: a value that could smuggle OData or key syntax cannot exist.
/// </summary>
public readonly record struct TenantId
{
    public const int MaxLength = 64;

    public TenantId(string value)
    {
        if (!IsValid(value))
        {
            throw new ArgumentException("A tenant id is 1-64 ASCII letters and digits.", nameof(value));
        }

        _value = value;
    }

    private readonly string? _value;

    public string Value => _value ?? throw new InvalidOperationException("An uninitialised TenantId names no tenant.");

    public static bool TryParse([NotNullWhen(true)] string? value, out TenantId tenant)
    {
        tenant = IsValid(value) ? new TenantId(value!) : default;
        return IsValid(value);
    }

    private static bool IsValid([NotNullWhen(true)] string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= MaxLength && value.All(char.IsAsciiLetterOrDigit);

    public override string ToString() => Value;
}
