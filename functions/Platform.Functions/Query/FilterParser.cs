using System.Collections.Frozen;
using System.Globalization;
using System.Text;

namespace Platform.Functions.Query;

/// <summary>
/// The contract's filter language, e.g.
/// <c>status eq 'active' and (createdAt ge 2026-01-01T00:00:00Z or roles has 'admin')</c>, parsed and checked against
/// a route's <see cref="FilterSchema"/> into a <see cref="FilterExpression"/>.
/// </summary>
/// <remarks>
/// <para>Grammar (keywords are case-insensitive, field names are not):</para>
/// <code>
/// filter     := or
/// or         := and ('or' and)*
/// and        := unary ('and' unary)*
/// unary      := 'not' unary | '(' or ')' | predicate
/// predicate  := field ('eq'|'ne'|'gt'|'ge'|'lt'|'le') literal
///             | field ('contains'|'startswith'|'has') string
///             | ('contains'|'startswith') '(' field ',' string ')'
///             | field 'in' '(' literal (',' literal)* ')'
/// field      := name | 'fields.' name          name := [A-Za-z_][A-Za-z0-9_]*
/// literal    := 'text' ('' inside is a quote) | -12.5e3 | true | false | null
///             | 2026-01-01 | 2026-01-01T00:00:00Z | 2026-01-01T00:00:00.123+02:00
/// </code>
/// <para>
/// Type rules: ordering operators apply to strings (ordinal), numbers and timestamps; <c>contains</c> and
/// <c>startswith</c> to strings; <c>has</c> to string lists, which take no other operator; <c>null</c> only with
/// <c>eq</c> and <c>ne</c>, on any field. A timestamp field also accepts a quoted ISO timestamp.
/// </para>
/// <para>
/// Every error, including an exceeded limit, is a <see cref="FilterException"/> naming the 0-based position. The lexer
/// and parser are hand-written, look at each character a bounded number of times and recurse at most
/// <see cref="MaxDepth"/> levels, so time is linear in the text, which is itself capped at <see cref="MaxLength"/>.
/// </para>
/// </remarks>
public static class FilterParser
{
    /// <summary>Longest filter text, in characters; a longer one fails at position 4,000 before anything else.</summary>
    public const int MaxLength = 4_000;

    /// <summary>Deepest nesting of parentheses and <c>not</c> (each counts one level).</summary>
    public const int MaxDepth = 32;

    /// <summary>Most predicates (comparisons, <c>in</c>, <c>contains</c>, <c>startswith</c>, <c>has</c>) in one filter.</summary>
    public const int MaxComparisons = 100;

    /// <summary>Most literals in one <c>in (...)</c> list.</summary>
    public const int MaxInValues = 100;

    /// <summary>Longest string literal, in characters after unescaping.</summary>
    public const int MaxStringLength = 1_000;

    // Long enough for 2026-01-01T00:00:00.1234567+14:00; anything longer is not a timestamp and is not scanned further.
    private const int MaxTimestampLength = 40;

    // Offending text is quoted in messages; a cap keeps a 1,000-character literal from being echoed back whole.
    private const int MaxQuotedLength = 30;

