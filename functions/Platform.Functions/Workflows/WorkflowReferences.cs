using System.Text.Json;
using System.Text.Json.Nodes;

namespace Platform.Functions.Workflows;

/// <summary>
/// Outputs passed by reference: a JSON string that is exactly <c>${steps.&lt;id&gt;}</c>,
/// <c>${steps.&lt;id&gt;.&lt;field&gt;...}</c>, <c>${input}</c> or <c>${input.&lt;field&gt;...}</c> is replaced, when the step
/// runs, by that value (any JSON: a number stays a number). A path that leads nowhere (a figure the job did not
/// report, a skipped step) is null. Only whole strings are references; text around one is kept as written.
/// </summary>
public static class WorkflowReferences
{
    public sealed record Reference(string Text, string? StepId, IReadOnlyList<string> Path);

    public static IEnumerable<Reference> In(JsonElement json)
    {
        switch (json.ValueKind)
        {
            case JsonValueKind.String when TryRead(json.GetString()!, out var reference):
                yield return reference;
                break;
            case JsonValueKind.Object:
                foreach (var property in json.EnumerateObject())
                {
                    foreach (var inner in In(property.Value))
                    {
                        yield return inner;
                    }
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in json.EnumerateArray())
                {
                    foreach (var inner in In(item))
                    {
                        yield return inner;
                    }
                }

                break;
        }
    }

    public static bool TryRead(string text, out Reference reference)
    {
        reference = null!;
        if (text.Length < 4 || !text.StartsWith("${", StringComparison.Ordinal) || text[^1] != '}')
        {
            return false;
        }

        var inner = text[2..^1];
        var parts = inner.Split('.');
        if (parts.Any(p => p.Length == 0))
        {
            return false;
        }

        if (parts[0] == "input")
        {
            reference = new Reference(inner, null, parts[1..]);
            return true;
        }

        if (parts[0] == "steps" && parts.Length >= 2)
        {
            reference = new Reference(inner, parts[1], parts[2..]);
            return true;
        }

        return false;
    }

    /// <summary>A copy of <paramref name="json"/> with every reference replaced by the value it names.</summary>
    public static JsonElement Resolve(JsonElement json, JsonElement? input, IReadOnlyDictionary<string, JsonElement?> outputs)
    {
        var node = Replace(JsonNode.Parse(json.GetRawText()), input, outputs);
        return JsonSerializer.SerializeToElement(node);
    }

    private static JsonNode? Replace(JsonNode? node, JsonElement? input, IReadOnlyDictionary<string, JsonElement?> outputs)
    {
        switch (node)
        {
            case JsonValue value when value.TryGetValue<string>(out var text) && TryRead(text, out var reference):
                var root = reference.StepId is { } id ? outputs.GetValueOrDefault(id) : input;
                var found = Walk(root, reference.Path);
                return found is { } element ? JsonNode.Parse(element.GetRawText()) : null;
            case JsonObject obj:
                foreach (var key in obj.Select(p => p.Key).ToList())
                {
                    obj[key] = Replace(obj[key]?.DeepClone(), input, outputs);
                }

                return obj;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    array[i] = Replace(array[i]?.DeepClone(), input, outputs);
                }

                return array;
            default:
                return node;
        }
    }

    private static JsonElement? Walk(JsonElement? root, IReadOnlyList<string> path)
    {
        var current = root;
        foreach (var part in path)
        {
            if (current is not { ValueKind: JsonValueKind.Object } obj || !obj.TryGetProperty(part, out var next))
            {
                return null;
            }

            current = next;
        }

        return current is { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined } ? null : current;
    }
}
