using System.Globalization;

namespace Platform.Functions.Query;

/// <summary>One field of a <c>sort</c> parameter: a field, ascending unless written <c>-field</c>.</summary>
public readonly record struct SortField(string Field, bool Descending);

/// <summary>
/// The <c>sort</c> parameter of a list route: up to <see cref="MaxFields"/> comma-separated fields, each <c>field</c> or
/// <c>-field</c> (descending), e.g. <c>sort=status,-createdAt</c>. Every field must be sortable in the route's
/// <see cref="FilterSchema"/> (known, and not a list).
/// </summary>
public sealed class SortSpec
{
    /// <summary>Most fields in one <c>sort</c>.</summary>
    public const int MaxFields = 3;

    // Kept beside the fields so that Compare can read a timestamp kept as text (a custom date field in JSON) as one.
    private readonly FieldType[] _types;

    private SortSpec(IReadOnlyList<SortField> fields, FieldType[] types)
    {
        Fields = fields;
        _types = types;
    }

    /// <summary>No sort requested: <see cref="Compare"/> says every pair is equal, so the route's own order stands.</summary>
    public static SortSpec None { get; } = new([], []);

    /// <summary>The fields to sort by, most significant first.</summary>
    public IReadOnlyList<SortField> Fields { get; }

    /// <summary>
    /// Parses <paramref name="text"/>; null, empty or white space is <see cref="None"/>. Routes answer a
    /// <see cref="FilterException"/> here with 400 <c>invalid_sort</c>.
    /// </summary>
    /// <exception cref="FilterException">An empty, unknown, unsortable or repeated field, too many fields, or text longer than
    /// <see cref="FilterParser.MaxLength"/>.</exception>
    public static SortSpec Parse(string? text, FilterSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        if (string.IsNullOrWhiteSpace(text))
        {
            return None;
        }

        if (text.Length > FilterParser.MaxLength)
        {
            throw new FilterException($"Sort longer than {FilterParser.MaxLength} characters", FilterParser.MaxLength);
        }

        var fields = new List<SortField>();
        var types = new List<FieldType>();
        var start = 0;
        while (true)
        {
            var end = text.IndexOf(',', start);
            if (end < 0)
            {
                end = text.Length;
            }

            if (fields.Count == MaxFields)
            {
                throw new FilterException($"More than {MaxFields} sort fields", start);
            }

            var (field, type) = ParseField(text, start, end, schema, fields);
            fields.Add(field);
            types.Add(type);
            if (end == text.Length)
            {
                return new SortSpec(fields, [.. types]);
            }

            start = end + 1;
        }
    }

    /// <summary>
    /// Orders two items by the fields in turn: a total order in which a null (or missing) value sorts after every
    /// value in either direction, and values of an unexpected type sort by kind rather than throwing. Routes that page
    /// should end with their own unique tie-breaker (the id) so that items equal on every field keep a stable order
    /// across pages.
    /// </summary>
    public int Compare(Func<string, object?> left, Func<string, object?> right)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        for (var i = 0; i < Fields.Count; i++)
        {
            var sorted = Fields[i];
            var a = ValueOf(left, sorted.Field, _types[i]);
            var b = ValueOf(right, sorted.Field, _types[i]);
            var order = (a, b) switch
            {
                (null, null) => 0,
                (null, _) => 1,
                (_, null) => -1,
                _ => sorted.Descending ? -FieldValues.CompareForSort(a, b) : FieldValues.CompareForSort(a, b),
            };
            if (order != 0)
            {
                return order;
            }
        }

