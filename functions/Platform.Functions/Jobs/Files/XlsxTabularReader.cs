using System.Globalization;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Text;
using System.Xml;

namespace Platform.Functions.Jobs.Files;

/// <summary>
/// The first worksheet of an xlsx (in workbook order), header row = its first non-empty row. Cells: shared strings,
/// inline strings, formula results, numbers (up to 15 significant digits, as Excel shows them), booleans
/// ("true"/"false"), error values ("#N/A") and dates (a number cell whose format is a date or time becomes ISO 8601:
/// "2026-03-01", "2026-03-01T14:30:00", or "14:30:00" for a time of day).
/// <para>The zip needs random access: a stream that is not a local file or memory is first copied to a temporary
/// file opened with <see cref="FileOptions.DeleteOnClose"/>, up to <see cref="TabularLimits.MaxXlsxFileBytes"/>.</para>
/// </summary>
internal static class XlsxTabularReader
{
    public static async IAsyncEnumerable<TabularRow> ReadAsync(
        Stream stream, TabularLimits limits, [EnumeratorCancellation] CancellationToken ct)
    {
        FileStream? copy = null;
        try
        {
            var source = stream;
            if (!stream.CanSeek || stream is not (FileStream or MemoryStream or UnmanagedMemoryStream))
            {
                copy = await CopyToTempFileAsync(stream, limits.MaxXlsxFileBytes, ct).ConfigureAwait(false);
                source = copy;
            }

            using var sheet = Guard(() => XlsxSheet.Open(source, limits));
            var cells = new List<(int Column, string? Value)>();
            string[]? header = null;
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var number = Guard(() => sheet.ReadRow(cells));
                if (number < 0)
                {
                    if (header is null)
                    {
                        throw new TabularFileException("The sheet is empty: it has no header row.");
                    }

                    yield break;
                }

                if (!cells.Exists(cell => !string.IsNullOrWhiteSpace(cell.Value)))
                {
                    continue;
                }

                if (header is null)
                {
                    header = Header(cells, limits);
                    continue;
                }

                yield return Row(number, header, cells, limits);
            }
        }
        finally
        {
            if (copy is not null)
            {
                await copy.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static string[] Header(List<(int Column, string? Value)> cells, TabularLimits limits)
    {
        var last = cells.FindLast(cell => !string.IsNullOrWhiteSpace(cell.Value)).Column;
        if (last >= limits.MaxColumns)
        {
            throw new TabularFileException($"header: more than {limits.MaxColumns} columns.");
        }

        var names = new string?[last + 1];
        foreach (var (column, value) in cells)
        {
            if (column <= last)
            {
                names[column] = value;
            }
        }

        return TabularHeader.Validate(names, limits, i => $"column {XlsxSheet.ColumnName(i)}");
    }

    private static TabularRow Row(long number, string[] header, List<(int Column, string? Value)> cells, TabularLimits limits)
    {
        var values = new Dictionary<string, string?>(header.Length, StringComparer.OrdinalIgnoreCase);
        foreach (var name in header)
        {
            values[name] = null;
        }

        foreach (var (column, value) in cells)
        {
            if (value is null)
            {
                continue;
            }

            var reference = $"{XlsxSheet.ColumnName(column)}{number}";
            if (column >= header.Length)
            {
                if (string.IsNullOrWhiteSpace(value))
                {
                    continue;
                }

                throw new TabularFileException($"row {number}: cell {reference} has a value but its column has no header.");
            }

            if (value.Length > limits.MaxCellChars)
            {
                throw new TabularFileException($"row {number}: cell {reference} is longer than {limits.MaxCellChars} characters.");
            }

            values[header[column]] = value;
        }

        return new TabularRow(number, values);
    }

    private static async Task<FileStream> CopyToTempFileAsync(Stream stream, long maxBytes, CancellationToken ct)
    {
        var path = Path.Combine(Path.GetTempPath(), $"platform-import-{Guid.NewGuid():N}.xlsx");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81_920,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        try
        {
            var buffer = new byte[81_920];
            long total = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                total += read;
                if (total > maxBytes)
                {
                    throw new TabularFileException($"The xlsx file is larger than {TabularLimits.Describe(maxBytes)}.");
                }

                await file.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
            }

            await file.FlushAsync(ct).ConfigureAwait(false);
            file.Position = 0;
            return file;
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>What a damaged zip or XML throws, as the file error it is. The source is a local file or memory, so
    /// an I/O error here comes from the content (an offset past the end), not from a failing disk or network.</summary>
    private static T Guard<T>(Func<T> read)
    {
        try
        {
            return read();
        }
        catch (XmlException error)
        {
            throw new TabularFileException($"The xlsx file is damaged: a part is not valid XML ({error.Message}).");
        }
        catch (Exception error) when (error is InvalidDataException or IOException or NotSupportedException or ArgumentException or OverflowException)
        {
            throw new TabularFileException($"The xlsx file is damaged ({error.Message}).");
        }
    }
}

/// <summary>The rows of the first worksheet, one at a time, with the shared strings and date formats they refer to.</summary>
internal sealed class XlsxSheet : IDisposable
{
    private const int MaxCellFormats = 100_000;
    private const string RelationshipsNamespace = "relationships";

    private readonly XlsxPackage? _package;
    private readonly XmlReader _xml;
    private readonly List<string> _shared;
    private readonly bool[] _dateFormats;
    private readonly bool _date1904;
    private readonly TabularLimits _limits;
    private readonly StringBuilder _text = new();
    private readonly char[] _chunk = new char[4096];
    private long _lastRow;

    private XlsxSheet(XlsxPackage? package, XmlReader xml, List<string> shared, bool[] dateFormats, bool date1904, TabularLimits limits)
    {
        _package = package;
        _xml = xml;
        _shared = shared;
        _dateFormats = dateFormats;
        _date1904 = date1904;
        _limits = limits;
    }

    public static XlsxSheet Open(Stream seekable, TabularLimits limits)
    {
        XlsxPackage package;
        try
        {
            package = XlsxPackage.Open(seekable, limits);
        }
        catch (InvalidDataException)
        {
            throw new TabularFileException("The file is not an xlsx workbook (it is not a zip archive).");
        }

        try
        {
            var workbook = package.Relationships("").Values
                .FirstOrDefault(r => r.Type.EndsWith("/officeDocument", StringComparison.Ordinal)).Path;
            if (workbook is null || !package.Exists(workbook))
            {
                workbook = "xl/workbook.xml";
            }

            using var workbookXml = package.OpenXml(workbook)
                ?? throw new TabularFileException("The file is not an xlsx workbook: it holds no workbook.");
            var relationships = package.Relationships(workbook);
            var (sheetIds, date1904) = ReadWorkbook(workbookXml);
            var sheetPath = sheetIds
                .Select(id => relationships.TryGetValue(id, out var r) ? r : default)
                .FirstOrDefault(r => r.Type is not null && r.Type.EndsWith("/worksheet", StringComparison.Ordinal)).Path;
            if (sheetPath is null || !package.Exists(sheetPath))
            {
                throw new TabularFileException("The xlsx workbook has no worksheet.");
            }

            var shared = new List<string>();
            var sharedPath = relationships.Values.FirstOrDefault(r => r.Type.EndsWith("/sharedStrings", StringComparison.Ordinal)).Path;
            if (sharedPath is not null)
            {
                using var sharedXml = package.OpenXml(sharedPath);
                if (sharedXml is not null)
                {
                    shared = ReadSharedStrings(sharedXml, limits);
                }
            }

            var dateFormats = Array.Empty<bool>();
            var stylesPath = relationships.Values.FirstOrDefault(r => r.Type.EndsWith("/styles", StringComparison.Ordinal)).Path;
            if (stylesPath is not null)
            {
                using var stylesXml = package.OpenXml(stylesPath);
                if (stylesXml is not null)
                {
                    dateFormats = ReadDateFormats(stylesXml);
                }
            }

            return new XlsxSheet(package, package.OpenXml(sheetPath)!, shared, dateFormats, date1904, limits);
        }
        catch
        {
            package.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _xml.Dispose();
        _package?.Dispose();
    }

    /// <summary>Reads the next row's cells (in column order); returns its row number, or -1 at the end.</summary>
    public long ReadRow(List<(int Column, string? Value)> cells)
    {
        cells.Clear();
        while (_xml.Read())
        {
            if (_xml.NodeType != XmlNodeType.Element || _xml.LocalName != "row")
            {
                continue;
            }

            var number = _xml.GetAttribute("r") is { } r ? ParseRowNumber(r) : _lastRow + 1;
            if (number <= _lastRow)
            {
                throw new TabularFileException($"row {number}: rows are out of order in the sheet.");
            }

            _lastRow = number;
            if (_xml.IsEmptyElement)
            {
                return number;
            }

            var lastColumn = -1;
            var depth = _xml.Depth;
            while (_xml.Read() && !(_xml.NodeType == XmlNodeType.EndElement && _xml.Depth == depth))
            {
                if (_xml.NodeType == XmlNodeType.Element && _xml.LocalName == "c")
                {
                    var column = _xml.GetAttribute("r") is { } reference ? ParseColumn(reference, number) : lastColumn + 1;
                    if (column <= lastColumn)
                    {
                        throw new TabularFileException($"row {number}: cells are out of order.");
                    }

                    lastColumn = column;
                    cells.Add((column, ReadCell(number, column)));
                }
            }

            return number;
        }

        return -1;
    }

    public static string ColumnName(int index)
    {
        var name = "";
        for (var i = index + 1; i > 0; i = (i - 1) / 26)
        {
            name = (char)('A' + ((i - 1) % 26)) + name;
        }

        return name;
    }

    private long ParseRowNumber(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number is > 0 and <= 1_048_576
            ? number
            : throw new TabularFileException($"row {_lastRow + 1}: the row number '{Clip(text)}' is not valid.");

    private static int ParseColumn(string reference, long row)
    {
        var column = 0;
        var letters = 0;
        foreach (var c in reference)
        {
            if (c is >= 'A' and <= 'Z')
            {
                column = (column * 26) + (c - 'A' + 1);
                letters++;
            }
            else
            {
                break;
            }
        }

        if (letters is 0 or > 3 || column > 16_384)
        {
            throw new TabularFileException($"row {row}: the cell reference '{Clip(reference)}' is not valid.");
        }

        return column - 1;
    }

    private string? ReadCell(long row, int column)
    {
        var type = _xml.GetAttribute("t");
        var style = _xml.GetAttribute("s");
        if (_xml.IsEmptyElement)
        {
            return null;
        }

        string? value = null;
        string? inline = null;
        var depth = _xml.Depth;
        var advance = true;
        while (NextInside(depth, ref advance))
        {
            if (_xml.NodeType != XmlNodeType.Element)
            {
                continue;
            }

            switch (_xml.LocalName)
            {
                case "v":
                    value = ReadText(_limits.MaxCellChars, row, column);
                    break;
                case "is":
                    inline = ReadRichText(_limits.MaxCellChars, row, column);
                    break;
                default:
                    // A formula, or anything else: Skip lands on the next node, which must not be read past.
                    _xml.Skip();
                    advance = false;
                    break;
            }
        }

        return Convert(type, style, value, inline, row, column);
    }

    private string? Convert(string? type, string? style, string? value, string? inline, long row, int column)
    {
        var text = type switch
        {
            "s" => Shared(value, row, column),
            "inlineStr" => inline is null ? null : DecodeEscapes(inline),
            "str" => value is null ? null : DecodeEscapes(value),
            "b" => value switch { "1" => "true", "0" => "false", _ => value },
            "e" or "d" => value,
            _ => Number(value, style),
        };
        return string.IsNullOrEmpty(text) ? null : text;
    }

    private string? Shared(string? value, long row, int column)
    {
        if (value is null)
        {
            return null;
        }

        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index >= _shared.Count)
        {
            throw new TabularFileException(
                $"row {row}: cell {ColumnName(column)}{row} refers to shared string '{Clip(value)}', which the file does not have.");
        }

        return _shared[index];
    }

    private string? Number(string? value, string? style)
    {
        if (value is null || !double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || !double.IsFinite(number))
        {
            return value;
        }

        if (style is not null && int.TryParse(style, NumberStyles.None, CultureInfo.InvariantCulture, out var xf)
            && xf < _dateFormats.Length && _dateFormats[xf])
        {
            var serial = _date1904 ? number + 1462 : number;
            if (serial is >= 0 and < 2_958_466)
            {
                var date = DateTime.FromOADate(serial);
                return serial < 1 && !_date1904
                    ? date.ToString(date.Millisecond == 0 ? "HH:mm:ss" : "HH:mm:ss.fff", CultureInfo.InvariantCulture)
                    : date.TimeOfDay == TimeSpan.Zero
                        ? date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)
                        : date.ToString(date.Millisecond == 0 ? "yyyy-MM-ddTHH:mm:ss" : "yyyy-MM-ddTHH:mm:ss.fff", CultureInfo.InvariantCulture);
            }
        }

        // Excel keeps 15 significant digits; 0.1+0.2 is shown (and meant) as 0.3.
        return number == Math.Floor(number) && Math.Abs(number) < 1e15
            ? number.ToString("0", CultureInfo.InvariantCulture)
            : number.ToString("G15", CultureInfo.InvariantCulture);
    }

    /// <summary>The text content of the current element, read in chunks so an oversized text is rejected without
    /// ever being held whole.</summary>
    private string ReadText(long limit, long row, int column)
    {
        _text.Clear();
        AppendText(limit, row, column);
        return _text.ToString();
    }

    private void AppendText(long limit, long row, int column)
    {
        if (_xml.IsEmptyElement)
        {
            return;
        }

        var depth = _xml.Depth;
        var advance = true;
        while (NextInside(depth, ref advance))
        {
            switch (_xml.NodeType)
            {
                case XmlNodeType.Text or XmlNodeType.CDATA or XmlNodeType.Whitespace or XmlNodeType.SignificantWhitespace:
                    int read;
                    while ((read = _xml.ReadValueChunk(_chunk, 0, _chunk.Length)) > 0)
                    {
                        _text.Append(_chunk, 0, read);
                        if (_text.Length > limit)
                        {
                            throw TooLong(row, column);
                        }
                    }

                    break;
                case XmlNodeType.Element:
                    _xml.Skip();
                    advance = false;
                    break;
            }
        }
    }

    /// <summary>Rich text (&lt;is&gt; or &lt;si&gt;): the &lt;t&gt; texts of its runs, without phonetic hints.</summary>
    private string ReadRichText(long limit, long row, int column)
    {
        _text.Clear();
        if (_xml.IsEmptyElement)
        {
            return "";
        }

        var depth = _xml.Depth;
        var advance = true;
        while (NextInside(depth, ref advance))
        {
            if (_xml.NodeType != XmlNodeType.Element)
            {
                continue;
            }

            if (_xml.LocalName == "t")
            {
                AppendText(limit, row, column);
            }
            else if (_xml.LocalName == "rPh")
            {
                _xml.Skip();
                advance = false;
            }
        }

        return _text.ToString();
    }

    /// <summary>Moves to the next node inside the element at <paramref name="depth"/>; false at its end. After a
    /// Skip the reader already stands on the next node, so <paramref name="advance"/> says whether to read.</summary>
    private bool NextInside(int depth, ref bool advance)
    {
        if (advance && !_xml.Read())
        {
            return false;
        }

        advance = true;
        return !(_xml.NodeType == XmlNodeType.EndElement && _xml.Depth == depth) && !_xml.EOF;
    }

    private TabularFileException TooLong(long row, int column) => row == 0
        ? new("The xlsx shared string table is larger than allowed.")
        : new($"row {row}: cell {ColumnName(column)}{row} is longer than {_limits.MaxCellChars} characters.");

    private static (List<string> SheetIds, bool Date1904) ReadWorkbook(XmlReader xml)
    {
        var ids = new List<string>();
        var date1904 = false;
        while (xml.Read())
        {
            if (xml.NodeType != XmlNodeType.Element)
            {
                continue;
            }

            if (xml.LocalName == "workbookPr")
            {
                date1904 = xml.GetAttribute("date1904") is "1" or "true";
            }
            else if (xml.LocalName == "sheet" && ids.Count < 1000)
            {
                for (var i = 0; i < xml.AttributeCount; i++)
                {
                    xml.MoveToAttribute(i);
                    if (xml.LocalName == "id" && xml.NamespaceURI.Contains(RelationshipsNamespace, StringComparison.Ordinal))
                    {
                        ids.Add(xml.Value);
                    }
                }

                xml.MoveToElement();
            }
        }

        return (ids, date1904);
    }

    private static List<string> ReadSharedStrings(XmlReader xml, TabularLimits limits)
    {
        // A reader over the shared strings part instead of a sheet, for its chunked text reading; row 0 marks
        // "not a cell" in its messages.
        var reader = new XlsxSheet(package: null, xml, [], [], false, limits);
        var strings = new List<string>();
        long chars = 0;
        while (xml.Read())
        {
            if (xml.NodeType != XmlNodeType.Element || xml.LocalName != "si")
            {
                continue;
            }

            if (strings.Count >= limits.MaxSharedStrings)
            {
                throw new TabularFileException($"The xlsx shared string table holds more than {limits.MaxSharedStrings} strings.");
            }

            var text = DecodeEscapes(reader.ReadRichText(limits.MaxSharedStringChars - chars, 0, 0));
            chars += text.Length;
            strings.Add(text);
        }

        return strings;
    }

    private static bool[] ReadDateFormats(XmlReader xml)
    {
        var custom = new Dictionary<int, bool>();
        var formats = new List<bool>();
        var inCellXfs = false;
        while (xml.Read())
        {
            if (xml.NodeType == XmlNodeType.EndElement && xml.LocalName == "cellXfs")
            {
                inCellXfs = false;
                continue;
            }

            if (xml.NodeType != XmlNodeType.Element)
            {
                continue;
            }

            switch (xml.LocalName)
            {
                case "numFmt" when int.TryParse(xml.GetAttribute("numFmtId"), CultureInfo.InvariantCulture, out var id) && custom.Count < MaxCellFormats:
                    custom[id] = IsDateFormat(xml.GetAttribute("formatCode") ?? "");
                    break;
                case "cellXfs":
                    inCellXfs = !xml.IsEmptyElement;
                    break;
                case "xf" when inCellXfs:
                    if (formats.Count >= MaxCellFormats)
                    {
                        throw new TabularFileException("The xlsx styles hold more cell formats than Excel allows.");
                    }

                    var numFmt = int.TryParse(xml.GetAttribute("numFmtId"), CultureInfo.InvariantCulture, out var n) ? n : 0;
                    formats.Add(custom.TryGetValue(numFmt, out var isDate) ? isDate : IsBuiltInDate(numFmt));
                    break;
            }
        }

        return [.. formats];
    }

    // Excel's built-in date and time formats (14-22, 45-47) and the East Asian ones (27-36, 50-58).
    private static bool IsBuiltInDate(int id) => id is (>= 14 and <= 22) or (>= 27 and <= 36) or (>= 45 and <= 47) or (>= 50 and <= 58);

    /// <summary>A format is a date or time when, outside quoted text, escapes and [colour]/[$currency] brackets, it
    /// uses a date or time code (y, m, d, h, s).</summary>
    internal static bool IsDateFormat(string code)
    {
        var inQuotes = false;
        var inBrackets = false;
        for (var i = 0; i < code.Length; i++)
        {
            var c = code[i];
            if (inQuotes)
            {
                inQuotes = c != '"';
            }
            else if (inBrackets)
            {
                // [h], [mm], [ss]: elapsed time.
                if (c is 'h' or 'H' or 'm' or 'M' or 's' or 'S' && i > 0 && code[i - 1] == '[' && i + 1 < code.Length && (code[i + 1] == ']' || code[i + 1] == c))
                {
                    return true;
                }

                inBrackets = c != ']';
            }
            else if (c == '"')
            {
                inQuotes = true;
            }
            else if (c == '[')
            {
                inBrackets = true;
            }
            else if (c is '\\' or '_' or '*')
            {
                i++;
            }
            else if (c is 'y' or 'Y' or 'm' or 'M' or 'd' or 'D' or 'h' or 'H' or 's' or 'S')
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Excel writes characters XML cannot carry (and carriage returns) as _xHHHH_.</summary>
    internal static string DecodeEscapes(string text)
    {
        if (!text.Contains("_x", StringComparison.Ordinal))
        {
            return text;
        }

        var builder = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '_' && i + 6 < text.Length && text[i + 1] == 'x' && text[i + 6] == '_'
                && ushort.TryParse(text.AsSpan(i + 2, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
            {
                builder.Append((char)code);
                i += 6;
            }
            else
            {
                builder.Append(text[i]);
            }
        }

        return builder.ToString();
    }

    private static string Clip(string text) => text.Length > 20 ? text[..20] + "..." : text;
}
