using System.Globalization;
using System.Text;
using System.Text.Json;
using Platform.Functions.Query;
using static Platform.Functions.Query.FilterExpression;

namespace Platform.Tests.Query;

public sealed class FilterTests
{
    private const string ContractExample = "status eq 'active' and (createdAt ge 2026-01-01T00:00:00Z or roles has 'admin')";

    // The users route's schema as the contract lists it, plus a number field and a tenant's custom fields.
    private static readonly FilterSchema Users = new(
        new Dictionary<string, FieldType>
        {
            ["status"] = FieldType.String,
            ["email"] = FieldType.String,
            ["displayName"] = FieldType.String,
            ["roles"] = FieldType.StringList,
            ["createdAt"] = FieldType.Timestamp,
            ["updatedAt"] = FieldType.Timestamp,
            ["lastLoginAt"] = FieldType.Timestamp,
            ["emailVerified"] = FieldType.Boolean,
            ["mfaEnabled"] = FieldType.Boolean,
            ["loginCount"] = FieldType.Number,
        },
        name => name switch
        {
            "color" => FieldType.String,
            "score" => FieldType.Number,
            "vip" => FieldType.Boolean,
            "renewsAt" => FieldType.Timestamp,
            "labels" => FieldType.StringList,
            _ => null,
        });

    private static readonly Dictionary<string, object?> Ada = new()
    {
        ["status"] = "active",
        ["email"] = "ada@example.com",
        ["displayName"] = "Ada O'Brien",
        ["roles"] = new[] { "Admin", "user" },
        ["createdAt"] = DateTimeOffset.Parse("2025-06-01T12:00:00Z", CultureInfo.InvariantCulture),
        ["updatedAt"] = DateTimeOffset.Parse("2026-02-01T00:00:00Z", CultureInfo.InvariantCulture),
        ["lastLoginAt"] = null,
        ["emailVerified"] = true,
        ["mfaEnabled"] = false,
        ["loginCount"] = 7,
        ["fields.color"] = Json("\"red\""),
        ["fields.score"] = Json("42.5"),
        ["fields.vip"] = Json("true"),
        ["fields.renewsAt"] = Json("\"2026-03-01T00:00:00Z\""),
        ["fields.labels"] = Json("[\"gold\", \"early\"]"),
    };

    private static bool Matches(string filter, IReadOnlyDictionary<string, object?> item) =>
        FilterParser.Parse(filter, Users).Evaluate(field => item.GetValueOrDefault(field));

    private static FilterException Rejects(string filter) =>
        Assert.Throws<FilterException>(() => FilterParser.Parse(filter, Users));

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static DateTimeOffset Utc(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture);

    private static Dictionary<string, object?> User(string status, string createdAt, params string[] roles) => new()
    {
        ["status"] = status,
        ["createdAt"] = Utc(createdAt),
        ["roles"] = roles,
    };

    [Fact]
    public void The_contract_example_parses_into_the_tree_it_reads_as()
    {
        var expected = new And(
            new Comparison("status", ComparisonOperator.Eq, "active"),
            new Or(
                new Comparison("createdAt", ComparisonOperator.Ge, Utc("2026-01-01T00:00:00Z")),
                new Has("roles", "admin")));

        Assert.Equal(expected, FilterParser.Parse(ContractExample, Users));
    }

    [Fact]
    public void The_contract_example_matches_active_users_who_are_new_or_admins()
    {
        Assert.True(Matches(ContractExample, User("active", "2026-02-01T00:00:00Z", "user")));
        Assert.True(Matches(ContractExample, User("active", "2026-01-01T00:00:00Z")));
        Assert.True(Matches(ContractExample, User("active", "2020-01-01T00:00:00Z", "user", "ADMIN")));
        Assert.False(Matches(ContractExample, User("active", "2025-12-31T23:59:59Z", "user")));
        Assert.False(Matches(ContractExample, User("suspended", "2026-02-01T00:00:00Z", "admin")));
    }

