using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Platform.Functions.Http;

/// <summary>
/// Timestamps in responses are ISO-8601 in UTC with a <c>Z</c> (<c>2026-11-22T14:00:00Z</c>), as the contract says,
/// whatever offset the value carries; reading accepts any ISO-8601 offset.
/// </summary>
public sealed class UtcTimestamps : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture));
}
