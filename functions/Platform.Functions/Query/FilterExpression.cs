using System.Text.Json;

namespace Platform.Functions.Query;

/// <summary>
/// A parsed, type-checked filter (see <see cref="FilterParser"/>). Routes either evaluate it against each item with
/// <see cref="Evaluate"/> or walk the tree themselves; it is never turned back into text for a storage query.
/// </summary>
/// <remarks>
/// <see cref="Evaluate"/> reads a field through <c>valueOf(field)</c>, called with the name as the filter wrote it
/// (<c>status</c>, <c>fields.color</c>). It understands: <see cref="string"/>; numbers (<see cref="double"/>,
/// <see cref="int"/>, <see cref="long"/>, <see cref="decimal"/> and the other primitives); <see cref="bool"/>;
/// <see cref="DateTimeOffset"/> and <see cref="DateTime"/> (unspecified kind is UTC), or an ISO-8601 string for a
/// timestamp; any <see cref="IEnumerable{T}"/> of strings for a list; a <see cref="JsonElement"/> of any of those
/// (custom fields kept as JSON); and null. A comparison with a null value, or a value of another type than the
/// field's, is false (so <c>status ne 'active'</c> does not match a user without a status), except
/// <c>eq null</c> and <c>ne null</c>. Evaluation never throws on account of the values.
/// </remarks>
public abstract record FilterExpression
{
    private protected FilterExpression()
    {
    }

    /// <summary>Whether an item whose fields <paramref name="valueOf"/> reads matches the filter.</summary>
    public abstract bool Evaluate(Func<string, object?> valueOf);

    /// <summary><c>left and right</c>.</summary>
    public sealed record And(FilterExpression Left, FilterExpression Right) : FilterExpression
    {
        public override bool Evaluate(Func<string, object?> valueOf) => Left.Evaluate(valueOf) && Right.Evaluate(valueOf);
    }

    /// <summary><c>left or right</c>.</summary>
    public sealed record Or(FilterExpression Left, FilterExpression Right) : FilterExpression
    {
        public override bool Evaluate(Func<string, object?> valueOf) => Left.Evaluate(valueOf) || Right.Evaluate(valueOf);
    }

    /// <summary><c>not operand</c>.</summary>
    public sealed record Not(FilterExpression Operand) : FilterExpression
    {
        public override bool Evaluate(Func<string, object?> valueOf) => !Operand.Evaluate(valueOf);
    }

    /// <summary>
    /// <c>field op literal</c>. <see cref="Value"/> is a <see cref="string"/>, <see cref="double"/>,
    /// <see cref="bool"/> or <see cref="DateTimeOffset"/> of the field's type, or null (only with eq and ne).
    /// </summary>
    public sealed record Comparison(string Field, ComparisonOperator Operator, object? Value) : FilterExpression
    {
        public override bool Evaluate(Func<string, object?> valueOf)
        {
            ArgumentNullException.ThrowIfNull(valueOf);
            var actual = FieldValues.Normalize(valueOf(Field));
            if (Value is null)
            {
                return Operator switch
                {
                    ComparisonOperator.Eq => actual is null,
                    ComparisonOperator.Ne => actual is not null,
                    _ => false,
                };
            }

            if (FieldValues.CompareWithLiteral(actual, Value) is not { } order)
            {
                return false;
            }

            return Operator switch
            {
                ComparisonOperator.Eq => order == 0,
                ComparisonOperator.Ne => order != 0,
                ComparisonOperator.Gt => order > 0,
                ComparisonOperator.Ge => order >= 0,
                ComparisonOperator.Lt => order < 0,
                ComparisonOperator.Le => order <= 0,
                _ => false,
            };
        }
    }

    /// <summary><c>field in (v1, v2, ...)</c>: equal to one of the values, which are all of the field's type.</summary>
    public sealed record In(string Field, IReadOnlyList<object> Values) : FilterExpression
    {
        public override bool Evaluate(Func<string, object?> valueOf)
        {
            ArgumentNullException.ThrowIfNull(valueOf);
            var actual = FieldValues.Normalize(valueOf(Field));
            if (actual is null)
            {
                return false;
            }

            foreach (var value in Values)
            {
                if (FieldValues.CompareWithLiteral(actual, value) == 0)
                {
                    return true;
                }
            }

            return false;
        }

        // Two filters that say the same thing compare equal, as the other records do; a list compares by reference.
        public bool Equals(In? other) =>
            other is not null && Field == other.Field && Values.SequenceEqual(other.Values);

        public override int GetHashCode() => HashCode.Combine(Field, Values.Count);
    }