    [Theory]
    [InlineData("status eq 'active'", true)]
    [InlineData("status eq 'Active'", false)]
    [InlineData("status ne 'active'", false)]
    [InlineData("status ne 'suspended'", true)]
    [InlineData("email gt 'ada@example.co'", true)]
    [InlineData("email ge 'ada@example.com'", true)]
    [InlineData("email lt 'ada@example.com'", false)]
    [InlineData("email le 'ada@example.com'", true)]
    [InlineData("email lt 'b'", true)]
    [InlineData("email gt 'B'", true)] // ordinal: lower case sorts after upper case
    [InlineData("loginCount eq 7", true)]
    [InlineData("loginCount eq 7.0", true)]
    [InlineData("loginCount ne 7", false)]
    [InlineData("loginCount gt 6.5", true)]
    [InlineData("loginCount ge 7", true)]
    [InlineData("loginCount lt 7", false)]
    [InlineData("loginCount le 7e0", true)]
    [InlineData("loginCount gt -1", true)]
    [InlineData("emailVerified eq true", true)]
    [InlineData("emailVerified eq false", false)]
    [InlineData("mfaEnabled ne true", true)]
    [InlineData("createdAt lt 2025-06-01T12:00:01Z", true)]
    [InlineData("createdAt gt 2025-06-01T12:00:00Z", false)]
    [InlineData("email contains 'EXAMPLE'", true)]
    [InlineData("contains(email, 'example.c')", true)]
    [InlineData("email contains 'nobody'", false)]
    [InlineData("displayName startswith 'ada o'", true)]
    [InlineData("startswith(displayName, 'O')", false)]
    [InlineData("roles has 'admin'", true)]
    [InlineData("roles has 'USER'", true)]
    [InlineData("roles has 'manager'", false)]
    [InlineData("status in ('suspended', 'active')", true)]
    [InlineData("status in ('suspended')", false)]
    [InlineData("loginCount in (1, 7, 9)", true)]
    public void Each_operator_compares_as_the_contract_says(string filter, bool expected)
    {
        Assert.Equal(expected, Matches(filter, Ada));
    }

    [Fact]
    public void A_doubled_quote_inside_a_string_is_one_quote()
    {
        Assert.Equal(new Comparison("displayName", ComparisonOperator.Eq, "O'Brien"), FilterParser.Parse("displayName eq 'O''Brien'", Users));
        Assert.Equal(new Comparison("displayName", ComparisonOperator.Eq, "'"), FilterParser.Parse("displayName eq ''''", Users));
        Assert.Equal(new Comparison("displayName", ComparisonOperator.Eq, ""), FilterParser.Parse("displayName eq ''", Users));
        Assert.True(Matches("displayName eq 'Ada O''Brien'", Ada));
    }

    [Fact]
    public void In_takes_a_list_of_literals_of_the_field_type()
    {
        Assert.Equal(
            new In("status", ["a", "b"]),
            FilterParser.Parse("status in ('a','b')", Users));
        Assert.Equal(
            new In("createdAt", [Utc("2025-06-01T12:00:00Z"), Utc("2026-01-01T00:00:00Z")]),
            FilterParser.Parse("createdAt IN (2025-06-01T12:00:00Z, '2026-01-01')", Users));
        Assert.True(Matches("createdAt in (2025-06-01T14:00:00+02:00)", Ada));
        Assert.False(Matches("lastLoginAt in (2025-06-01)", Ada));
    }

