using System.Text;
using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Validation;
using Platform.Functions.Jobs.Files;
using static Platform.Tests.Jobs.Files.TabularFiles;

namespace Platform.Tests.Jobs.Files;

public sealed class TabularRoundTripTests
{
    private static readonly string[] Columns = ["name", "note"];

    // Every value that has broken an exporter somewhere, paired with what a reader gets back.
    private static readonly (string? Written, string? Read)[] Awkward =
    [
        ("plain", "plain"),
        ("say \"hi\"", "say \"hi\""),
        ("\"", "\""),
        ("a,b", "a,b"),
        ("a;b", "a;b"),
        ("two\r\nlines", "two\r\nlines"),
        ("lf\nonly", "lf\nonly"),
        ("cr\ronly", "cr\ronly"),
        ("  padded  ", "  padded  "),
        ("Grüße, 東京, עברית", "Grüße, 東京, עברית"),
        ("emoji 🚀👩‍👩‍👧", "emoji 🚀👩‍👩‍👧"),
        ("_x0041_ stays literal", "_x0041_ stays literal"),
        ("bell \u0007 and nul \0", "bell \u0007 and nul \0"),
        ("=1+2", "'=1+2"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=tab", "'\t=tab"),
        ("\r=cr", "'\r=cr"),
        ("-5", "-5"),
        ("+3.5", "+3.5"),
        ("", null),
        (null, null),
        (new string('x', 32 * 1024), new string('x', 32 * 1024)),
    ];

    [Theory]
    [InlineData(TabularFormat.Csv)]
    [InlineData(TabularFormat.Xlsx)]
    public async Task Every_awkward_value_comes_back_as_written_with_formulas_neutralised(TabularFormat format)
    {
        var file = await WriteAsync(format, Columns, Awkward.Select((v, i) => new[] { $"row {i}", v.Written }));

        var rows = await ReadAsync(file, format);

        Assert.Equal(Awkward.Length, rows.Count);
        for (var i = 0; i < Awkward.Length; i++)
        {
            Assert.Equal(i + 2, rows[i].Number);
            Assert.Equal($"row {i}", rows[i].Values["NAME"]);
            Assert.Equal(Awkward[i].Read, rows[i].Values["note"]);
        }
    }

    [Fact]
    public async Task Json_keeps_every_value_as_written_formulas_included()
    {
        var file = await WriteAsync(TabularFormat.Json, Columns, Awkward.Select((v, i) => new[] { $"row {i}", v.Written }));

        var rows = await ReadAsync(file, TabularFormat.Json);

        Assert.Equal(Awkward.Length, rows.Count);
        for (var i = 0; i < Awkward.Length; i++)
        {
            Assert.Equal(i + 1, rows[i].Number);
            Assert.Equal(string.IsNullOrEmpty(Awkward[i].Written) ? null : Awkward[i].Written, rows[i].Values["note"]);
        }

        Assert.Equal(Awkward.Length, Encoding.UTF8.GetString(file).Count(c => c == '\n'));
    }

    [Fact]
    public async Task Csv_is_utf8_with_a_bom_a_header_line_and_crlf_line_ends()
    {
        var file = await WriteAsync(TabularFormat.Csv, ["email", "display name"], [["a@example.com", "Ada, Countess"], [null, "=HYPERLINK(\"x\")"]]);

        Assert.Equal([0xEF, 0xBB, 0xBF], file[..3]);
        Assert.Equal(
            "email,display name\r\na@example.com,\"Ada, Countess\"\r\n,\"'=HYPERLINK(\"\"x\"\")\"\r\n",
            Encoding.UTF8.GetString(file[3..]));
    }

    [Fact]
    public async Task Json_is_one_object_per_line_with_the_columns_as_keys()
    {
        var file = await WriteAsync(TabularFormat.Json, ["sku", "qty"], [["A-1", "5"], ["B\"2", null]]);

        Assert.Equal("{\"sku\":\"A-1\",\"qty\":\"5\"}\n{\"sku\":\"B\\u00222\",\"qty\":null}\n", Encoding.UTF8.GetString(file));
    }

    [Fact]
    public async Task The_xlsx_is_a_valid_workbook_that_the_open_xml_sdk_opens_with_the_sheet_named_as_asked()
    {
        var output = new WriteOnlyStream();
        await using (var writer = TabularWriter.Create(output, TabularFormat.Xlsx, ["sku", "name"], "Items: 2026/03"))
        {
            await writer.WriteRowAsync(["A-1", "=cmd"], TestContext.Current.CancellationToken);
            await writer.WriteRowAsync(["B-2", null], TestContext.Current.CancellationToken);
            Assert.Equal(2, writer.RowsWritten);
        }

        using var document = SpreadsheetDocument.Open(new MemoryStream(output.ToArray()), false);
        var errors = new OpenXmlValidator().Validate(document, TestContext.Current.CancellationToken).Select(e => $"{e.Path?.XPath}: {e.Description}").ToList();
        Assert.Empty(errors);
        var sheet = Assert.Single(document.WorkbookPart!.Workbook.Sheets!.Elements<DocumentFormat.OpenXml.Spreadsheet.Sheet>());
        Assert.Equal("Items 202603", sheet.Name!.Value);
        var cells = document.WorkbookPart.WorksheetParts.Single().Worksheet.Descendants<DocumentFormat.OpenXml.Spreadsheet.Cell>()
            .Select(c => $"{c.CellReference}={c.InnerText}").ToList();
        Assert.Equal(["A1=sku", "B1=name", "A2=A-1", "B2='=cmd", "A3=B-2"], cells);
    }

    [Fact]
    public async Task Each_format_writes_a_header_only_file_for_no_rows_and_reads_it_back_as_no_rows()
    {
        foreach (var format in new[] { TabularFormat.Csv, TabularFormat.Xlsx })
        {
            var file = await WriteAsync(format, ["a", "b"], []);
            Assert.Empty(await ReadAsync(file, format));
        }

        Assert.Empty(await WriteAsync(TabularFormat.Json, ["a"], []));
    }

    [Fact]
    public async Task Dispose_leaves_the_output_stream_open_for_its_owner()
    {
        var output = new MemoryStream();
        await using (var writer = TabularWriter.Create(output, TabularFormat.Xlsx, ["a"]))
        {
            await writer.WriteRowAsync(["1"], TestContext.Current.CancellationToken);
        }

        Assert.True(output.CanWrite);
        output.Position = 0;
        Assert.Equal("1", Assert.Single(await ReadAsync(output, TabularFormat.Xlsx)).Values["a"]);
    }

    [Theory]
    [InlineData(TabularFormat.Csv)]
    [InlineData(TabularFormat.Json)]
    [InlineData(TabularFormat.Xlsx)]
    public async Task Reading_stops_when_cancelled(TabularFormat format)
    {
        var file = await WriteAsync(format, ["a"], Enumerable.Range(0, 100).Select(i => new[] { $"{i}" }));
        using var cancel = new CancellationTokenSource();
        var read = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in TabularReader.ReadAsync(new MemoryStream(file), format, TabularLimits.Default, cancel.Token))
            {
                if (++read == 10)
                {
                    await cancel.CancelAsync();
                }
            }
        });
        Assert.InRange(read, 10, 99);
    }
}
