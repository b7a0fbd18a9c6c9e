using System.Text;
using Platform.Functions.Jobs.Files;
using static Platform.Tests.Jobs.Files.TabularFiles;

namespace Platform.Tests.Jobs.Files;

public sealed class CsvReaderTests
{
    [Fact]
    public async Task A_comma_file_reads_into_rows_numbered_as_a_spreadsheet_shows_them()
    {
        var rows = await ReadCsvAsync("email,name\r\nada@example.com,Ada\r\nbob@example.com,Bob\r\n");

        Assert.Equal([2, 3], rows.Select(r => r.Number));
        Assert.Equal("ada@example.com", rows[0].Values["email"]);
        Assert.Equal("Bob", rows[1].Values["Name"]);
    }

    [Fact]
    public async Task A_semicolon_file_is_recognised_from_its_header_line()
    {
        var rows = await ReadCsvAsync("sku;name;price\n\"A;1\";Bolt, small;1,50\n");

        var row = Assert.Single(rows);
        Assert.Equal("A;1", row.Values["sku"]);
        Assert.Equal("Bolt, small", row.Values["name"]);
        Assert.Equal("1,50", row.Values["price"]);
    }

    [Fact]
    public async Task A_utf8_bom_is_not_part_of_the_first_column_name()
    {
        var rows = await ReadAsync([0xEF, 0xBB, 0xBF, .. "email\nada@example.com\n"u8], TabularFormat.Csv);

        Assert.Equal("ada@example.com", Assert.Single(rows).Values["email"]);
    }

    [Fact]
    public async Task Quoted_cells_keep_line_breaks_and_doubled_quotes_and_later_rows_keep_their_file_row_numbers()
    {
        var rows = await ReadCsvAsync("sku,note\r\nA,\"line one\r\nline two\"\r\nB,\"He said \"\"hi\"\"\"\r\n\r\nC,\r\n");

        Assert.Equal([2, 3, 5], rows.Select(r => r.Number));
        Assert.Equal("line one\r\nline two", rows[0].Values["note"]);
        Assert.Equal("He said \"hi\"", rows[1].Values["note"]);
        Assert.Null(rows[2].Values["note"]);
    }

    [Fact]
    public async Task Blank_lines_before_the_header_and_between_rows_are_skipped_but_still_counted()
    {
        var rows = await ReadCsvAsync("\r\n\r\nsku\r\n\r\nA\r\n,\r\nB");

        Assert.Equal([5, 7], rows.Select(r => r.Number));
        Assert.Equal(["A", "B"], rows.Select(r => r.Values["sku"]));
    }

    [Fact]
    public async Task Header_names_are_trimmed_and_looked_up_regardless_of_case()
    {
        var row = Assert.Single(await ReadCsvAsync(" Email , \"Display Name\"\nada@example.com,Ada\n"));

        Assert.Equal(["Email", "Display Name"], row.Values.Keys);
        Assert.Equal("Ada", row.Values["display name"]);
    }

    [Fact]
    public async Task A_row_with_fewer_cells_than_the_header_has_nulls_for_the_missing_ones()
    {
        var row = Assert.Single(await ReadCsvAsync("a,b,c\n1\n"));

        Assert.Equal("1", row.Values["a"]);
        Assert.Null(row.Values["b"]);
        Assert.Null(row.Values["c"]);
    }

    [Fact]
    public async Task A_row_with_more_cells_than_the_header_is_rejected_with_its_row_number_unless_the_extra_cells_are_empty()
    {
        Assert.Single(await ReadCsvAsync("a,b\n1,2,,\n"));

        var error = await RejectsCsvAsync("a,b\n1,2\n1,2,3\n");

        Assert.Equal("row 3 has 3 cells, the header has 2.", error.Message);
    }