    /// <summary><c>contains(field, 'text')</c> or <c>field startswith 'text'</c>: case-insensitive (ordinal).</summary>
    public sealed record FunctionCall(StringFunction Function, string Field, string Value) : FilterExpression
    {
        public override bool Evaluate(Func<string, object?> valueOf)
        {
            ArgumentNullException.ThrowIfNull(valueOf);
            if (FieldValues.Normalize(valueOf(Field)) is not string actual)
            {
                return false;
            }

            return Function switch
            {
                StringFunction.Contains => actual.Contains(Value, StringComparison.OrdinalIgnoreCase),
                StringFunction.StartsWith => actual.StartsWith(Value, StringComparison.OrdinalIgnoreCase),
                _ => false,
            };
        }
    }

    /// <summary><c>field has 'text'</c>: the list holds an element equal to the text, ignoring case (ordinal).</summary>
    public sealed record Has(string Field, string Value) : FilterExpression
    {
        public override bool Evaluate(Func<string, object?> valueOf)
        {
            ArgumentNullException.ThrowIfNull(valueOf);
            if (FieldValues.Normalize(valueOf(Field)) is not IEnumerable<string?> elements)
            {
                return false;
            }

            foreach (var element in elements)
            {
                if (string.Equals(element, Value, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }

            return false;
        }
    }
}

/// <summary>The comparison operators of the filter language.</summary>
public enum ComparisonOperator
{
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// <summary>The string functions of the filter language.</summary>
public enum StringFunction
{
    Contains,
    StartsWith,
}

/// <summary>
/// Brings the values a route hands over to the few kinds the filter language knows, so that evaluation and sorting
/// agree and neither throws on an unexpected value.
/// </summary>
internal static class FieldValues
{
    /// <summary>null, <see cref="string"/>, <see cref="double"/>, <see cref="bool"/>, <see cref="DateTimeOffset"/>,
    /// <see cref="IEnumerable{T}"/> of strings, or the value unchanged when it is none of those.</summary>
    public static object? Normalize(object? value) => value switch
    {
        null => null,
        string or double or bool or DateTimeOffset => value,
        int number => (double)number,
        long number => (double)number,
        decimal number => (double)number,
        float number => (double)number,
        short number => (double)number,
        byte number => (double)number,
        sbyte number => (double)number,
        ushort number => (double)number,
        uint number => (double)number,
        ulong number => (double)number,
        DateTime time => ToOffset(time),
        JsonElement json => FromJson(json),
        _ => value,
    };

    /// <summary>
    /// The order of a normalized value against a parsed literal, or null when they cannot be compared (another type,
    /// NaN). A string value is read as an ISO timestamp when the literal is one, since JSON keeps dates as text.
    /// </summary>
    public static int? CompareWithLiteral(object? actual, object literal) => (actual, literal) switch
    {
        (string value, string text) => Math.Sign(string.CompareOrdinal(value, text)),
        (double value, double number) => double.IsNaN(value) ? null : value.CompareTo(number),
        (bool value, bool flag) => value.CompareTo(flag),
        (DateTimeOffset value, DateTimeOffset time) => value.CompareTo(time),
        (string value, DateTimeOffset time) => FilterParser.TryParseTimestamp(value, out var parsed) ? parsed.CompareTo(time) : null,
        _ => null,
    };

    /// <summary>A total order of two normalized values for sorting: by kind, then by value; nulls are not handled here.</summary>
    public static int CompareForSort(object left, object right)
    {
        var byKind = Rank(left).CompareTo(Rank(right));
        if (byKind != 0)
        {
            return byKind;
        }

        return (left, right) switch
        {
            (bool a, bool b) => a.CompareTo(b),
            (double a, double b) => a.CompareTo(b),
            (DateTimeOffset a, DateTimeOffset b) => a.CompareTo(b),
            (string a, string b) => string.CompareOrdinal(a, b),
            _ => 0,
        };
    }

    private static int Rank(object value) => value switch
    {
        bool => 0,
        double => 1,
        DateTimeOffset => 2,
        string => 3,
        _ => 4,
    };

    private static DateTimeOffset ToOffset(DateTime time) => time.Kind switch
    {
        // Going through UTC rather than the local offset keeps DateTime.MinValue/MaxValue from throwing.
        DateTimeKind.Local => new DateTimeOffset(DateTime.SpecifyKind(time.ToUniversalTime(), DateTimeKind.Utc)),
        _ => new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)),
    };

    private static object? FromJson(JsonElement json) => json.ValueKind switch
    {
        JsonValueKind.String => json.GetString(),
        JsonValueKind.Number => json.TryGetDouble(out var number) ? number : null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => json.EnumerateArray()
            .Select(element => element.ValueKind == JsonValueKind.String ? element.GetString() : null)
            .ToList(),
        JsonValueKind.Object => json,
        _ => null,
    };
}
