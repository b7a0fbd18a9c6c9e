using System.IO.Compression;
using System.Text;
using DocumentFormat.OpenXml;
using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Spreadsheet;
using Platform.Functions.Jobs.Files;
using static Platform.Tests.Jobs.Files.TabularFiles;

namespace Platform.Tests.Jobs.Files;

public sealed class XlsxReaderTests
{
    private const string Main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

    [Fact]
    public async Task A_file_from_the_writer_reads_back_and_through_a_stream_that_cannot_seek()
    {
        var file = await WriteAsync(TabularFormat.Xlsx, ["sku", "qty"], [["A-1", "5"], ["B-2", null]]);

        var rows = await ReadAsync(new ForwardOnlyStream(file), TabularFormat.Xlsx);

        Assert.Equal([2, 3], rows.Select(r => r.Number));
        Assert.Equal("A-1", rows[0].Values["SKU"]);
        Assert.Equal("5", rows[0].Values["qty"]);
        Assert.Null(rows[1].Values["qty"]);
    }

    [Fact]
    public async Task Shared_and_inline_strings_numbers_booleans_dates_formulas_gaps_and_blank_rows_read_as_text()
    {
        var file = Package(
            sheet: """
                <sheetData>
                  <row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="inlineStr"><is><t>born</t></is></c><c r="C2" t="s"><v>1</v></c><c r="D2" t="s"><v>2</v></c><c r="E2" t="s"><v>3</v></c></row>
                  <row r="3"><c r="A3" t="s"><v>4</v></c><c r="B3" s="1"><v>45717</v></c><c r="C3"><v>19.99</v></c><c r="D3" t="b"><v>1</v></c><c r="E3" s="2"><v>45717.6041666667</v></c></row>
                  <row r="4"><c r="A4" t="inlineStr"><is><r><t>Bo</t></r><r><rPr><b/></rPr><t xml:space="preserve">b </t></r></is></c><c r="C4"><f>0.1+0.2</f><v>0.30000000000000004</v></c></row>
                  <row r="5"/>
                  <row r="6"><c r="A6" t="str"><f>"x"&amp;"y"</f><v>xy</v></c><c r="B6" s="3"><v>0.5</v></c><c r="C6"><v>1234567</v></c><c r="D6" t="e"><v>#N/A</v></c></row>
                  <row r="7"><c t="inlineStr"><is><t>no refs</t></is></c><c/><c><v>7</v></c></row>
                </sheetData>
                """,
            sharedStrings: """
                <sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
                  <si><t>name</t></si><si><t>price</t></si><si><r><t>act</t></r><r><t>ive</t></r></si><si><t>due</t></si>
                  <si><t>Ada</t><rPh><t>ignored</t></rPh></si>
                </sst>
                """,
            styles: """
                <styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
                  <numFmts><numFmt numFmtId="164" formatCode="dd/mm/yyyy\ hh:mm"/><numFmt numFmtId="165" formatCode="#,##0.00 &quot;days&quot;"/></numFmts>
                  <cellXfs><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="21"/><xf numFmtId="165"/></cellXfs>
                </styleSheet>
                """);

        var rows = await ReadAsync(file, TabularFormat.Xlsx);

        Assert.Equal([3, 4, 6, 7], rows.Select(r => r.Number));
        Assert.Equal(["name", "born", "price", "active", "due"], rows[0].Values.Keys);
        Assert.Equal(["Ada", "2025-03-01", "19.99", "true", "2025-03-01T14:30:00"], rows[0].Values.Values);
        Assert.Equal(["Bob ", null, "0.3", null, null], rows[1].Values.Values);
        Assert.Equal(["xy", "12:00:00", "1234567", "#N/A", null], rows[2].Values.Values);
        Assert.Equal(["no refs", null, "7", null, null], rows[3].Values.Values);
    }

    [Fact]
    public async Task A_gap_in_a_data_row_reads_as_null()
    {
        var file = Package("""
            <sheetData>
              <row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="B1" t="inlineStr"><is><t>b</t></is></c><c r="C1" t="inlineStr"><is><t>c</t></is></c></row>
              <row r="2"><c r="A2"><v>1</v></c><c r="C2"><v>3</v></c></row>
            </sheetData>
            """);

        var row = Assert.Single(await ReadAsync(file, TabularFormat.Xlsx));

        Assert.Equal("1", row.Values["a"]);
        Assert.Null(row.Values["b"]);
        Assert.Equal("3", row.Values["c"]);
    }

    [Fact]
    public async Task A_gap_in_the_header_is_rejected_naming_the_column()
    {
        var file = Package("""<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="C1" t="inlineStr"><is><t>c</t></is></c></row></sheetData>""");

        var error = await RejectsAsync(file, TabularFormat.Xlsx);

        Assert.Equal("header: column B has no name.", error.Message);
    }

