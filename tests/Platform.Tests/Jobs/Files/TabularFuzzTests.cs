using System.IO.Compression;
using System.Text;
using Platform.Functions.Jobs.Files;
using static Platform.Tests.Jobs.Files.TabularFiles;

namespace Platform.Tests.Jobs.Files;

public sealed class TabularFuzzTests
{
    // Small limits so that mutations reach the limit checks as well as the parsers.
    private static readonly TabularLimits Limits = new() { MaxColumns = 8, MaxCellChars = 60, MaxRows = 40, MaxJsonRowBytes = 64 * 1024 };

    private static readonly byte[] Interesting = "\"\"\",;\r\n\n{}[]:'=\\ \t0aé"u8.ToArray().Concat(new byte[] { 0x00, 0x80, 0xC3, 0xE2, 0xF0, 0xFF, 0xEF, 0xBB, 0xBF }).ToArray();

    [Fact]
    public async Task Fuzzed_csv_either_reads_fully_or_fails_with_a_file_error_that_says_where()
    {
        string[] valid =
        [
            "email,name,note\r\nada@example.com,Ada,\"says \"\"hi\"\"\"\r\nbob@example.com,\"Bob, Jr\",\"two\r\nlines\"\r\n\r\n,,\r\ncy@example.com,Cy,\r\n",
            "\uFEFFsku;qty;where\nA-1;5;\"Shelf; top\"\nB-2;;\n\nC-3;7;\"x\"\"y\"\n",
            "a,b\n1\n2,3\n\"4\",\"\"\n",
        ];

        var (read, rejected) = await FuzzAsync(valid.Select(Encoding.UTF8.GetBytes).ToArray(), TabularFormat.Csv, runs: 4000, seed: 2026_17_01);

        Assert.True(read > 200, $"only {read} fuzzed files read");
        Assert.True(rejected > 200, $"only {rejected} fuzzed files were rejected");
    }

    [Fact]
    public async Task Fuzzed_json_either_reads_fully_or_fails_with_a_file_error_that_says_where()
    {
        string[] valid =
        [
            """[{"email":"ada@example.com","age":36,"admin":true,"x":null,"customFields":{"dept":"R&D","cost":{"centre":4}},"tags":["a","b"]},{"email":"b\"o\u00e9b"}]""",
            "{\"sku\":\"A-1\",\"qty\":5}\n{\"sku\":\"B-2\",\"qty\":-1.5e3}\r\n\n{\"sku\":\"C\",\"nested\":{\"a\":{\"b\":{\"c\":[1,{\"d\":2}]}}}}\n",
            " [ ] ",
        ];

        var (read, rejected) = await FuzzAsync(valid.Select(Encoding.UTF8.GetBytes).ToArray(), TabularFormat.Json, runs: 4000, seed: 2026_17_02);

        Assert.True(read > 200, $"only {read} fuzzed files read");
        Assert.True(rejected > 200, $"only {rejected} fuzzed files were rejected");
    }

    [Fact]
    public async Task Fuzzed_xlsx_bytes_and_fuzzed_sheet_xml_either_read_fully_or_fail_with_a_file_error()
    {
        var written = await WriteAsync(TabularFormat.Xlsx, ["sku", "name", "qty"], [["A-1", "Bolt, \"small\"", "5"], ["B-2", null, "=1+2"], ["C-3", "émoji 🚀", "-1"]]);
        var (read, rejected) = await FuzzAsync([written], TabularFormat.Xlsx, runs: 200, seed: 2026_17_03);

        // Byte mutations mostly break the zip; mutating the sheet XML before zipping reaches the XML reading.
        var sheet = Encoding.UTF8.GetBytes("""
            <worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
            <row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="B1" t="s"><v>0</v></c></row>
            <row r="2"><c r="A2" s="1"><v>45717.5</v></c><c r="B2" t="b"><v>1</v></c></row>
            <row r="4"><c t="inlineStr"><is><r><t>x</t></r><rPh><t>y</t></rPh></is></c><c><f>1</f><v>2.5</v></c></row>
            </sheetData></worksheet>
            """);
        var random = new Random(2026_17_04);
        var xmlRead = 0;
        var xmlRejected = 0;
        for (var run = 0; run < 300; run++)
        {
            var mutated = Mutate(sheet, random);
            if (await ReadsOrRejectsAsync(SheetPackage(mutated), TabularFormat.Xlsx))
            {
                xmlRead++;
            }
            else
            {
                xmlRejected++;
            }
        }

        Assert.True(read + xmlRead > 20, $"only {read + xmlRead} fuzzed files read");
        Assert.True(rejected + xmlRejected > 100, $"only {rejected + xmlRejected} fuzzed files were rejected");
    }

    private static async Task<(int Read, int Rejected)> FuzzAsync(byte[][] valid, TabularFormat format, int runs, int seed)
    {
        var random = new Random(seed);
        var read = 0;
        var rejected = 0;
        for (var run = 0; run < runs; run++)
        {
            var input = run < valid.Length ? valid[run] : Mutate(valid[random.Next(valid.Length)], random);
            if (await ReadsOrRejectsAsync(input, format))
            {
                read++;
            }
            else
            {
                rejected++;
            }
        }

        return (read, rejected);
    }

    private static async Task<bool> ReadsOrRejectsAsync(byte[] input, TabularFormat format)
    {
        try
        {
            var rows = await ReadAsync(input, format, Limits);
            Assert.All(rows, row => Assert.InRange(row.Values.Count, 0, Limits.MaxColumns));
            return true;
        }
        catch (TabularFileException error)
        {
            Assert.Matches(@"^(row \d+|header|The )", error.Message);
            return false;
        }
        catch (Exception error)
        {
            Assert.Fail($"{format} input {Convert.ToBase64String(input)} threw {error}");
            throw;
        }
    }

    private static byte[] Mutate(byte[] valid, Random random)
    {
        var bytes = new List<byte>(valid);
        var mutations = random.Next(1, 4);
        for (var i = 0; i < mutations && bytes.Count > 0; i++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes.Insert(at, Interesting[random.Next(Interesting.Length)]);
                    break;
                case 2:
                    bytes.RemoveRange(at, Math.Min(random.Next(1, 8), bytes.Count - at));
                    break;
                case 3:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 4:
                    var from = random.Next(bytes.Count);
                    bytes.InsertRange(at, bytes.GetRange(from, Math.Min(random.Next(1, 40), bytes.Count - from)));
                    break;
                default:
                    bytes[at] = (byte)random.Next(256);
                    break;
            }
        }

        return [.. bytes];
    }

    private static byte[] SheetPackage(byte[] sheet)
    {
        var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string name, ReadOnlySpan<byte> content)
            {
                using var entry = zip.CreateEntry(name).Open();
                entry.Write(content);
            }

            Add("xl/workbook.xml", """<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rS"/></sheets></workbook>"""u8);
            Add("xl/_rels/workbook.xml.rels", """<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rT" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/><Relationship Id="rY" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"""u8);
            Add("xl/sharedStrings.xml", """<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>b</t></si></sst>"""u8);
            Add("xl/styles.xml", """<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><cellXfs><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>"""u8);
            Add("xl/worksheets/sheet1.xml", sheet);
        }

        return stream.ToArray();
    }
}
