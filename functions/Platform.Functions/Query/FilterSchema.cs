using System.Collections.Frozen;

namespace Platform.Functions.Query;

/// <summary>
/// What one list route lets clients filter and sort on: its own fields with their types, and optionally the
/// tenant's custom fields, addressed as <c>fields.&lt;name&gt;</c>. Field names are case-sensitive (camelCase as in
/// the JSON of the resource); the filter's keywords are not.
/// </summary>
public sealed class FilterSchema
{
    /// <summary>How a filter addresses a custom field: <c>fields.color</c>.</summary>
    public const string CustomFieldPrefix = "fields.";

    private readonly FrozenDictionary<string, FieldType> _fields;
    private readonly Func<string, FieldType?>? _customFieldType;
    private readonly Func<string, FieldType?>? _otherFieldType;

    /// <param name="fields">Field name (a plain identifier such as <c>createdAt</c>) to its type.</param>
    /// <param name="customFieldType">
    /// The type of the custom field of a name (given without the <c>fields.</c> prefix), or null when the tenant has
    /// no such field; null when the resource has no custom fields. It is called while parsing, once per mention.
    /// </param>
    /// <param name="otherFieldType">
    /// The type of any other plain name, or null when it is unknown: for values whose fields are known only when they
    /// exist (a workflow condition over a job's headline figures). Null: only <paramref name="fields"/> are known.
    /// </param>
    public FilterSchema(IReadOnlyDictionary<string, FieldType> fields, Func<string, FieldType?>? customFieldType = null, Func<string, FieldType?>? otherFieldType = null)
    {
        ArgumentNullException.ThrowIfNull(fields);
        foreach (var (name, type) in fields)
        {
            // A name the lexer cannot read as one identifier, or one that reads as a keyword, could never be
            // filtered on; better to find out when the route is written than from a client's 400.
            if (!FilterParser.IsIdentifier(name) || FilterParser.IsKeyword(name) || name == "fields")
            {
                throw new ArgumentException($"'{name}' cannot be a filter field name.", nameof(fields));
            }

            if (!Enum.IsDefined(type))
            {
                throw new ArgumentException($"Field '{name}' has no valid type.", nameof(fields));
            }
        }

        _fields = fields.ToFrozenDictionary(StringComparer.Ordinal);
        _customFieldType = customFieldType;
        _otherFieldType = otherFieldType;
    }

    /// <summary>The route's own fields (custom fields are resolved on demand and not listed).</summary>
    public IReadOnlyDictionary<string, FieldType> Fields => _fields;

    /// <summary>The route's own fields that <c>sort</c> accepts: every field that is not a list.</summary>
    public IEnumerable<string> SortableFields => _fields.Where(entry => entry.Value != FieldType.StringList).Select(entry => entry.Key);

    /// <summary>The type of <paramref name="field"/> (a name or <c>fields.&lt;name&gt;</c>), or null when unknown.</summary>
    public FieldType? TypeOf(string field)
    {
        ArgumentNullException.ThrowIfNull(field);
        if (_fields.TryGetValue(field, out var type))
        {
            return type;
        }

        if (_customFieldType is null || !field.StartsWith(CustomFieldPrefix, StringComparison.Ordinal))
        {
            return _otherFieldType is not null && FilterParser.IsIdentifier(field) && !FilterParser.IsKeyword(field) ? _otherFieldType(field) : null;
        }

        var name = field[CustomFieldPrefix.Length..];
        return FilterParser.IsIdentifier(name) ? _customFieldType(name) : null;
    }

    /// <summary>Whether <c>sort</c> accepts <paramref name="field"/>: a known field that is not a list.</summary>
    public bool IsSortable(string field) => TypeOf(field) is { } type && type != FieldType.StringList;
}
