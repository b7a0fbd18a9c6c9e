using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Platform.Functions.Http;

/// <summary>
/// Reads a JSON number into a <see cref="double"/> only when it is finite. <c>1e400</c> parses to infinity, which no
/// field means and which System.Text.Json then refuses to write back out (a 500 long after the request was read);
/// refused while reading, it is a 400 <c>invalid_json</c> like any other unreadable body.
/// </summary>
internal sealed class FiniteDoubles : JsonConverter<double>
{
    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Number when reader.TryGetDouble(out var value) && double.IsFinite(value) => value,
        // The web defaults read numbers from strings; what such a string holds (even "NaN") is for validation to refuse
        // by field, as before this converter existed.
        JsonTokenType.String when (options.NumberHandling & JsonNumberHandling.AllowReadingFromString) != 0 &&
            double.TryParse(reader.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
        _ => throw new JsonException("Expected a finite number."),
    };

    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}