    [Theory]
    [InlineData("status in ()", 11, "Expected a value")]
    [InlineData("status in ('a',)", 15, "Expected a value")]
    [InlineData("status in ('a' 'b')", 15, "Expected ',' or ')'")]
    [InlineData("status in 'a'", 10, "Expected '(' after 'in'")]
    [InlineData("status in ('a', 1)", 16, "Type mismatch")]
    [InlineData("status in ('a', null)", 16, "null cannot be in an 'in' list")]
    [InlineData("roles in ('a')", 6, "'roles' is a list")]
    public void A_malformed_in_list_is_rejected_at_the_offending_token(string filter, int position, string reason)
    {
        var error = Rejects(filter);

        Assert.Equal(position, error.Position);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Not_negates_the_condition_that_follows_it()
    {
        Assert.False(Matches("not status eq 'active'", Ada));
        Assert.True(Matches("not (status eq 'suspended' or roles has 'manager')", Ada));
        Assert.True(Matches("NOT NOT status eq 'active'", Ada));
        Assert.True(Matches("not contains(email, 'nobody')", Ada));
    }

    [Fact]
    public void Not_binds_tighter_than_and_which_binds_tighter_than_or()
    {
        var a = new Comparison("status", ComparisonOperator.Eq, "a");
        var b = new Comparison("status", ComparisonOperator.Eq, "b");
        var c = new Comparison("status", ComparisonOperator.Eq, "c");

        Assert.Equal(new Or(a, new And(b, c)), FilterParser.Parse("status eq 'a' or status eq 'b' and status eq 'c'", Users));
        Assert.Equal(new Or(new And(a, b), c), FilterParser.Parse("status eq 'a' and status eq 'b' or status eq 'c'", Users));
        Assert.Equal(new And(new Not(a), b), FilterParser.Parse("not status eq 'a' and status eq 'b'", Users));
        Assert.Equal(new Not(new And(a, b)), FilterParser.Parse("not (status eq 'a' and status eq 'b')", Users));
        Assert.Equal(new And(a, new Or(b, c)), FilterParser.Parse("status eq 'a' and (status eq 'b' or status eq 'c')", Users));
        Assert.Equal(new Or(new Or(a, b), c), FilterParser.Parse("status eq 'a' or status eq 'b' or status eq 'c'", Users));
    }

    [Fact]
    public void Keywords_ignore_case_but_field_names_do_not()
    {
        Assert.True(Matches("status EQ 'active' AND emailVerified Eq TRUE Or lastLoginAt eq NULL", Ada));
        Assert.True(Matches("STARTSWITH(email, 'ADA') and roles HAS 'admin'", Ada));

        var error = Rejects("Status eq 'active'");

        Assert.Equal(0, error.Position);
        Assert.Equal("Unknown field 'Status' at position 0", error.Message);
    }

    [Theory]
    [InlineData("2026-01-01", "2026-01-01T00:00:00Z")]
    [InlineData("2026-01-01T10:30Z", "2026-01-01T10:30:00Z")]
    [InlineData("2026-01-01T10:30:15Z", "2026-01-01T10:30:15Z")]
    [InlineData("2026-01-01T10:30:15.1234567Z", "2026-01-01T10:30:15.1234567Z")]
    [InlineData("2026-01-01t10:30:15z", "2026-01-01T10:30:15Z")]
    [InlineData("2026-01-01T12:30:15+02:00", "2026-01-01T10:30:15Z")]
    [InlineData("2026-01-01T05:30:15.5-05:00", "2026-01-01T10:30:15.5Z")]
    [InlineData("'2026-01-01T10:30:15Z'", "2026-01-01T10:30:15Z")]
    public void Timestamps_are_ISO_8601_dates_or_instants_with_a_zone(string literal, string instant)
    {
        var parsed = Assert.IsType<Comparison>(FilterParser.Parse($"createdAt eq {literal}", Users));

        Assert.Equal(Utc(instant), Assert.IsType<DateTimeOffset>(parsed.Value));
    }

    [Fact]
    public void Timestamps_compare_as_instants_whatever_the_offset()
    {
        Assert.True(Matches("createdAt eq 2025-06-01T14:00:00+02:00", Ada));
        Assert.True(Matches("createdAt ge 2025-06-01 and createdAt lt 2025-06-02", Ada));
        Assert.True(Matches("updatedAt gt 2026-01-31T23:59:59.9999999Z and updatedAt lt 2026-02-01T00:00:00.0000001Z", Ada));
    }

    [Theory]
    [InlineData("createdAt eq 2026-13-01", 13)]
    [InlineData("createdAt eq 2026-01-01T10:30:15", 13)] // no zone: which instant is meant is unknowable
    [InlineData("createdAt eq 2026-01-01T25:00:00Z", 13)]
    [InlineData("createdAt eq 2026-01-01Tfoo", 13)]
    [InlineData("createdAt eq 2026-01-01T10:30:15.12345678Z", 13)]
    [InlineData("createdAt eq 2026-01-01T10:30:15.Z", 13)]
    [InlineData("createdAt eq 2026-01-01T10:30:15+0100", 13)]
    [InlineData("createdAt eq 2026-02-30", 13)]
    [InlineData("createdAt eq 0001-01-01T00:00:00+01:00", 13)] // before the first representable instant
    public void A_malformed_timestamp_is_rejected_where_it_starts(string filter, int position)
    {
        var error = Rejects(filter);

        Assert.Equal(position, error.Position);
        Assert.Contains("Invalid timestamp", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Custom_fields_are_addressed_as_fields_dot_name_and_typed_by_the_tenant_schema()
    {
        Assert.True(Matches("fields.color eq 'red' and fields.score gt 40 and fields.vip eq true", Ada));
        Assert.True(Matches("fields.renewsAt lt 2026-04-01 and fields.labels has 'GOLD'", Ada));
        Assert.True(Matches("startswith(fields.color, 'R') and fields.score in (42.5)", Ada));
        Assert.False(Matches("fields.color eq null", Ada));
        Assert.True(Matches("fields.color eq null and fields.score eq null", new Dictionary<string, object?>()));
    }

    [Theory]
    [InlineData("fields.size eq 'x'", "Unknown field 'fields.size' at position 0")]
    [InlineData("fields eq 'x'", "Unknown field 'fields' at position 0")]
    [InlineData("fields.color.x eq 'x'", "Unknown field 'fields.color.x' at position 0")]
    [InlineData("other.color eq 'x'", "Unknown field 'other.color' at position 0")]
    [InlineData("fields.score eq 'x'", "Type mismatch: 'fields.score' is a number field; 'x' is a string at position 16")]
    public void Custom_fields_the_tenant_has_not_defined_are_unknown(string filter, string message)
    {
        Assert.Equal(message, Rejects(filter).Message);
    }

    [Fact]
    public void A_route_without_custom_fields_knows_none()
    {
        var inventory = new FilterSchema(new Dictionary<string, FieldType> { ["sku"] = FieldType.String });

        var error = Assert.Throws<FilterException>(() => FilterParser.Parse("fields.color eq 'red'", inventory));

        Assert.Equal("Unknown field 'fields.color' at position 0", error.Message);
    }

    [Fact]
    public void Eq_null_and_ne_null_work_on_every_field_type()
    {
        foreach (var field in new[] { "status", "loginCount", "emailVerified", "updatedAt", "roles", "fields.labels" })
        {
            var missing = new Dictionary<string, object?>();
            var present = Ada;

            Assert.True(Matches($"{field} eq null", missing));
            Assert.False(Matches($"{field} ne null", missing));
            Assert.False(Matches($"{field} eq null", present));
            Assert.True(Matches($"{field} ne null", present));
        }

        Assert.True(Matches("lastLoginAt eq null", Ada));
        Assert.True(Matches("fields.vip ne null", new Dictionary<string, object?> { ["fields.vip"] = Json("false") }));
        Assert.True(Matches("fields.vip eq null", new Dictionary<string, object?> { ["fields.vip"] = Json("null") }));
    }

    [Theory]
    [InlineData("lastLoginAt lt 2030-01-01")]
    [InlineData("lastLoginAt ge 2000-01-01")]
    [InlineData("lastLoginAt ne 2000-01-01")]
    [InlineData("lastLoginAt in (2000-01-01)")]
    [InlineData("not lastLoginAt eq 2000-01-01 and lastLoginAt ne 2000-01-01")]
    public void A_comparison_with_a_null_value_is_false(string filter)
    {
        Assert.False(Matches(filter, Ada));
    }

    [Fact]
    public void A_value_of_the_wrong_type_never_matches_and_never_throws()
    {
        var odd = new Dictionary<string, object?>
        {
            ["status"] = 12,
            ["email"] = new object(),
            ["loginCount"] = double.NaN,
            ["emailVerified"] = "true",
            ["createdAt"] = "not a date",
            ["updatedAt"] = DateTime.MinValue,
            ["lastLoginAt"] = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Local),
            ["roles"] = "admin",
            ["fields.color"] = Json("{\"a\":1}"),
            ["fields.labels"] = Json("[1, null, \"gold\"]"),
        };

        Assert.False(Matches("status eq '12' or status ne '12'", odd));
        Assert.False(Matches("email contains 'a' or email eq 'a'", odd));
        Assert.False(Matches("loginCount eq 1 or loginCount lt 1 or loginCount gt 1", odd));
        Assert.False(Matches("emailVerified eq true or createdAt lt 2030-01-01", odd));
        Assert.False(Matches("roles has 'admin' or fields.color eq 'a'", odd));
        Assert.True(Matches("updatedAt lt 2000-01-01 and lastLoginAt lt 2100-01-01", odd));
        Assert.True(Matches("fields.labels has 'gold' and loginCount ne null", odd));
        Assert.True(Matches("loginCount eq 3", new Dictionary<string, object?> { ["loginCount"] = 3m }));
        Assert.True(Matches("loginCount eq 3", new Dictionary<string, object?> { ["loginCount"] = 3L }));
        Assert.True(Matches("createdAt eq 2026-01-01", new Dictionary<string, object?> { ["createdAt"] = "2026-01-01T00:00:00Z" }));
        Assert.True(Matches("roles has 'b'", new Dictionary<string, object?> { ["roles"] = new List<string?> { null, "B" } }));
    }

    [Theory]
    [InlineData("foo eq 1", 0, "Unknown field 'foo'")]
    [InlineData("status eq 'active' and foo eq 1", 23, "Unknown field 'foo'")]
    [InlineData("status eq 'active", 10, "Unterminated string")]
    [InlineData("status eq 'O'Brien'", 13, "Unexpected 'Brien'")]
    [InlineData("status eq 'O'Brien' or status eq 'x'", 13, "Unexpected 'Brien'")]
    [InlineData("status eq 'a' or status eq 'O''Brien", 27, "Unterminated string")]
    [InlineData("(status eq 'a'", 14, "Expected ')' to close the '(' opened at position 0")]
    [InlineData("status eq 'a')", 13, "Unexpected ')'")]
    [InlineData("((status eq 'a')", 16, "Expected ')'")]
    [InlineData("()", 1, "Expected a field name, found ')'")]
    [InlineData("createdAt eq 'x'", 13, "Type mismatch: 'createdAt' is a timestamp field; 'x' is not an ISO timestamp")]
    [InlineData("roles eq 'a'", 6, "'roles' is a list: use 'has'")]
    [InlineData("status eq 1", 10, "Type mismatch: 'status' is a string field; '1' is a number")]
    [InlineData("loginCount eq '1'", 14, "Type mismatch")]
    [InlineData("emailVerified eq 'true'", 17, "Type mismatch")]
    [InlineData("emailVerified gt false", 14, "'gt' does not apply to boolean field")]
    [InlineData("status eq true", 10, "Type mismatch")]
    [InlineData("status has 'a'", 7, "'has' applies to list fields")]
    [InlineData("roles contains 'a'", 6, "'contains' applies to string fields")]
    [InlineData("startswith(createdAt, '2026')", 0, "'startswith' applies to string fields")]
    [InlineData("contains(email 'a')", 15, "Expected ','")]
    [InlineData("email contains 5", 15, "needs a quoted string")]
    [InlineData("status gt null", 10, "null can only be compared with 'eq' or 'ne'")]
    [InlineData("status eq active", 10, "Expected a value for 'status', found 'active' (strings are quoted: 'text')")]
    [InlineData("status eq \"active\"", 10, "Unexpected '\"'")]
    [InlineData("status 'active'", 7, "Expected an operator after 'status'")]
    [InlineData("status", 6, "Expected an operator after 'status', found the end of the filter")]
    [InlineData("status eq", 9, "Expected a value")]
    [InlineData("status eq 'a' and", 17, "Expected a field name, found the end of the filter")]
    [InlineData("status eq 'a' status eq 'b'", 14, "Unexpected 'status'")]
    [InlineData("status eq 'a' garbage", 14, "Unexpected 'garbage'")]
    [InlineData("status eq 'a' && status eq 'b'", 14, "Unexpected character '&'")]
    [InlineData("and eq 'a'", 0, "Expected a field name, found 'and'")]
    [InlineData("loginCount eq 12abc", 14, "Invalid number")]
    [InlineData("loginCount eq 1.2.3", 14, "Invalid number")]
    [InlineData("loginCount eq 1e999", 14, "out of range")]
    [InlineData("status eq 'a' \u00e9", 14, "Unexpected character U+00E9")]
    [InlineData("", 0, "Empty filter")]
    [InlineData("   ", 3, "Empty filter")]
    public void An_error_names_what_is_wrong_and_its_position(string filter, int position, string reason)
    {
        var error = Rejects(filter);

        Assert.Equal(position, error.Position);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.EndsWith($" at position {position}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("status eq '' or true")]
    [InlineData("status eq 'active' or true")]
    [InlineData("status eq 'x' or '1' eq '1'")]
    [InlineData("status eq 'x' or 1 eq 1")]
    [InlineData("status eq 'a'; DROP TABLE users")]
    [InlineData("status eq 'a' -- comment")]
    [InlineData("PartitionKey ne ''")]
    [InlineData("RowKey ge '' and PartitionKey ne 'x'")]
    [InlineData("$filter=status eq 'a'")]
    [InlineData("status eq 'a'&$top=1000")]
    [InlineData("status eq 'a' or PartitionKey gt ''")]
    [InlineData("status eq 'a'\u0000 or true")]
    public void Injection_attempts_are_rejected_with_a_position(string filter)
    {
        Assert.InRange(Rejects(filter).Position, 0, filter.Length);
    }

    [Fact]
    public void An_escaped_injection_stays_inside_its_literal()
    {
        var parsed = FilterParser.Parse("status eq 'x'' or true or '''", Users);

        Assert.Equal(new Comparison("status", ComparisonOperator.Eq, "x' or true or '"), parsed);
        Assert.False(parsed.Evaluate(field => Ada.GetValueOrDefault(field)));
    }

    [Fact]
    public void The_classic_quote_break_out_is_a_syntax_error_at_the_injected_word()
    {
        // As it arrives when a client pastes user input "' or true" between quotes.
        var error = Rejects("status eq '' or true'");

        Assert.Equal(16, error.Position);
        Assert.Contains("Expected a field name, found 'true'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_10000_term_expression_is_rejected_at_the_length_limit()
    {
        var filter = string.Join(" or ", Enumerable.Repeat("loginCount eq 1", 10_000));

        var error = Rejects(filter);

        Assert.Equal(FilterParser.MaxLength, error.Position);
    }

    [Fact]
    public void More_than_100_comparisons_are_rejected_at_the_101st()
    {
        var hundred = string.Join(" or ", Enumerable.Repeat("loginCount eq 1", FilterParser.MaxComparisons));
        Assert.False(Matches(hundred, Ada));

        var error = Rejects(hundred + " or status eq 'x'");

        Assert.Equal(hundred.Length + 4, error.Position);
        Assert.Contains("More than 100 comparisons", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ten_thousand_nested_parentheses_fail_without_overflowing_the_stack()
    {
        var filter = new string('(', 10_000) + "status eq 'a'" + new string(')', 10_000);

        Assert.Equal(FilterParser.MaxLength, Rejects(filter).Position);
        Assert.Equal(FilterParser.MaxDepth, Rejects(new string('(', FilterParser.MaxLength)).Position);
    }

    [Fact]
    public void Nesting_is_limited_to_32_levels_of_parentheses_or_not()
    {
        var deepest = new string('(', FilterParser.MaxDepth) + "status eq 'active'" + new string(')', FilterParser.MaxDepth);
        Assert.True(Matches(deepest, Ada));

        var error = Rejects("(" + deepest + ")");
        Assert.Equal(FilterParser.MaxDepth, error.Position);
        Assert.Contains("Nesting deeper than 32 levels", error.Message, StringComparison.Ordinal);

        var nots = string.Concat(Enumerable.Repeat("not ", FilterParser.MaxDepth));
        Assert.True(Matches(nots + "status eq 'active'", Ada));
        Assert.Equal(FilterParser.MaxDepth * 4, Rejects("not " + nots + "status eq 'active'").Position);
    }

    [Fact]
    public void A_one_megabyte_string_is_rejected_at_the_length_limit()
    {
        var filter = "status eq '" + new string('a', 1_000_000) + "'";

        Assert.Equal(FilterParser.MaxLength, Rejects(filter).Position);
    }

    [Fact]
    public void A_string_literal_is_limited_to_1000_characters_after_unescaping()
    {
        var longest = new string('a', FilterParser.MaxStringLength - 1) + "''";
        var parsed = Assert.IsType<Comparison>(FilterParser.Parse($"status eq '{longest}'", Users));
        Assert.Equal(FilterParser.MaxStringLength, ((string)parsed.Value!).Length);

        var error = Rejects($"status eq 'a{longest}'");

        Assert.Equal(10, error.Position);
        Assert.Contains("String longer than 1000 characters", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length < 200, "the message must not echo the whole literal");
    }

    [Fact]
    public void An_in_list_is_limited_to_100_values()
    {
        var values = Enumerable.Range(0, FilterParser.MaxInValues).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        var parsed = Assert.IsType<In>(FilterParser.Parse($"loginCount in ({string.Join(',', values)})", Users));
        Assert.Equal(FilterParser.MaxInValues, parsed.Values.Count);

        var filter = $"loginCount in ({string.Join(',', values)},100)";
        var error = Rejects(filter);

        Assert.Equal(filter.Length - 4, error.Position);
        Assert.Contains("More than 100 values", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_filter_of_exactly_4000_characters_is_accepted_and_one_more_is_not()
    {
        var term = "status eq '" + new string('a', 990) + "'";
        var filter = string.Join(" or ", term, term, term);
        filter += " or status eq '" + new string('b', FilterParser.MaxLength - filter.Length - 16) + "'";

        Assert.Equal(FilterParser.MaxLength, filter.Length);
        Assert.False(Matches(filter, Ada));
        Assert.Equal(FilterParser.MaxLength, Rejects(filter + " ").Position);
    }

    [Fact]
    public void An_absent_or_blank_filter_is_no_filter()
    {
        Assert.Null(FilterParser.ParseOptional(null, Users));
        Assert.Null(FilterParser.ParseOptional(" \t", Users));
        Assert.NotNull(FilterParser.ParseOptional("status eq 'a'", Users));
    }

    [Theory]
    [InlineData("and")]
    [InlineData("NULL")]
    [InlineData("fields")]
    [InlineData("created.at")]
    [InlineData("created-at")]
    [InlineData("")]
    public void A_schema_refuses_field_names_a_filter_could_never_address(string name)
    {
        Assert.Throws<ArgumentException>(() => new FilterSchema(new Dictionary<string, FieldType> { [name] = FieldType.String }));
    }

    [Fact]
    public void Fuzzed_input_either_parses_or_fails_with_a_position_inside_the_text()
    {
        string[] tokens =
        [
            "status", "createdAt", "roles", "loginCount", "emailVerified", "fields.color", "fields.labels", "fields.", "nope",
            "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "NOT", "in", "has", "contains", "startswith",
            "(", ")", "(", ")", ",", "'", "''", "'active'", "'O''Brien'", "'2026-01-01'", "2026-01-01T00:00:00Z",
            "2026-01-01", "2026-1-1", "-1.5e3", "42", "1e999", "0.", ".5", "true", "false", "null", "$filter=", ";",
            " ", " ", " ", "\t", "\"", ".", "-", ":", "+", "Z", "T", "\0", "\u00e9", "\ud800", "\u202e", "--",
        ];
        string[] valid =
        [
            ContractExample,
            "displayName eq 'O''Brien' or not (loginCount gt 3 and emailVerified eq true)",
            "status in ('a','b', 'c') and contains(email, 'x') or startswith(fields.color, 'r')",
            "fields.labels has 'gold' and fields.renewsAt lt 2026-01-01T10:00:00.5+01:00 and lastLoginAt eq null",
            "not not (createdAt ge '2026-01-01' or (roles has 'admin' and loginCount le -2.5e1))",
        ];
        const string characters = "()',. -:+eqandornotinhas0123456789TZtz_\"\\$;&|=!\u00e9";

        var random = new Random(20_260_101);
        var parsed = 0;
        var rejected = 0;
        for (var run = 0; run < 20_000; run++)
        {
            string filter;
            if (run % 2 == 0)
            {
                var builder = new StringBuilder();
                var count = random.Next(0, 30);
                for (var i = 0; i < count; i++)
                {
                    builder.Append(tokens[random.Next(tokens.Length)]);
                    if (random.Next(3) > 0)
                    {
                        builder.Append(' ');
                    }
                }

                filter = builder.ToString();
            }
            else
            {
                var builder = new StringBuilder(valid[random.Next(valid.Length)]);
                var mutations = random.Next(1, 5);
                for (var i = 0; i < mutations && builder.Length > 1; i++)
                {
                    var at = random.Next(builder.Length);
                    switch (random.Next(4))
                    {
                        case 0:
                            builder.Insert(at, characters[random.Next(characters.Length)]);
                            break;
                        case 1:
                            builder.Remove(at, Math.Min(random.Next(1, 4), builder.Length - at));
                            break;
                        case 2 when at + 1 < builder.Length:
                            (builder[at], builder[at + 1]) = (builder[at + 1], builder[at]);
                            break;
                        default:
                            builder.Insert(at, tokens[random.Next(tokens.Length)]);
                            break;
                    }
                }

                filter = builder.ToString();
            }

            FilterExpression expression;
            try
            {
                expression = FilterParser.Parse(filter, Users);
            }
            catch (FilterException error)
            {
                Assert.InRange(error.Position, 0, filter.Length);
                Assert.EndsWith($" at position {error.Position}", error.Message, StringComparison.Ordinal);
                rejected++;
                continue;
            }

            // Whatever parses must also evaluate, on a plain item and on one whose values are all missing.
            expression.Evaluate(field => Ada.GetValueOrDefault(field));
            expression.Evaluate(_ => null);
            parsed++;
        }

        // Both paths must have been exercised for the run to say anything.
        Assert.True(parsed > 100, $"only {parsed} inputs parsed");
        Assert.True(rejected > 100, $"only {rejected} inputs were rejected");
    }

    [Fact]
    public void Sort_reads_fields_and_minus_fields_separated_by_commas()
    {
        var sort = SortSpec.Parse(" status , -createdAt,fields.score ", Users);

        Assert.Equal(
            [new SortField("status", false), new SortField("createdAt", true), new SortField("fields.score", false)],
            sort.Fields);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void No_sort_leaves_every_pair_equal(string? text)
    {
        var sort = SortSpec.Parse(text, Users);

        Assert.Same(SortSpec.None, sort);
        Assert.Equal(0, sort.Compare(field => Ada.GetValueOrDefault(field), _ => null));
    }

    [Theory]
    [InlineData("nope", 0, "Unknown field 'nope'")]
    [InlineData("status,-nope", 8, "Unknown field 'nope'")]
    [InlineData("Status", 0, "Unknown field 'Status'")]
    [InlineData("roles", 0, "is a list and cannot be sorted on")]
    [InlineData("-fields.labels", 1, "is a list and cannot be sorted on")]
    [InlineData("fields.nope", 0, "Unknown field 'fields.nope'")]
    [InlineData("status,email,createdAt,loginCount", 23, "More than 3 sort fields")]
    [InlineData("status,-status", 8, "sorted on twice")]
    [InlineData("status,,email", 7, "Expected a field name")]
    [InlineData("status,", 7, "Expected a field name")]
    [InlineData("-", 1, "Expected a field name")]
    [InlineData("- status", 1, "Unknown field ' status'")]
    [InlineData("status desc", 0, "Unknown field 'status desc'")]
    public void A_bad_sort_names_the_position(string text, int position, string reason)
    {
        var error = Assert.Throws<FilterException>(() => SortSpec.Parse(text, Users));

        Assert.Equal(position, error.Position);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sort_longer_than_the_filter_limit_is_rejected()
    {
        var error = Assert.Throws<FilterException>(() => SortSpec.Parse(new string('a', 1_000_000), Users));

        Assert.Equal(FilterParser.MaxLength, error.Position);
    }

    [Fact]
    public void Sorting_orders_by_each_key_in_turn_with_nulls_last_either_way()
    {
        var users = new List<Dictionary<string, object?>>
        {
            new() { ["id"] = "1", ["status"] = "active", ["loginCount"] = 5 },
            new() { ["id"] = "2", ["status"] = "active", ["loginCount"] = null },
            new() { ["id"] = "3", ["status"] = null, ["loginCount"] = 1 },
            new() { ["id"] = "4", ["status"] = "Active", ["loginCount"] = 9.5 },
            new() { ["id"] = "5", ["status"] = "active", ["loginCount"] = 7L },
        };

        string Order(string sort) => string.Concat(users
            .Order(SortSpec.Parse(sort, Users).ToComparer<Dictionary<string, object?>>((user, field) => user.GetValueOrDefault(field)))
            .Select(user => user["id"]));

        Assert.Equal("31542", Order("loginCount"));
        Assert.Equal("45132", Order("-loginCount"));
        Assert.Equal("41523", Order("status,loginCount"));
        Assert.Equal("51243", Order("-status,-loginCount"));
    }

    [Fact]
    public void Sorting_compares_timestamps_as_instants_and_strings_ordinally()
    {
        var sort = SortSpec.Parse("createdAt,displayName", Users);
        var early = new Dictionary<string, object?> { ["createdAt"] = Utc("2026-01-01T10:00:00+02:00"), ["displayName"] = "b" };
        var late = new Dictionary<string, object?> { ["createdAt"] = Utc("2026-01-01T09:00:00Z"), ["displayName"] = "a" };
        var sameInstant = new Dictionary<string, object?> { ["createdAt"] = Utc("2026-01-01T08:00:00Z"), ["displayName"] = "B" };

        Assert.True(sort.Compare(field => early.GetValueOrDefault(field), field => late.GetValueOrDefault(field)) < 0);
        Assert.True(sort.Compare(field => sameInstant.GetValueOrDefault(field), field => early.GetValueOrDefault(field)) < 0);
    }

    [Fact]
    public void Sorting_reads_a_custom_date_kept_as_json_text_as_an_instant()
    {
        var sort = SortSpec.Parse("-fields.renewsAt", Users);
        var sooner = new Dictionary<string, object?> { ["fields.renewsAt"] = Json("\"2026-03-01T10:00:00+02:00\"") };
        var later = new Dictionary<string, object?> { ["fields.renewsAt"] = Json("\"2026-03-01T09:00:00Z\"") };

        // As text the two would order the other way round.
        Assert.True(sort.Compare(field => later.GetValueOrDefault(field), field => sooner.GetValueOrDefault(field)) < 0);
    }
}
