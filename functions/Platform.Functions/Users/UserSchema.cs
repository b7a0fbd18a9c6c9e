using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Caching.Memory;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>One custom field of users, as declared by the tenant.</summary>
public sealed record FieldDefinition(
    string Name,
    string Type,
    bool Required = false,
    string? Pattern = null,
    double? Min = null,
    double? Max = null,
    int? MaxLength = null,
    IReadOnlyList<string>? Values = null);

public sealed record SchemaDocument(IReadOnlyList<FieldDefinition> Fields);

/// <summary>
/// The tenant's custom-field schema for users, stored as row <c>s:users</c> in the tenant's partition of the
/// <c>users</c> table. Values are checked against it on every write. Changing it never rewrites users: a removed
/// field stays readable on users that have it until they are written again; a field made required applies to
/// writes from then on.
/// </summary>
public sealed partial class UserSchemas(StorageAccount storage, IMemoryCache cache)
{
    public const int MaxFields = 100;
    public const int MaxPatternLength = 500;
    public const int MaxValues = 100;
    public const int MaxStringLength = 10_000;
    public const int MaxFieldsJsonLength = 16 * 1024;
    /// <summary>
    /// Patterns run on the non-backtracking engine: its time is linear in the value (a DFA, falling back to an NFA
    /// simulation when the automaton grows large), so no pattern can cost more than a pass over its value. The
    /// backtracking engine with a timeout was not a bound: 50 ms per value, times 100 fields, times 1000 bulk
    /// operations was 40 minutes of CPU for one request. The timeout stays as a last guard.
    /// </summary>
    public const RegexOptions PatternOptions = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking;
    public static readonly TimeSpan PatternTimeout = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// The largest automaton (the engine's own estimate, in nodes) a pattern may compile to. Linear time is linear in
    /// the automaton too: nested counted repetition such as <c>((((.{1,5}){1,5}){1,5}){1,5})!</c> (3,135 nodes) took
    /// 10 s per 10,000-character value on the NFA fallback, past its own timeout. At 1,000, ordinary patterns
    /// (<c>[a-z]{1,100}</c> is 510) pass and the worst measured costs about 4 µs per character.
    /// </summary>
    public const int MaxPatternAutomatonSize = 1000;
    public static readonly IReadOnlySet<string> Types = new HashSet<string>(StringComparer.Ordinal) { "string", "number", "boolean", "date", "enum" };
    private const string RowKey = "s:users";
    private static readonly string[] IsoDates = ["yyyy-MM-dd", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", "yyyy-MM-dd'T'HH:mmK"];

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]{0,39}$")]
    private static partial Regex FieldName();

    /// <summary>
    /// Each loaded schema's patterns, compiled once: a schema document is immutable and cached per tenant, so its
    /// instance is its version, and the compiled patterns go away with it.
    /// </summary>
    private static readonly ConditionalWeakTable<SchemaDocument, IReadOnlyDictionary<string, Regex?>> Compiled = new();

    // The engine reads its size limit from the AppContext at each construction. Process-wide, but nothing else in the
    // app builds a non-backtracking regex; set before the first pattern is compiled here.
    static UserSchemas() => AppContext.SetData("REGEX_NONBACKTRACKING_MAX_AUTOMATA_SIZE", MaxPatternAutomatonSize);

    public async Task<SchemaDocument> GetAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        if (cache.TryGetValue("schema:" + tenant.Value, out SchemaDocument? schema) && schema is not null)
        {
            return schema;
        }

