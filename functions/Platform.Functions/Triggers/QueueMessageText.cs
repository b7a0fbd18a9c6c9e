using System.Text.Json;

namespace Platform.Functions.Triggers;

/// <summary>Turns the message value of a host invocation back into the text that was put on the queue.</summary>
public static class QueueMessageText
{
    /// <summary>
    /// The host passes a queue message as a JSON value: an object when the text was JSON, otherwise a string -
    /// and sometimes that string is itself a JSON-encoded string (<c>"\"{...}\""</c>). Both layers are peeled.
    /// </summary>
    public static string Decode(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            return value.GetRawText();
        }

        var text = value.GetString()!;
        if (text.Length >= 2 && text[0] == '"' && text[^1] == '"')
        {
            try
            {
                return JsonSerializer.Deserialize<string>(text) ?? text;
            }
            catch (JsonException)
            {
                // Quotes at both ends but not a JSON string: the quotes are part of the message.
            }
        }

        return text;
    }
}
