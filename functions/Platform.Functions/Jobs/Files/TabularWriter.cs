using System.Buffers;
using System.Globalization;
using System.IO.Compression;
using System.Security;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using DocumentFormat.OpenXml;
using DocumentFormat.OpenXml.Spreadsheet;

namespace Platform.Functions.Jobs.Files;

/// <summary>
/// Streams rows out to <c>output</c> (a blob's write stream, which cannot seek) without holding them: each format is
/// produced into a small buffer that is written to <c>output</c> asynchronously whenever it passes 64 KB, so memory is
/// one row plus that buffer whatever the row count, and <c>output</c> only ever sees asynchronous writes.
/// <para>CSV: RFC 4180, UTF-8 with a BOM (Excel reads UTF-8 CSV as the local code page without one), header row
/// first, CRLF line ends, cells quoted when they hold ',', ';', '"', CR or LF. JSON: NDJSON, one object per line with
/// the columns as keys and string or null values. Xlsx: one sheet, header in row 1, every cell an inline string, the
/// sheet written with <see cref="OpenXmlWriter"/> straight into a zip entry (the zip is written front to back, so no
/// seeking and no temporary file); characters XML cannot carry, and CR, are written as Excel's _xHHHH_ escapes.</para>
/// <para>Spreadsheet formula injection: in CSV and xlsx a cell that starts with '=', '+', '-', '@', tab or CR is
/// written with a leading apostrophe (so "=1+2" is written as "'=1+2"), except a plain number such as "-5" or "+3.5",
/// which no spreadsheet runs. JSON is written as is. An empty string and null are both written as an empty cell
/// (null in JSON).</para>
/// <para><see cref="DisposeAsync"/> finishes the file (the xlsx central directory) and flushes <c>output</c>, but does
/// not dispose it: the caller owns the stream (a blob upload commits when the caller disposes it).</para>
/// </summary>
public sealed class TabularWriter : IAsyncDisposable
{
    private const int FlushThreshold = 64 * 1024;
    private static readonly byte[] Utf8Bom = [0xEF, 0xBB, 0xBF];
    private static readonly SearchValues<char> CsvQuoteTriggers = SearchValues.Create(",;\"\r\n");
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.Create(UnicodeRanges.All) };

    private readonly Stream _output;
    private readonly TabularFormat _format;
    private readonly IReadOnlyList<string> _columns;
    private readonly ArrayBufferWriter<byte> _pending = new(FlushThreshold * 2);
    private readonly StringBuilder _line = new();

    private Utf8JsonWriter? _json;
    private ZipArchive? _zip;
    private Stream? _sheetStream;
    private OpenXmlWriter? _sheet;
    private string[]? _columnLetters;
    private bool _disposed;

    private TabularWriter(Stream output, TabularFormat format, IReadOnlyList<string> columns)
    {
        _output = output;
        _format = format;
        _columns = columns;
    }

    public long RowsWritten { get; private set; }

    public static TabularWriter Create(Stream output, TabularFormat format, IReadOnlyList<string> columns, string sheetName = "Sheet1")
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(columns);
        var writer = new TabularWriter(output, format, columns);
        switch (format)
        {
            case TabularFormat.Csv:
                writer._pending.Write(Utf8Bom);
                writer.AppendCsvLine(columns);
                break;
            case TabularFormat.Json:
                writer._json = new Utf8JsonWriter(writer._pending, JsonOptions);
                break;
            case TabularFormat.Xlsx:
                writer.StartXlsx(sheetName);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }

        return writer;
    }

    public async ValueTask WriteRowAsync(IReadOnlyList<string?> values, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count != _columns.Count)
        {
            throw new ArgumentException($"{values.Count} values for {_columns.Count} columns.", nameof(values));
        }

        switch (_format)
        {
            case TabularFormat.Csv:
                AppendCsvLine(values);
                break;
            case TabularFormat.Json:
                WriteJsonLine(values);
                break;
            default:
                WriteXlsxRow(RowsWritten + 2, values);
                break;
        }

        RowsWritten++;
        if (_pending.WrittenCount >= FlushThreshold)
        {
            await FlushPendingAsync(ct).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_sheet is not null)
        {
            _sheet.WriteEndElement(); // sheetData
            _sheet.WriteEndElement(); // worksheet
            _sheet.Close();
            _sheet.Dispose();
            _sheetStream!.Dispose();
            _zip!.Dispose(); // writes the central directory
        }

        if (_json is not null)
        {
            await _json.DisposeAsync().ConfigureAwait(false);
        }

        await FlushPendingAsync(CancellationToken.None).ConfigureAwait(false);
        await _output.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>The text a spreadsheet will not run as a formula.</summary>
    internal static string Neutralise(string value) =>
        value.Length > 0 && value[0] is '=' or '+' or '-' or '@' or '\t' or '\r' && !IsPlainNumber(value) ? "'" + value : value;

    private static bool IsPlainNumber(string value)
    {
        var digits = 0;
        var dots = 0;
        for (var i = value[0] is '+' or '-' ? 1 : 0; i < value.Length; i++)
        {
            if (char.IsAsciiDigit(value[i]))
            {
                digits++;
            }
            else if (value[i] == '.' && dots++ == 0)
            {
                continue;
            }
            else
            {
                return false;
            }
        }

        return digits > 0;
    }

    private async ValueTask FlushPendingAsync(CancellationToken ct)
    {
        if (_pending.WrittenCount > 0)
        {
            await _output.WriteAsync(_pending.WrittenMemory, ct).ConfigureAwait(false);
            _pending.ResetWrittenCount();
        }
    }

    private void AppendCsvLine(IReadOnlyList<string?> values)
    {
        _line.Clear();
        for (var i = 0; i < values.Count; i++)
        {
            if (i > 0)
            {
                _line.Append(',');
            }

            var value = values[i];
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }

            value = Neutralise(value);
            if (value.AsSpan().ContainsAny(CsvQuoteTriggers))
            {
                _line.Append('"').Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
            }
            else
            {
                _line.Append(value);
            }
        }

        _line.Append("\r\n");
        foreach (var chunk in _line.GetChunks())
        {
            var span = chunk.Span;
            var bytes = _pending.GetSpan(Encoding.UTF8.GetMaxByteCount(span.Length));
            _pending.Advance(Encoding.UTF8.GetBytes(span, bytes));
        }
    }

    private void WriteJsonLine(IReadOnlyList<string?> values)
    {
        var json = _json!;
        json.Reset(_pending);
        json.WriteStartObject();
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] is { } value)
            {
                json.WriteString(_columns[i], WellFormed(value));
            }
            else
            {
                json.WriteNull(_columns[i]);
            }
        }

        json.WriteEndObject();
        json.Flush();
        _pending.Write("\n"u8);
    }

    private void StartXlsx(string sheetName)
    {
        _zip = new ZipArchive(new PendingStream(_pending), ZipArchiveMode.Create, leaveOpen: true);
        AddPart("[Content_Types].xml", """
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>
            """);
        AddPart("_rels/.rels", """
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>
            """);
        AddPart("xl/workbook.xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{SecurityElement.Escape(SheetName(sheetName))}" sheetId="1" r:id="rId1"/></sheets></workbook>
            """);
        AddPart("xl/_rels/workbook.xml.rels", """
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>
            """);
        AddPart("xl/styles.xml", """
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>
            """);

        _columnLetters = [.. Enumerable.Range(0, _columns.Count).Select(XlsxSheet.ColumnName)];
        _sheetStream = _zip.CreateEntry("xl/worksheets/sheet1.xml", CompressionLevel.Fastest).Open();
        _sheet = OpenXmlWriter.Create(_sheetStream);
        _sheet.WriteStartDocument();
        _sheet.WriteStartElement(new Worksheet());
        _sheet.WriteStartElement(new SheetData());
        WriteXlsxRow(1, _columns);
    }

    private void AddPart(string name, string xml)
    {
        using var stream = _zip!.CreateEntry(name, CompressionLevel.Fastest).Open();
        stream.Write(Encoding.UTF8.GetBytes(xml));
    }

    private static readonly Row RowElement = new();
    private static readonly Cell CellElement = new();
    private static readonly InlineString InlineElement = new();
    private static readonly Text TextElement = new();
    private static readonly OpenXmlAttribute InlineType = new("t", "", "inlineStr");
    private static readonly OpenXmlAttribute PreserveSpace = new("xml", "space", "http://www.w3.org/XML/1998/namespace", "preserve");

    private void WriteXlsxRow(long number, IReadOnlyList<string?> values)
    {
        var sheet = _sheet!;
        var row = number.ToString(CultureInfo.InvariantCulture);
        sheet.WriteStartElement(RowElement, [new OpenXmlAttribute("r", "", row)]);
        for (var i = 0; i < values.Count; i++)
        {
            if (string.IsNullOrEmpty(values[i]))
            {
                continue;
            }

            sheet.WriteStartElement(CellElement, [new OpenXmlAttribute("r", "", _columnLetters![i] + row), InlineType]);
            sheet.WriteStartElement(InlineElement);
            sheet.WriteStartElement(TextElement, [PreserveSpace]);
            sheet.WriteString(XmlEscapes(Neutralise(values[i]!)));
            sheet.WriteEndElement();
            sheet.WriteEndElement();
            sheet.WriteEndElement();
        }

        sheet.WriteEndElement();
    }

    /// <summary>Excel's sheet name rules: at most 31 characters, none of []:*?/\, not empty.</summary>
    private static string SheetName(string name)
    {
        var cleaned = new string([.. name.Where(c => c is not ('[' or ']' or ':' or '*' or '?' or '/' or '\\') && !char.IsControl(c))]).Trim('\'', ' ');
        cleaned = cleaned.Length > 31 ? cleaned[..31] : cleaned;
        return cleaned.Length == 0 ? "Sheet1" : cleaned;
    }

    /// <summary>Text as an xlsx cell carries it: characters XML 1.0 forbids, CR (which XML readers turn into LF) and
    /// a literal "_x" that would read as an escape become _xHHHH_, the escape Excel itself uses.</summary>
    internal static string XmlEscapes(string text)
    {
        text = WellFormed(text);
        var needs = false;
        foreach (var c in text)
        {
            if ((c < ' ' && c is not ('\t' or '\n')) || c is '\uFFFE' or '\uFFFF' || c == '_')
            {
                needs = true;
                break;
            }
        }

        if (!needs)
        {
            return text;
        }

        var builder = new StringBuilder(text.Length + 16);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if ((c < ' ' && c is not ('\t' or '\n')) || c is '\uFFFE' or '\uFFFF')
            {
                builder.Append(CultureInfo.InvariantCulture, $"_x{(int)c:X4}_");
            }
            else if (c == '_' && i + 6 < text.Length && text[i + 1] == 'x' && text[i + 6] == '_'
                && ushort.TryParse(text.AsSpan(i + 2, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _))
            {
                builder.Append("_x005F_");
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

    /// <summary>Lone UTF-16 surrogates cannot be encoded; they become U+FFFD.</summary>
    private static string WellFormed(string text)
    {
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            return text;
        }

        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(chars[i]))
            {
                chars[i] = '\uFFFD';
            }
        }

        return new string(chars);
    }

    /// <summary>The zip's output: appends to the pending buffer that <see cref="FlushPendingAsync"/> drains.</summary>
    private sealed class PendingStream(ArrayBufferWriter<byte> pending) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => pending.Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer) => pending.Write(buffer);

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