    private static readonly FrozenDictionary<string, Keyword> Keywords = new Dictionary<string, Keyword>
    {
        ["and"] = Keyword.And,
        ["or"] = Keyword.Or,
        ["not"] = Keyword.Not,
        ["eq"] = Keyword.Eq,
        ["ne"] = Keyword.Ne,
        ["gt"] = Keyword.Gt,
        ["ge"] = Keyword.Ge,
        ["lt"] = Keyword.Lt,
        ["le"] = Keyword.Le,
        ["contains"] = Keyword.Contains,
        ["startswith"] = Keyword.StartsWith,
        ["has"] = Keyword.Has,
        ["in"] = Keyword.In,
        ["true"] = Keyword.True,
        ["false"] = Keyword.False,
        ["null"] = Keyword.Null,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    private static readonly string[] TimestampFormats =
    [
        "yyyy-MM-dd",
        "yyyy-MM-dd'T'HH:mm'Z'",
        "yyyy-MM-dd'T'HH:mm:ss'Z'",
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'",
        "yyyy-MM-dd'T'HH:mmzzz",
        "yyyy-MM-dd'T'HH:mm:sszzz",
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz",
    ];

    /// <summary>Parses and type-checks <paramref name="text"/> against what the route allows.</summary>
    /// <exception cref="FilterException">The filter is malformed, names an unknown field, mismatches a type or exceeds a limit.</exception>
    public static FilterExpression Parse(string text, FilterSchema schema)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(schema);
        if (text.Length > MaxLength)
        {
            throw new FilterException($"Filter longer than {MaxLength} characters", MaxLength);
        }

        return new Parser(text, schema).ParseFilter();
    }

    /// <summary>
    /// <see cref="Parse"/> for a query parameter that may be absent: null when <paramref name="text"/> is null, empty
    /// or white space (no filter), so that every list route treats <c>filter=</c> alike.
    /// </summary>
    public static FilterExpression? ParseOptional(string? text, FilterSchema schema) =>
        string.IsNullOrWhiteSpace(text) ? null : Parse(text, schema);

    internal static bool IsKeyword(string word) => Keywords.ContainsKey(word);