    [Fact]
    public async Task A_value_in_a_column_without_header_is_rejected_naming_the_cell()
    {
        var file = Package("""<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row><row r="2"><c r="A2"><v>1</v></c><c r="D2"><v>2</v></c></row></sheetData>""");

        var error = await RejectsAsync(file, TabularFormat.Xlsx);

        Assert.Equal("row 2: cell D2 has a value but its column has no header.", error.Message);
    }

    [Fact]
    public async Task A_workbook_made_with_the_open_xml_sdk_reads_from_its_first_worksheet_in_workbook_order()
    {
        var stream = new MemoryStream();
        using (var document = SpreadsheetDocument.Create(stream, SpreadsheetDocumentType.Workbook))
        {
            var workbook = document.AddWorkbookPart();
            workbook.Workbook = new Workbook(new Sheets());
            // The second part added is the first sheet in the workbook's order.
            foreach (var (name, value, order) in new[] { ("Later", "second", 2u), ("First", "first", 1u) })
            {
                var part = workbook.AddNewPart<WorksheetPart>();
                part.Worksheet = new Worksheet(new SheetData(
                    new Row(new Cell { CellReference = "A1", DataType = CellValues.InlineString, InlineString = new InlineString(new Text("which")) }) { RowIndex = 1 },
                    new Row(new Cell { CellReference = "A2", DataType = CellValues.InlineString, InlineString = new InlineString(new Text(value)) }) { RowIndex = 2 }));
                var sheet = new Sheet { Id = workbook.GetIdOfPart(part), SheetId = order, Name = name };
                if (order == 1)
                {
                    workbook.Workbook.Sheets!.InsertAt(sheet, 0);
                }
                else
                {
                    workbook.Workbook.Sheets!.Append(sheet);
                }
            }
        }

        var rows = await ReadAsync(stream.ToArray(), TabularFormat.Xlsx);

        Assert.Equal("first", Assert.Single(rows).Values["which"]);
    }

    [Fact]
    public async Task A_zip_bomb_of_2_GB_whitespace_is_rejected_from_its_declared_size_before_inflating()
    {
        var file = Bomb(2L * 1024 * 1024 * 1024);

        var error = await RejectsAsync(file, TabularFormat.Xlsx);

        Assert.Equal("The xlsx file is rejected as a zip bomb: its parts would inflate to more than 1024 MB.", error.Message);
        Assert.InRange(file.Length, 0, 4 * 1024 * 1024);
    }

    [Fact]
    public async Task A_part_compressed_beyond_the_allowed_ratio_is_rejected_even_under_the_size_limit()
    {
        var file = Bomb(50L * 1024 * 1024);

        var error = await RejectsAsync(file, TabularFormat.Xlsx);

        Assert.Equal("The xlsx file is rejected as a zip bomb: 'xl/worksheets/sheet1.xml' is compressed more than 200:1.", error.Message);
    }

    [Fact]
    public async Task A_zip_that_understates_its_sizes_is_never_inflated_beyond_them()
    {
        var file = Bomb(50L * 1024 * 1024);
        // Lie in both headers of the sheet entry: 50 MB declared as 1 KB.
        var name = Encoding.ASCII.GetBytes("xl/worksheets/sheet1.xml");
        PatchUncompressedSize(file, 0x04034b50, 22, 26, 30, name);
        PatchUncompressedSize(file, 0x02014b50, 24, 28, 46, name);

        var error = await RejectsAsync(file, TabularFormat.Xlsx);

        // .NET stops inflating at the declared size; what it hands over is cut-off XML.
        Assert.StartsWith("The xlsx file is damaged", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_size_limit_holds_for_all_parts_together_not_for_each_alone()
    {
        var rows = string.Concat(Enumerable.Range(2, 1000).Select(i => $"<row r=\"{i}\"><c r=\"A{i}\" t=\"s\"><v>{i % 2}</v></c></row>"));
        var strings = string.Concat(Enumerable.Range(0, 1000).Select(i => $"<si><t>string {i:D25}</t></si>"));
        var file = Package(
            $"""<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>n</t></is></c></row>{rows}</sheetData>""",
            sharedStrings: $"""<sst xmlns="{Main}">{strings}</sst>""");

        Assert.Equal(1000, (await ReadAsync(file, TabularFormat.Xlsx)).Count);
        var error = await RejectsAsync(file, TabularFormat.Xlsx, new TabularLimits { MaxXlsxUncompressedBytes = 60_000 });

        Assert.Equal("The xlsx file is rejected as a zip bomb: its parts would inflate to more than 58 KB.", error.Message);
    }

    [Fact]
    public async Task Bytes_that_are_not_a_zip_are_rejected()
    {
        var error = await RejectsAsync("name,email\nAda,ada@example.com\n"u8.ToArray(), TabularFormat.Xlsx);

        Assert.Equal("The file is not an xlsx workbook (it is not a zip archive).", error.Message);
    }

    [Fact]
    public async Task A_zip_without_a_workbook_is_rejected()
    {
        var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var entry = new StreamWriter(zip.CreateEntry("notes.txt").Open());
            entry.Write("hello");
        }

        var error = await RejectsAsync(stream.ToArray(), TabularFormat.Xlsx);

        Assert.Equal("The file is not an xlsx workbook: it holds no workbook.", error.Message);
    }

    [Fact]
    public async Task A_workbook_without_worksheets_is_rejected()
    {
        var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            Add(zip, "xl/workbook.xml", $"""<workbook xmlns="{Main}"><sheets/></workbook>""");
        }

        var error = await RejectsAsync(stream.ToArray(), TabularFormat.Xlsx);

        Assert.Equal("The xlsx workbook has no worksheet.", error.Message);
    }