    [Fact]
    public async Task A_header_only_file_has_no_rows()
    {
        Assert.Empty(await ReadCsvAsync("email,name\r\n"));
        Assert.Empty(await ReadCsvAsync("email,name"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("\r\n\n\r\n")]
    public async Task An_empty_file_is_rejected(string text)
    {
        var error = await RejectsCsvAsync(text);

        Assert.Equal("The file is empty: it has no header row.", error.Message);
    }

    [Fact]
    public async Task A_bom_alone_is_an_empty_file()
    {
        var error = await RejectsAsync([0xEF, 0xBB, 0xBF], TabularFormat.Csv);

        Assert.StartsWith("The file is empty", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_column_name_that_appears_twice_is_rejected_whatever_its_case()
    {
        var error = await RejectsCsvAsync("email,name,EMAIL\na,b,c\n");

        Assert.Equal("header: column 'EMAIL' appears twice.", error.Message);
    }

    [Fact]
    public async Task An_empty_header_cell_is_rejected_with_its_position()
    {
        var error = await RejectsCsvAsync("email,  ,name\na,b,c\n");

        Assert.Equal("header: column 2 has no name.", error.Message);
    }

    [Theory]
    [InlineData("a,b\n1,2\n3,x\"y\"\n", "row 3, column 2: broken quoting: a quote \" inside a cell that does not start with a quote")]
    [InlineData("a,b\n1,\"two\"x,3\n", "row 2, column 2: broken quoting: text after the closing quote of a quoted cell")]
    [InlineData("a,b\n1,2\n3,4\n\"5,6\n7,8\n", "row 4: a quoted cell is never closed")]
    public async Task Broken_quoting_is_rejected_naming_the_row(string text, string message)
    {
        var error = await RejectsCsvAsync(text);

        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_utf8_is_rejected_naming_the_row_it_is_in()
    {
        byte[] file = [.. "name,city\r\nAda,London\r\nBob,M"u8, 0xFC, .. "nchen\r\n"u8];

        var error = await RejectsAsync(file, TabularFormat.Csv);

        Assert.Equal("row 3: the text is not valid UTF-8. Save the file as \"CSV UTF-8\".", error.Message);
    }

    [Fact]
    public async Task A_utf16_file_is_rejected_with_what_to_do_instead()
    {
        var error = await RejectsAsync([.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes("a,b\n1,2\n")], TabularFormat.Csv);

        Assert.Equal("The file is UTF-16 text; save it as \"CSV UTF-8\".", error.Message);
    }

    [Fact]
    public async Task A_cell_over_the_limit_is_rejected()
    {
        var limits = new TabularLimits { MaxCellChars = 10 };

        Assert.Single(await ReadCsvAsync("a\n0123456789\n", limits));
        var error = await RejectsCsvAsync("a\n0123456789X\n", limits);

        Assert.Equal("row 2, column 1: a cell is longer than 10 characters.", error.Message);
    }

    [Fact]
    public async Task A_10_MB_cell_is_rejected_after_reading_only_the_start_of_it()
    {
        var stream = new GeneratedStream("name,note\r\nAda,\""u8.ToArray(), (byte)'x', 10 * 1024 * 1024);

        var error = await Assert.ThrowsAsync<TabularFileException>(() => ReadAsync(stream, TabularFormat.Csv));

        Assert.Equal("row 2: a cell is longer than 32768 characters (or a closing quote \" is missing).", error.Message);
        Assert.InRange(stream.BytesRead, 0, 256 * 1024);
    }

    [Fact]
    public async Task A_million_columns_are_rejected_at_the_header_before_the_header_is_even_read_whole()
    {
        var stream = new GeneratedStream([], (byte)',', 1_000_000);

        var error = await Assert.ThrowsAsync<TabularFileException>(() => ReadAsync(stream, TabularFormat.Csv));

        Assert.Equal("header has more than 200 columns.", error.Message);
        // The reader stopped within its first 64 KB chunk: nothing sized by the million columns can have been built.
        Assert.InRange(stream.BytesRead, 0, 64 * 1024);
    }

    [Fact]
    public async Task A_data_row_with_too_many_columns_is_rejected_with_its_row_number()
    {
        var error = await RejectsCsvAsync("a,b\n1,2\n" + new string(',', 300) + "\n");

        Assert.Equal("row 3 has more than 200 columns.", error.Message);
    }

    [Fact]
    public async Task More_rows_than_allowed_are_rejected()
    {
        var error = await RejectsCsvAsync("a\n1\n2\n3\n", new TabularLimits { MaxRows = 2 });

        Assert.Equal("row 4: the file has more than 2 rows.", error.Message);
    }

    [Fact]
    public async Task A_stream_that_cannot_seek_reads_the_same()
    {
        var rows = await ReadAsync(new ForwardOnlyStream(Encoding.UTF8.GetBytes("a;b\n1;2\n")), TabularFormat.Csv);

        Assert.Equal("2", Assert.Single(rows).Values["b"]);
    }
}
