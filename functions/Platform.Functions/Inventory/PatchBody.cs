using System.Text.Json;
using Platform.Functions.Http;

namespace Platform.Functions.Inventory;

/// <summary>
/// Reads a PATCH body, where a member that is absent means "leave as is" and <c>null</c> means "clear it" - a
/// difference a record binding cannot see.
/// </summary>
public sealed class PatchBody(JsonElement body, Validation validation)
{
    public bool IsObject => body.ValueKind == JsonValueKind.Object;

    public bool Has(string name) => IsObject && body.TryGetProperty(name, out _);

    /// <summary>Absent: (false, _). Present: (true, trimmed text or null when null/blank).</summary>
    public (bool Present, string? Value) OptionalText(string name, int maxLength)
    {
        if (!IsObject || !body.TryGetProperty(name, out var value))
        {
            return (false, null);
        }

        if (value.ValueKind == JsonValueKind.Null)
        {
            return (true, null);
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            validation.Add(name, "must be a string or null");
            return (true, null);
        }

        var text = value.GetString()!.Trim();
        if (text.Length > maxLength)
        {
            validation.Add(name, $"must be at most {maxLength} characters");
        }

        return (true, text.Length == 0 ? null : text);
    }

    public (bool Present, double? Value) OptionalNumber(string name)
    {
        if (!IsObject || !body.TryGetProperty(name, out var value))
        {
            return (false, null);
        }

        if (value.ValueKind == JsonValueKind.Null)
        {
            return (true, null);
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
        {
            validation.Add(name, "must be a number or null");
            return (true, null);
        }

        return (true, number);
    }

    public (bool Present, DateTimeOffset? Value) OptionalTimestamp(string name)
    {
        if (!IsObject || !body.TryGetProperty(name, out var value))
        {
            return (false, null);
        }

        if (value.ValueKind == JsonValueKind.Null)
        {
            return (true, null);
        }

        if (value.ValueKind != JsonValueKind.String || !value.TryGetDateTimeOffset(out var at))
        {
            validation.Add(name, "must be an ISO-8601 timestamp or null");
            return (true, null);
        }

        return (true, at.ToUniversalTime());
    }

    public (bool Present, JsonElement Value) Raw(string name) =>
        IsObject && body.TryGetProperty(name, out var value) ? (true, value) : (false, default);
}