    /// <summary>Whether <paramref name="name"/> is one plain name: <c>[A-Za-z_][A-Za-z0-9_]*</c>.</summary>
    internal static bool IsIdentifier(string name)
    {
        if (name.Length == 0 || !IsIdentifierStart(name[0]))
        {
            return false;
        }

        foreach (var c in name.AsSpan(1))
        {
            if (!IsIdentifierPart(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads an ISO-8601 date (UTC midnight) or date and time with <c>Z</c> or an offset; nothing looser.</summary>
    internal static bool TryParseTimestamp(string text, out DateTimeOffset value)
    {
        value = default;
        if (text.Length is < 10 or > MaxTimestampLength)
        {
            return false;
        }

        // The formats' fraction and offset are looser than RFC 3339 ("00.Z", "+0100"); hold both to its shape.
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0 && (dot + 1 == text.Length || !char.IsAsciiDigit(text[dot + 1])))
        {
            return false;
        }

        if (text.Length > 10 && text[^1] is not ('Z' or 'z') && !(text[^3] == ':' && text[^6] is '+' or '-'))
        {
            return false;
        }

        // RFC 3339 allows a lower-case t and z; the formats are written upper-case.
        return DateTimeOffset.TryParseExact(
            text.ToUpperInvariant(), TimestampFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out value);
    }

    internal static string Quote(ReadOnlySpan<char> text) =>
        text.Length <= MaxQuotedLength ? $"'{text}'" : $"'{text[..MaxQuotedLength]}...'";

    private static bool IsIdentifierStart(char c) => char.IsAsciiLetter(c) || c == '_';

    private static bool IsIdentifierPart(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    private static string DescribeType(FieldType type) => type switch
    {
        FieldType.String => "a string",
        FieldType.Number => "a number",
        FieldType.Boolean => "a boolean",
        FieldType.Timestamp => "a timestamp",
        FieldType.StringList => "a list",
        _ => "an unknown type",
    };

    private enum Keyword
    {
        None,
        And,
        Or,
        Not,
        Eq,
        Ne,
        Gt,
        Ge,
        Lt,
        Le,
        Contains,
        StartsWith,
        Has,
        In,
        True,
        False,
        Null,
    }

    private enum TokenKind
    {
        End,
        Name,
        String,
        Number,
        Timestamp,
        OpenParen,
        CloseParen,
        Comma,
    }

    /// <summary>One token: <see cref="Value"/> is the name or unescaped string, a double, or a DateTimeOffset.</summary>
    private readonly record struct Token(TokenKind Kind, int Start, int End, object? Value, Keyword Keyword);

    /// <summary>Recursive descent over a pull lexer; one token of lookahead is all the grammar needs.</summary>
    private sealed class Parser(string text, FilterSchema schema)
    {
        private int _next;
        private int _depth;
        private int _comparisons;
        private Token _token;

        public FilterExpression ParseFilter()
        {
            Advance();
            if (_token.Kind == TokenKind.End)
            {
                throw Error(_token.Start, "Empty filter");
            }

            var expression = ParseOr();
            if (_token.Kind != TokenKind.End)
            {
                throw Error(_token.Start, $"Unexpected {Describe(_token)}; expected 'and', 'or' or the end");
            }

            return expression;
        }

        private FilterExpression ParseOr()
        {
            var left = ParseAnd();
            while (_token.Keyword == Keyword.Or)
            {
                Advance();
                left = new FilterExpression.Or(left, ParseAnd());
            }

            return left;
        }

        private FilterExpression ParseAnd()
        {
            var left = ParseUnary();
            while (_token.Keyword == Keyword.And)
            {
                Advance();
                left = new FilterExpression.And(left, ParseUnary());
            }

            return left;
        }

        private FilterExpression ParseUnary()
        {
            if (_token.Keyword == Keyword.Not)
            {
                Enter();
                Advance();
                var operand = ParseUnary();
                _depth--;
                return new FilterExpression.Not(operand);
            }

            if (_token.Kind == TokenKind.OpenParen)
            {
                var open = _token.Start;
                Enter();
                Advance();
                var inner = ParseOr();
                if (_token.Kind != TokenKind.CloseParen)
                {
                    throw Error(_token.Start, $"Expected ')' to close the '(' opened at position {open}, found {Describe(_token)}");
                }

                Advance();
                _depth--;
                return inner;
            }

            return ParsePredicate();
        }

        private void Enter()
        {
            if (++_depth > MaxDepth)
            {
                throw Error(_token.Start, $"Nesting deeper than {MaxDepth} levels");
            }
        }

        private FilterExpression ParsePredicate()
        {
            var start = _token.Start;
            if (++_comparisons > MaxComparisons)
            {
                throw Error(start, $"More than {MaxComparisons} comparisons");
            }

            if (_token.Keyword is Keyword.Contains or Keyword.StartsWith)
            {
                return ParseFunctionCall();
            }

            var (field, type) = ParseField();
            var op = _token;
            switch (op.Keyword)
            {
                case Keyword.Eq or Keyword.Ne or Keyword.Gt or Keyword.Ge or Keyword.Lt or Keyword.Le:
                    Advance();
                    return ParseComparison(field, type, op);
                case Keyword.Contains or Keyword.StartsWith:
                    Advance();
                    return StringFunctionOf(field, type, op, ParseString(field, type, op));
                case Keyword.Has:
                    Advance();
                    if (type != FieldType.StringList)
                    {
                        throw Error(op.Start, $"'has' applies to list fields; '{field}' is {DescribeType(type)}");
                    }

                    return new FilterExpression.Has(field, ParseString(field, type, op));
                case Keyword.In:
                    Advance();
                    return ParseIn(field, type, op);
                default:
                    throw Error(op.Start, $"Expected an operator after '{field}', found {Describe(op)}");
            }
        }

        private FilterExpression.FunctionCall ParseFunctionCall()
        {
            var function = _token;
            Advance();
            Expect(TokenKind.OpenParen, $"'(' after {Describe(function)}");
            var (field, type) = ParseField();
            Expect(TokenKind.Comma, "','");
            var value = ParseString(field, type, function);
            Expect(TokenKind.CloseParen, "')'");
            return StringFunctionOf(field, type, function, value);
        }

        private FilterExpression.FunctionCall StringFunctionOf(string field, FieldType type, Token function, string value)
        {
            if (type != FieldType.String)
            {
                throw Error(function.Start, $"{Describe(function)} applies to string fields; '{field}' is {DescribeType(type)}");
            }

            var kind = function.Keyword == Keyword.Contains ? StringFunction.Contains : StringFunction.StartsWith;
            return new FilterExpression.FunctionCall(kind, field, value);
        }

        private FilterExpression.Comparison ParseComparison(string field, FieldType type, Token op)
        {
            var comparison = op.Keyword switch
            {
                Keyword.Eq => ComparisonOperator.Eq,
                Keyword.Ne => ComparisonOperator.Ne,
                Keyword.Gt => ComparisonOperator.Gt,
                Keyword.Ge => ComparisonOperator.Ge,
                Keyword.Lt => ComparisonOperator.Lt,
                _ => ComparisonOperator.Le,
            };
            var ordering = comparison is not (ComparisonOperator.Eq or ComparisonOperator.Ne);

            if (_token.Keyword == Keyword.Null)
            {
                if (ordering)
                {
                    throw Error(_token.Start, $"null can only be compared with 'eq' or 'ne', not {Describe(op)}");
                }

                Advance();
                return new FilterExpression.Comparison(field, comparison, null);
            }

            if (type == FieldType.StringList)
            {
                throw Error(op.Start, $"'{field}' is a list: use 'has', or 'eq null'/'ne null'");
            }

            if (ordering && type == FieldType.Boolean)
            {
                throw Error(op.Start, $"{Describe(op)} does not apply to boolean field '{field}'");
            }

            return new FilterExpression.Comparison(field, comparison, ParseLiteral(field, type));
        }

        private FilterExpression.In ParseIn(string field, FieldType type, Token op)
        {
            if (type == FieldType.StringList)
            {
                throw Error(op.Start, $"'{field}' is a list: use 'has'");
            }

            Expect(TokenKind.OpenParen, "'(' after 'in'");
            var values = new List<object>();
            while (true)
            {
                if (values.Count == MaxInValues)
                {
                    throw Error(_token.Start, $"More than {MaxInValues} values in 'in'");
                }

                if (_token.Keyword == Keyword.Null)
                {
                    throw Error(_token.Start, "null cannot be in an 'in' list; use 'eq null'");
                }

                values.Add(ParseLiteral(field, type));
                if (_token.Kind == TokenKind.CloseParen)
                {
                    Advance();
                    return new FilterExpression.In(field, values);
                }

                Expect(TokenKind.Comma, "',' or ')'");
            }
        }

        /// <summary>A field name, resolved against the schema; leaves the lexer on the token after it.</summary>
        private (string Field, FieldType Type) ParseField()
        {
            var token = _token;
            if (token.Kind != TokenKind.Name || token.Keyword != Keyword.None)
            {
                throw Error(token.Start, $"Expected a field name, found {Describe(token)}");
            }

            var field = (string)token.Value!;
            if (schema.TypeOf(field) is not { } type)
            {
                throw Error(token.Start, $"Unknown field {Quote(field)}");
            }

            Advance();
            return (field, type);
        }

        private string ParseString(string field, FieldType type, Token op)
        {
            if (_token.Kind != TokenKind.String)
            {
                throw Error(_token.Start, $"{Describe(op)} on '{field}' ({DescribeType(type)}) needs a quoted string, found {Describe(_token)}");
            }

            var value = (string)_token.Value!;
            Advance();
            return value;
        }

        /// <summary>A non-null literal of the field's type.</summary>
        private object ParseLiteral(string field, FieldType type)
        {
            var token = _token;
            object? value = (token.Kind, token.Keyword, type) switch
            {
                (TokenKind.String, _, FieldType.String) => token.Value,
                (TokenKind.String, _, FieldType.Timestamp) =>
                    TryParseTimestamp((string)token.Value!, out var time) ? time : null,
                (TokenKind.Number, _, FieldType.Number) => token.Value,
                (TokenKind.Timestamp, _, FieldType.Timestamp) => token.Value,
                (TokenKind.Name, Keyword.True, FieldType.Boolean) => true,
                (TokenKind.Name, Keyword.False, FieldType.Boolean) => false,
                _ => null,
            };

            if (value is null)
            {
                var found = token.Kind switch
                {
                    TokenKind.String or TokenKind.Number or TokenKind.Timestamp => true,
                    TokenKind.Name => token.Keyword is Keyword.True or Keyword.False,
                    _ => false,
                };
                if (!found)
                {
                    var hint = token.Kind == TokenKind.Name && token.Keyword == Keyword.None ? " (strings are quoted: 'text')" : "";
                    throw Error(token.Start, $"Expected a value for '{field}', found {Describe(token)}{hint}");
                }

                var literal = Show(token);
                var actually = token.Kind switch
                {
                    TokenKind.String when type == FieldType.Timestamp => "is not an ISO timestamp",
                    TokenKind.String => "is a string",
                    TokenKind.Number => "is a number",
                    TokenKind.Timestamp => "is a timestamp",
                    _ => "is a boolean",
                };
                throw Error(token.Start, $"Type mismatch: '{field}' is {DescribeType(type)} field; {literal} {actually}");
            }

            Advance();
            return value;
        }

        private void Expect(TokenKind kind, string what)
        {
            if (_token.Kind != kind)
            {
                throw Error(_token.Start, $"Expected {what}, found {Describe(_token)}");
            }

            Advance();
        }

        private string Describe(Token token) => token.Kind switch
        {
            TokenKind.End => "the end of the filter",
            TokenKind.String => $"string {Show(token)}",
            _ => Show(token),
        };

        /// <summary>The token as the client wrote it, in quotes (a string literal brings its own), shortened.</summary>
        private string Show(Token token)
        {
            var raw = text.AsSpan(token.Start, token.End - token.Start);
            if (token.Kind != TokenKind.String)
            {
                return Quote(raw);
            }

            return raw.Length <= MaxQuotedLength ? raw.ToString() : $"{raw[..MaxQuotedLength]}...'";
        }

        private static FilterException Error(int position, string reason) => new(reason, position);

        // The lexer: reads the token at _next into _token.
        private void Advance()
        {
            while (_next < text.Length && text[_next] is ' ' or '\t' or '\r' or '\n')
            {
                _next++;
            }

            var start = _next;
            if (start == text.Length)
            {
                _token = new Token(TokenKind.End, start, start, null, Keyword.None);
                return;
            }

            var c = text[start];
            _token = c switch
            {
                '(' => Single(TokenKind.OpenParen),
                ')' => Single(TokenKind.CloseParen),
                ',' => Single(TokenKind.Comma),
                '\'' => LexString(),
                _ when IsIdentifierStart(c) => LexName(),
                _ when char.IsAsciiDigit(c) || (c == '-' && start + 1 < text.Length && char.IsAsciiDigit(text[start + 1])) =>
                    LexNumberOrTimestamp(),
                '"' => throw Error(start, "Unexpected '\"' (strings use single quotes: 'text')"),
                _ => throw Error(start, $"Unexpected character {DescribeCharacter(c)}"),
            };
        }

        private Token Single(TokenKind kind)
        {
            var start = _next++;
            return new Token(kind, start, _next, null, Keyword.None);
        }

        private Token LexName()
        {
            var start = _next;
            var end = ScanIdentifier(start);
            // Dotted names (fields.color) are one token; the schema decides whether the path exists.
            while (end + 1 < text.Length && text[end] == '.' && IsIdentifierStart(text[end + 1]))
            {
                end = ScanIdentifier(end + 1);
            }

            _next = end;
            var name = text[start..end];
            var keyword = Keywords.GetValueOrDefault(name);
            return new Token(TokenKind.Name, start, end, name, keyword);
        }

        private int ScanIdentifier(int position)
        {
            position++;
            while (position < text.Length && IsIdentifierPart(text[position]))
            {
                position++;
            }

            return position;
        }

        private Token LexString()
        {
            var start = _next;
            StringBuilder? escaped = null;
            var runStart = start + 1;
            var length = 0;
            var position = start + 1;
            while (true)
            {
                if (position == text.Length)
                {
                    throw Error(start, "Unterminated string (a quote inside a string is written '')");
                }

                if (text[position] == '\'')
                {
                    if (position + 1 < text.Length && text[position + 1] == '\'')
                    {
                        escaped ??= new StringBuilder();
                        escaped.Append(text, runStart, position + 1 - runStart);
                        position += 2;
                        runStart = position;
                        length++;
                    }
                    else
                    {
                        break;
                    }
                }
                else
                {
                    position++;
                    length++;
                }

                if (length > MaxStringLength)
                {
                    throw Error(start, $"String longer than {MaxStringLength} characters");
                }
            }

            string value;
            if (escaped is null)
            {
                value = text[runStart..position];
            }
            else
            {
                escaped.Append(text, runStart, position - runStart);
                value = escaped.ToString();
            }

            _next = position + 1;
            return new Token(TokenKind.String, start, _next, value, Keyword.None);
        }

        private Token LexNumberOrTimestamp()
        {
            var start = _next;
            var position = start;
            if (text[position] == '-')
            {
                position++;
            }

            var digits = ScanDigits(position);
            var isDate = text[start] != '-' && digits - start == 4 && digits < text.Length && text[digits] == '-';
            if (isDate)
            {
                position = digits;
                while (position < text.Length && position - start <= MaxTimestampLength && IsTimestampPart(text[position]))
                {
                    position++;
                }

                var raw = text[start..position];
                if (IsLiteralContinuation(position) || !TryParseTimestamp(raw, out var time))
                {
                    throw Error(start, $"Invalid timestamp {Quote(text.AsSpan(start, EndOfWord(position) - start))} (ISO 8601 with a zone: 2026-01-01 or 2026-01-01T00:00:00Z)");
                }

                _next = position;
                return new Token(TokenKind.Timestamp, start, position, time, Keyword.None);
            }

            position = digits;
            if (position + 1 < text.Length && text[position] == '.' && char.IsAsciiDigit(text[position + 1]))
            {
                position = ScanDigits(position + 1);
            }

            if (position < text.Length && text[position] is 'e' or 'E')
            {
                var exponent = position + 1;
                if (exponent < text.Length && text[exponent] is '+' or '-')
                {
                    exponent++;
                }

                if (exponent < text.Length && char.IsAsciiDigit(text[exponent]))
                {
                    position = ScanDigits(exponent);
                }
            }

            if (IsLiteralContinuation(position))
            {
                throw Error(start, $"Invalid number {Quote(text.AsSpan(start, EndOfWord(position) - start))}");
            }

            if (!double.TryParse(text.AsSpan(start, position - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                || !double.IsFinite(number))
            {
                throw Error(start, $"Number {Quote(text.AsSpan(start, position - start))} is out of range");
            }

            _next = position;
            return new Token(TokenKind.Number, start, position, number, Keyword.None);
        }

        private int ScanDigits(int position)
        {
            while (position < text.Length && char.IsAsciiDigit(text[position]))
            {
                position++;
            }

            return position;
        }

        // A literal running straight into a letter, digit or dot (12abc, 1.2.3) is one malformed word, not two tokens.
        private bool IsLiteralContinuation(int position) =>
            position < text.Length && (IsIdentifierPart(text[position]) || text[position] is '.' or ':' or '+' or '-');

        private int EndOfWord(int position)
        {
            var end = position;
            while (end < text.Length && end - position < MaxQuotedLength && (IsIdentifierPart(text[end]) || IsTimestampPart(text[end])))
            {
                end++;
            }

            return end;
        }

        private static bool IsTimestampPart(char c) =>
            char.IsAsciiDigit(c) || c is '-' or ':' or '.' or '+' or 'T' or 't' or 'Z' or 'z';

        private static string DescribeCharacter(char c) =>
            c is > ' ' and < (char)0x7F ? $"'{c}'" : $"U+{(int)c:X4}";
    }
}
