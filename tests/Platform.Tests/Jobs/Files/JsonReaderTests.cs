using Platform.Functions.Jobs.Files;
using static Platform.Tests.Jobs.Files.TabularFiles;

namespace Platform.Tests.Jobs.Files;

public sealed class JsonReaderTests
{
    [Fact]
    public async Task An_array_of_objects_reads_into_rows_numbered_by_element()
    {
        var rows = await ReadJsonAsync("""
            [
              {"email": "ada@example.com", "age": 36, "admin": true, "manager": null, "ratio": 1.50, "big": 1e3},
              {"email": "bob@example.com", "nickname": ""}
            ]
            """);

        Assert.Equal([1, 2], rows.Select(r => r.Number));
        Assert.Equal("ada@example.com", rows[0].Values["EMAIL"]);
        Assert.Equal("36", rows[0].Values["age"]);
        Assert.Equal("true", rows[0].Values["admin"]);
        Assert.Null(rows[0].Values["manager"]);
        Assert.Equal("1.50", rows[0].Values["ratio"]);
        Assert.Equal("1e3", rows[0].Values["big"]);
        Assert.Null(rows[1].Values["nickname"]);
    }

    [Fact]
    public async Task Ndjson_reads_one_object_per_line_numbered_by_line_with_blank_lines_counted()
    {
        var rows = await ReadJsonAsync("{\"sku\":\"A\"}\r\n\n{\"sku\":\"B\"}\n  {\"sku\":\"C\"}");

        Assert.Equal([1, 3, 4], rows.Select(r => r.Number));
        Assert.Equal(["A", "B", "C"], rows.Select(r => r.Values["sku"]));
    }

    [Fact]
    public async Task A_bom_and_leading_whitespace_do_not_hide_the_format()
    {
        var rows = await ReadAsync([0xEF, 0xBB, 0xBF, .. "\n\n [{\"a\":1}]"u8], TabularFormat.Json);

        Assert.Equal("1", Assert.Single(rows).Values["a"]);
    }

    [Fact]
    public async Task Nested_objects_flatten_with_dots_up_to_three_levels_and_arrays_stay_json_text()
    {
        var row = Assert.Single(await ReadJsonAsync("""
            {"email": "a@b.c", "customFields": {"dept": "x", "cost": {"centre": 42, "deep": {"too": "far"}}}, "roles": ["admin", "user"]}
            """));

        Assert.Equal("x", row.Values["customFields.dept"]);
        Assert.Equal("42", row.Values["customfields.COST.centre"]);
        Assert.Equal("""{"too": "far"}""", row.Values["customFields.cost.deep"]);
        Assert.Equal("""["admin", "user"]""", row.Values["roles"]);
    }

    [Theory]
    [InlineData("""[{"a":1}, 5]""", "row 2: expected an object, found a number.")]
    [InlineData("""[{"a":1}, ["x"]]""", "row 2: expected an object, found an array.")]
    [InlineData("{\"a\":1}\n\"text\"\n", "row 2: expected an object, found a string.")]
    [InlineData("{\"a\":1}\n\nnull", "row 3: expected an object, found null.")]
    public async Task A_row_that_is_not_an_object_is_rejected_naming_the_row(string json, string message)
    {
        var error = await RejectsJsonAsync(json);

        Assert.Equal(message, error.Message);
    }

    [Theory]
    [InlineData("""[{"a":1}, {"a":""")]
    [InlineData("""[{"a":1}, {"a":2}""")]
    [InlineData("""[{"a":1},]""")]
    [InlineData("{\"a\":1}\n{\"a\":")]
    [InlineData("{\"a\":1}\n{a:1}")]
    [InlineData("""[{"a":1}] [{"a":2}]""")]
    public async Task Truncated_or_malformed_json_is_rejected(string json)
    {
        var error = await RejectsJsonAsync(json);

        Assert.Contains("the JSON is not valid", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_row_of_a_json_error_is_named()
    {
        var error = await RejectsJsonAsync("""[{"a":1}, {"a":2}, {"a":}]""");

        Assert.StartsWith("row 3: the JSON is not valid", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  \r\n ")]
    public async Task An_empty_file_is_rejected(string json)
    {
        var error = await RejectsJsonAsync(json);

        Assert.Equal("The file is empty: it holds no JSON.", error.Message);
    }

    [Fact]
    public async Task An_empty_array_has_no_rows()
    {
        Assert.Empty(await ReadJsonAsync(" [ ] "));
    }

    [Fact]
    public async Task A_key_that_appears_twice_in_a_row_is_rejected()
    {
        var error = await RejectsJsonAsync("""[{"email":"a", "Email":"b"}]""");

        Assert.Equal("row 1: key 'Email' appears twice.", error.Message);
    }

    [Fact]
    public async Task A_value_over_the_cell_limit_is_rejected()
    {
        var error = await RejectsJsonAsync("""[{"a":"12345678901"}]""", new TabularLimits { MaxCellChars = 10 });

        Assert.Equal("row 1, 'a': a value is longer than 10 characters.", error.Message);
    }

    [Fact]
    public async Task A_10_MB_string_value_is_rejected_without_reading_the_whole_of_it()
    {
        var stream = new GeneratedStream("[{\"name\":\"Ada\"},{\"note\":\""u8.ToArray(), (byte)'x', 10 * 1024 * 1024);

        var error = await Assert.ThrowsAsync<TabularFileException>(() => ReadAsync(stream, TabularFormat.Json));

        Assert.StartsWith("row 2: larger than the 4 MB a row may take", error.Message, StringComparison.Ordinal);
        Assert.InRange(stream.BytesRead, 0, 5 * 1024 * 1024);
    }

    [Fact]
    public async Task Rows_larger_than_the_read_buffer_are_read_whole()
    {
        var big = new string('y', 30_000);
        var json = "[" + string.Join(",", Enumerable.Range(0, 20).Select(i => $$"""{"i":{{i}},"a":"{{big}}","b":"{{big}}","c":"{{big}}"}""")) + "]";

        var rows = await ReadJsonAsync(json);

        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), rows.Select(r => r.Number));
        Assert.All(rows, r => Assert.Equal(big, r.Values["c"]));
    }

    [Fact]
    public async Task Invalid_utf8_in_a_string_is_rejected_naming_the_row()
    {
        byte[] json = [.. "[{\"a\":\"ok\"},{\"a\":\"M"u8, 0xFC, .. "nchen\"}]"u8];

        var error = await RejectsAsync(json, TabularFormat.Json);

        Assert.StartsWith("row 2: ", error.Message, StringComparison.Ordinal);
    }
}
