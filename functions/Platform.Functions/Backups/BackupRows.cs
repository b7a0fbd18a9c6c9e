using System.Globalization;
using System.Text.Json;
using Azure.Data.Tables;

namespace Platform.Functions.Backups;

/// <summary>
/// A table row as one NDJSON line: <c>{"k":rowKey,"p":{name:value,...}}</c>, properties in ordinal order. Strings and
/// booleans are JSON as they are; every other storage type is <c>[code, value]</c> so that it comes back as the same
/// type (<c>i</c> Int32, <c>l</c> Int64 as text, <c>d</c> Double, <c>t</c> DateTime, <c>g</c> Guid, <c>b</c> binary as
/// base64). The partition key is not stored: it is the tenant, and a restore writes the rows under the target's.
/// Secret columns are written as they are at rest (already encrypted by their owner).
/// </summary>
public static class BackupRows
{
    private static readonly HashSet<string> SystemProperties = new(StringComparer.Ordinal) { "PartitionKey", "RowKey", "Timestamp", "odata.etag" };

    /// <summary>Row keys that are plumbing, not data: the change log and the event outbox of a partition.</summary>
    public static bool IsPlumbing(string rowKey) =>
        rowKey.StartsWith("~changelog", StringComparison.Ordinal) || Events.EventOutbox.IsOutboxKey(rowKey);

    public static void Write(Utf8JsonWriter writer, TableEntity row)
    {
        writer.WriteStartObject();
        writer.WriteString("k", row.RowKey);
        writer.WriteStartObject("p");
        foreach (var name in row.Keys.Where(k => !SystemProperties.Contains(k)).Order(StringComparer.Ordinal))
        {
            writer.WritePropertyName(name);
            WriteValue(writer, row[name]);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case int i:
                Tagged(writer, "i", w => w.WriteNumberValue(i));
                break;
            case long l:
                Tagged(writer, "l", w => w.WriteStringValue(l.ToString(CultureInfo.InvariantCulture)));
                break;
            case double d:
                Tagged(writer, "d", w => w.WriteStringValue(d.ToString("R", CultureInfo.InvariantCulture)));
                break;
            case DateTimeOffset t:
                Tagged(writer, "t", w => w.WriteStringValue(t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture)));
                break;
            case DateTime t:
                Tagged(writer, "t", w => w.WriteStringValue(t.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)));
                break;
            case Guid g:
                Tagged(writer, "g", w => w.WriteStringValue(g.ToString("D")));
                break;
            case byte[] bytes:
                Tagged(writer, "b", w => w.WriteBase64StringValue(bytes));
                break;
            case BinaryData data:
                Tagged(writer, "b", w => w.WriteBase64StringValue(data.ToMemory().Span));
                break;
            default:
                throw new InvalidOperationException($"A row holds a property of a type backups do not know: {value.GetType().Name}.");
        }
    }

    private static void Tagged(Utf8JsonWriter writer, string code, Action<Utf8JsonWriter> value)
    {
        writer.WriteStartArray();
        writer.WriteStringValue(code);
        value(writer);
        writer.WriteEndArray();
    }

    /// <summary>The row key of a line, without reading the rest.</summary>
    public static string KeyOf(JsonElement line) => line.GetProperty("k").GetString() ?? throw new FormatException("A row line has no key.");

    /// <summary>The row a line holds, under <paramref name="partitionKey"/>.</summary>
    public static TableEntity Read(JsonElement line, string partitionKey)
    {
        var row = new TableEntity(partitionKey, KeyOf(line));
        foreach (var property in line.GetProperty("p").EnumerateObject())
        {
            row[property.Name] = ReadValue(property.Value);
        }

        return row;
    }

    private static object? ReadValue(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.String => value.GetString(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array when value.GetArrayLength() == 2 => value[0].GetString() switch
        {
            "i" => value[1].GetInt32(),
            "l" => long.Parse(value[1].GetString()!, CultureInfo.InvariantCulture),
            "d" => double.Parse(value[1].GetString()!, CultureInfo.InvariantCulture),
            "t" => DateTimeOffset.Parse(value[1].GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
            "g" => Guid.Parse(value[1].GetString()!),
            "b" => value[1].GetBytesFromBase64(),
            var code => throw new FormatException($"Unknown value type '{code}'."),
        },
        _ => throw new FormatException("A property value of a row line is malformed."),
    };
}