    [Fact]
    public async Task An_xlsx_larger_than_allowed_is_rejected_while_it_is_copied()
    {
        var file = await WriteAsync(TabularFormat.Xlsx, ["a"], Enumerable.Range(0, 2000).Select(i => new[] { $"value {i}" }));

        var error = await Assert.ThrowsAsync<TabularFileException>(() =>
            ReadAsync(new ForwardOnlyStream(file), TabularFormat.Xlsx, new TabularLimits { MaxXlsxFileBytes = 1024 }));

        Assert.Equal("The xlsx file is larger than 1 KB.", error.Message);
    }

    [Fact]
    public async Task A_cell_over_the_limit_is_rejected_naming_the_cell()
    {
        var file = await WriteAsync(TabularFormat.Xlsx, ["a", "b"], [["1", "short"], ["2", new string('z', 11)]]);

        var error = await RejectsAsync(file, TabularFormat.Xlsx, new TabularLimits { MaxCellChars = 10 });

        Assert.Equal("row 3: cell B3 is longer than 10 characters.", error.Message);
    }

    [Fact]
    public async Task An_empty_sheet_is_rejected_as_having_no_header_and_a_header_only_sheet_has_no_rows()
    {
        var error = await RejectsAsync(Package("<sheetData/>"), TabularFormat.Xlsx);
        Assert.Equal("The sheet is empty: it has no header row.", error.Message);

        Assert.Empty(await ReadAsync(await WriteAsync(TabularFormat.Xlsx, ["a"], []), TabularFormat.Xlsx));
    }

    /// <summary>A minimal xlsx around the given sheetData (and optional shared strings and styles).</summary>
    private static byte[] Package(string sheet, string? sharedStrings = null, string? styles = null)
    {
        var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            Add(zip, "_rels/.rels", """<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/xl/workbook.xml"/></Relationships>""");
            Add(zip, "xl/workbook.xml", $"""<workbook xmlns="{Main}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rS"/></sheets></workbook>""");
            Add(zip, "xl/_rels/workbook.xml.rels", """
                <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
                  <Relationship Id="rS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="sheets/../worksheets/s.xml"/>
                  <Relationship Id="rT" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>
                  <Relationship Id="rY" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
                </Relationships>
                """);
            Add(zip, "xl/worksheets/s.xml", $"""<worksheet xmlns="{Main}">{sheet}</worksheet>""");
            if (sharedStrings is not null)
            {
                Add(zip, "xl/sharedStrings.xml", sharedStrings);
            }

            if (styles is not null)
            {
                Add(zip, "xl/styles.xml", styles);
            }
        }

        return stream.ToArray();
    }

    private static void Add(ZipArchive zip, string name, string content)
    {
        using var entry = zip.CreateEntry(name).Open();
        entry.Write(Encoding.UTF8.GetBytes(content));
    }

    /// <summary>A valid-looking xlsx whose sheet is a header row followed by <paramref name="size"/> bytes of spaces,
    /// compressed as it is generated (the test never holds it).</summary>
    private static byte[] Bomb(long size)
    {
        var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            Add(zip, "xl/workbook.xml", $"""<workbook xmlns="{Main}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rS"/></sheets></workbook>""");
            Add(zip, "xl/_rels/workbook.xml.rels", """<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>""");
            using var sheet = zip.CreateEntry("xl/worksheets/sheet1.xml", CompressionLevel.Optimal).Open();
            new GeneratedStream(Encoding.UTF8.GetBytes($"""<worksheet xmlns="{Main}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row>"""), (byte)' ', size)
                .CopyTo(sheet, 1024 * 1024);
        }

        return stream.ToArray();
    }

    private static void PatchUncompressedSize(byte[] zip, uint signature, int sizeAt, int nameLengthAt, int nameAt, byte[] name)
    {
        for (var i = 0; i + nameAt + name.Length < zip.Length; i++)
        {
            if (BitConverter.ToUInt32(zip, i) == signature && BitConverter.ToUInt16(zip, i + nameLengthAt) == name.Length
                && zip.AsSpan(i + nameAt, name.Length).SequenceEqual(name))
            {
                BitConverter.GetBytes(1024u).CopyTo(zip, i + sizeAt);
                return;
            }
        }

        throw new InvalidOperationException("entry not found");
    }
}