        var row = await storage.TenantTable(UserDirectory.TableName).For(tenant).GetAsync<SchemaEntity>(RowKey, cancellationToken);
        schema = row is null ? new SchemaDocument([]) : JsonSerializer.Deserialize<SchemaDocument>(row.Document, JsonSerializerOptions.Web)!;
        cache.Set("schema:" + tenant.Value, schema, TimeSpan.FromSeconds(30));
        return schema;
    }

    /// <param name="happened">The change's events, committed with the schema row.</param>
    public async Task SaveAsync(TenantId tenant, SchemaDocument schema, EventPublisher events, IReadOnlyList<PlatformEvent> happened, CancellationToken cancellationToken)
    {
        await events.CommitAsync(storage.TenantTable(UserDirectory.TableName).For(tenant),
            new TableTransactionAction(TableTransactionActionType.UpsertReplace,
                new SchemaEntity { RowKey = RowKey, Document = JsonSerializer.Serialize(schema, JsonSerializerOptions.Web) }),
            happened, cancellationToken);
        cache.Remove("schema:" + tenant.Value);
    }

    /// <summary>Checks a schema a tenant wants to store; patterns are compiled here so a broken one is a 400, not a later 500.</summary>
    public static Validation Check(SchemaDocument? schema)
    {
        var validation = new Validation();
        if (schema?.Fields is not { } fields)
        {
            return validation.Add("fields", "is required");
        }

        if (fields.Count > MaxFields)
        {
            validation.Add("fields", $"at most {MaxFields} fields");
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < fields.Count && i < MaxFields; i++)
        {
            var field = fields[i];
            var at = $"fields[{i}]";
            if (field?.Name is null || !FieldName().IsMatch(field.Name))
            {
                validation.Add($"{at}.name", "must be 1-40 letters, digits or _, starting with a letter");
                continue;
            }

            if (!seen.Add(field.Name))
            {
                validation.Add($"{at}.name", $"'{field.Name}' is declared twice");
            }

            if (field.Type is null || !Types.Contains(field.Type))
            {
                validation.Add($"{at}.type", "must be string, number, boolean, date or enum");
            }

            if (field.Pattern is { } pattern)
            {
                if (field.Type != "string" || pattern.Length > MaxPatternLength)
                {
                    validation.Add($"{at}.pattern", $"only on string fields, at most {MaxPatternLength} characters");
                }
                else
                {
                    try
                    {
                        _ = new Regex(pattern, PatternOptions, PatternTimeout);
                    }
                    catch (NotSupportedException ex)
                    {
                        // What only backtracking can run (backreferences, lookarounds, atomic groups, conditionals) is what
                        // can take exponential time, and a huge automaton makes linear time slow: refused here, once.
                        validation.Add($"{at}.pattern",
                            "must be matchable in linear time: no backreferences, lookarounds, atomic groups or conditionals, and limited nested repetition. " + ex.Message);
                    }
                    catch (ArgumentException)
                    {
                        validation.Add($"{at}.pattern", "is not a valid regular expression");
                    }
                }
            }

            if (field.MaxLength is { } maxLength && (maxLength < 1 || maxLength > MaxStringLength || field.Type != "string"))
            {
                validation.Add($"{at}.maxLength", $"only on string fields, 1-{MaxStringLength}");
            }

            if ((field.Min is not null || field.Max is not null) && field.Type != "number")
            {
                validation.Add($"{at}.min", "min and max apply to number fields");
            }
            else if (field.Min > field.Max || field.Min is double.NaN || field.Max is double.NaN)
            {
                validation.Add($"{at}.min", "must not exceed max");
            }

            if (field.Type == "enum" && (field.Values is not { Count: > 0 and <= MaxValues } values || values.Any(v => v is null || v.Length is 0 or > 100)))
            {
                validation.Add($"{at}.values", $"an enum needs 1-{MaxValues} values of 1-100 characters");
            }
        }

        return validation;
    }

    /// <summary>
    /// Validates the custom field values of a write and merges them into <paramref name="stored"/>: a value replaces,
    /// <c>null</c> removes. Errors are named <c>fields.&lt;name&gt;</c>.
    /// </summary>
    public static string? Apply(SchemaDocument schema, string stored, JsonElement? changes, Validation validation)
    {
        var merged = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(stored) ?? [];
        if (changes is { } given)
        {
            if (given.ValueKind != JsonValueKind.Object)
            {
                validation.Add("fields", "must be a JSON object");
                return null;
            }

            // Sizes before patterns: a request too large to store is refused before any value is matched.
            if (given.EnumerateObject().Count() > MaxFields || given.GetRawText().Length > MaxFieldsJsonLength)
            {
                validation.Add("fields", $"must be at most {MaxFields} values and {MaxFieldsJsonLength} characters of JSON");
                return null;
            }

            var patterns = PatternsOf(schema);
            foreach (var property in given.EnumerateObject())
            {
                var definition = schema.Fields.FirstOrDefault(f => f.Name == property.Name);
                var name = $"fields.{(property.Name.Length > 40 ? property.Name[..40] : property.Name)}";
                if (definition is null)
                {
                    validation.Add(name, "is not a field of the user schema");
                }
                else if (property.Value.ValueKind == JsonValueKind.Null)
                {
                    merged.Remove(property.Name);
                }
                else if (CheckValue(definition, patterns, property.Value) is { } problem)
                {
                    validation.Add(name, problem);
                }
                else
                {
                    merged[property.Name] = property.Value.Clone();
                }
            }
        }

        foreach (var required in schema.Fields.Where(f => f.Required && !merged.ContainsKey(f.Name)))
        {
            validation.Add($"fields.{required.Name}", "is required");
        }

        var json = JsonSerializer.Serialize(merged);
        if (json.Length > MaxFieldsJsonLength)
        {
            validation.Add("fields", $"must be at most {MaxFieldsJsonLength} characters of JSON");
        }

        return validation.IsValid ? json : null;
    }

    /// <summary>The schema's patterns by field name, compiled for the non-backtracking engine; null for one it cannot run.</summary>
    private static IReadOnlyDictionary<string, Regex?> PatternsOf(SchemaDocument schema) =>
        Compiled.GetValue(schema, static document =>
        {
            var patterns = new Dictionary<string, Regex?>(StringComparer.Ordinal);
            foreach (var field in document.Fields)
            {
                if (field.Pattern is { } pattern)
                {
                    try
                    {
                        patterns[field.Name] = new Regex(pattern, PatternOptions, PatternTimeout);
                    }
                    catch (Exception ex) when (ex is NotSupportedException or ArgumentException)
                    {
                        // Saved before patterns had to run in linear time: values are refused until the schema is fixed.
                        patterns[field.Name] = null;
                    }
                }
            }

            return patterns;
        });

    private static string? CheckValue(FieldDefinition field, IReadOnlyDictionary<string, Regex?> patterns, JsonElement value)
    {
        switch (field.Type)
        {
            case "string":
                if (value.ValueKind != JsonValueKind.String)
                {
                    return "must be a string";
                }

                var text = value.GetString()!;
                if (text.Length > (field.MaxLength ?? MaxStringLength))
                {
                    return $"must be at most {field.MaxLength ?? MaxStringLength} characters";
                }

                if (field.Pattern is not null)
                {
                    if (!patterns.TryGetValue(field.Name, out var pattern) || pattern is null)
                    {
                        return "cannot be checked: the field's pattern is not matchable in linear time; the schema must be updated";
                    }

                    try
                    {
                        if (!pattern.IsMatch(text))
                        {
                            return "does not match the field's pattern";
                        }
                    }
                    catch (RegexMatchTimeoutException)
                    {
                        return "could not be checked against the field's pattern in time";
                    }
                }

                return null;
            case "number":
                if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
                {
                    return "must be a number";
                }

                return number < field.Min ? $"must be at least {field.Min}" : number > field.Max ? $"must be at most {field.Max}" : null;
            case "boolean":
                return value.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : "must be true or false";
            case "date":
                // Strict ISO-8601 (a date, or a date-time with Z or an offset): what filters can compare later.
                return value.ValueKind == JsonValueKind.String &&
                    DateTimeOffset.TryParseExact(value.GetString(), IsoDates, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out _)
                    ? null : "must be an ISO-8601 date (2026-03-04 or 2026-03-04T10:00:00Z)";
            case "enum":
                return value.ValueKind == JsonValueKind.String && field.Values!.Contains(value.GetString()!) ? null : $"must be one of {string.Join(", ", field.Values!)}";
            default:
                return "has an unknown type";
        }
    }

    private sealed class SchemaEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }

        public string Document { get; set; } = "{}";
    }
}