        return 0;
    }

    /// <summary><see cref="Compare"/> as a comparer of items, for <c>Order</c>/<c>Sort</c>.</summary>
    public IComparer<T> ToComparer<T>(Func<T, string, object?> valueOf)
    {
        ArgumentNullException.ThrowIfNull(valueOf);
        return Comparer<T>.Create((x, y) => Compare(field => valueOf(x, field), field => valueOf(y, field)));
    }

    /// <summary>Longest string a sort key keeps (see <see cref="SortKeyValue"/>): tokens travel in URLs.</summary>
    public const int MaxKeyLength = 256;

    /// <summary>
    /// The values an item is sorted by, in a form a continuation token can carry: with the item's id they are the
    /// item's exact place in the order, so the next page can start right after it even when that item has since
    /// changed, gone, or others were inserted.
    /// </summary>
    public IReadOnlyList<SortKeyValue?> KeyOf(Func<string, object?> valueOf)
    {
        ArgumentNullException.ThrowIfNull(valueOf);
        var key = new SortKeyValue?[Fields.Count];
        for (var i = 0; i < Fields.Count; i++)
        {
            key[i] = SortKeyValue.From(ValueOf(valueOf, Fields[i].Field, _types[i]));
        }

        return key;
    }

    /// <summary>
    /// Orders an item against a key from <see cref="KeyOf"/> exactly as <see cref="Compare"/> orders two items. A
    /// string cut to <see cref="MaxKeyLength"/> compares by that prefix only, so items sharing those first characters
    /// count as equal to the key and the id decides among them.
    /// </summary>
    public int CompareToKey(Func<string, object?> valueOf, IReadOnlyList<SortKeyValue?> key)
    {
        ArgumentNullException.ThrowIfNull(valueOf);
        ArgumentNullException.ThrowIfNull(key);
        for (var i = 0; i < Fields.Count && i < key.Count; i++)
        {
            var sorted = Fields[i];
            var a = ValueOf(valueOf, sorted.Field, _types[i]);
            var b = key[i];
            var order = (a, b) switch
            {
                (null, null) => 0,
                (null, _) => 1,
                (_, null) => -1,
                (string text, { Cut: true, Kind: SortKeyValue.Text }) =>
                    Direction(sorted, string.CompareOrdinal(text.Length > b.Value.Length ? text[..b.Value.Length] : text, b.Value)),
                _ => Direction(sorted, FieldValues.CompareForSort(a, b.ToValue())),
            };
            if (order != 0)
            {
                return order;
            }
        }

        return 0;
    }

    private static int Direction(SortField field, int order) => field.Descending ? -Math.Sign(order) : Math.Sign(order);

    private static object? ValueOf(Func<string, object?> valueOf, string field, FieldType type)
    {
        var value = FieldValues.Normalize(valueOf(field));
        return type == FieldType.Timestamp && value is string text && FilterParser.TryParseTimestamp(text, out var time) ? time : value;
    }

    private static (SortField Field, FieldType Type) ParseField(string text, int start, int end, FilterSchema schema, List<SortField> earlier)
    {
        var position = start;
        while (position < end && char.IsWhiteSpace(text[position]))
        {
            position++;
        }

        var trimmedEnd = end;
        while (trimmedEnd > position && char.IsWhiteSpace(text[trimmedEnd - 1]))
        {
            trimmedEnd--;
        }

        var descending = position < trimmedEnd && text[position] == '-';
        var nameStart = descending ? position + 1 : position;
        if (nameStart >= trimmedEnd)
        {
            throw new FilterException("Expected a field name", nameStart);
        }

        var field = text[nameStart..trimmedEnd];
        if (schema.TypeOf(field) is not { } type)
        {
            throw new FilterException($"Unknown field {FilterParser.Quote(field)}", nameStart);
        }

        if (type == FieldType.StringList)
        {
            throw new FilterException($"Field '{field}' is a list and cannot be sorted on", nameStart);
        }

        if (earlier.Exists(sorted => sorted.Field == field))
        {
            throw new FilterException($"Field '{field}' is sorted on twice", nameStart);
        }

        return (new SortField(field, descending), type);
    }
}

/// <summary>
/// One sort value as a continuation token carries it: its kind (b, n, t, s, or o for a value of no sortable kind)
/// and its invariant text; a string longer than <see cref="SortSpec.MaxKeyLength"/> is kept cut, marked
/// <see cref="Cut"/>.
/// </summary>
public sealed record SortKeyValue(string Kind, string Value, bool Cut = false)
{
    public const string Boolean = "b";
    public const string Number = "n";
    public const string Time = "t";
    public const string Text = "s";
    public const string Other = "o";

    // Every value of no sortable kind compares equal to every other (FieldValues ranks them last), so one stands for all.
    private static readonly object OtherValue = new();

    internal static SortKeyValue? From(object? value) => value switch
    {
        null => null,
        bool flag => new(Boolean, flag ? "1" : "0"),
        double number => new(Number, number.ToString("R", CultureInfo.InvariantCulture)),
        DateTimeOffset time => new(Time, time.ToString("O", CultureInfo.InvariantCulture)),
        string text when text.Length > SortSpec.MaxKeyLength =>
            new(Text, text[..(char.IsHighSurrogate(text[SortSpec.MaxKeyLength - 1]) ? SortSpec.MaxKeyLength - 1 : SortSpec.MaxKeyLength)], true),
        string text => new(Text, text),
        _ => new(Other, ""),
    };

    /// <summary>The value again, as <see cref="FieldValues.Normalize"/> would give it; text that does not parse reads as no sortable kind.</summary>
    internal object ToValue() => Kind switch
    {
        Boolean => Value == "1",
        Number when double.TryParse(Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) => number,
        Time when DateTimeOffset.TryParse(Value, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var time) => time,
        Text => Value,
        _ => OtherValue,
    };
}
