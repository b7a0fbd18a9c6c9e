using System.Runtime.CompilerServices;
using System.Text;
using nietras.SeparatedValues;

namespace Platform.Functions.Jobs.Files;

/// <summary>
/// CSV as RFC 4180 with the usual spreadsheet habits: optional UTF-8 BOM, ',' or ';' (whichever the header line uses
/// more), CRLF, LF or CR line ends, quoted cells with embedded separators, line breaks and "" escapes. Sep splits rows
/// and cells; <see cref="CsvTextSource"/> decodes and bounds what Sep gets to see.
/// </summary>
internal static class CsvTabularReader
{
    public static async IAsyncEnumerable<TabularRow> ReadAsync(
        Stream stream, TabularLimits limits, [EnumeratorCancellation] CancellationToken ct)
    {
        using var source = new CsvTextSource(stream, limits);
        await source.DetectSeparatorAsync(ct).ConfigureAwait(false);

        // No header handling, column count check or unescaping by Sep: header rules, ragged rows and broken quoting
        // get messages of ours that name the row.
        using var reader = await Sep.New(source.Separator)
            .Reader(o => o with { HasHeader = false, DisableColCountCheck = true, CultureInfo = null })
            .FromAsync(source, ct).ConfigureAwait(false);

        string[]? header = null;
        var cells = new List<string?>();
        while (await reader.MoveNextAsync(ct).ConfigureAwait(false))
        {
            var number = ReadCells(reader, source, cells);
            if (header is null)
            {
                header = TabularHeader.Validate(cells, limits, i => $"column {i + 1}");
                continue;
            }

            var row = ToRow(number, header, cells);
            if (row is not null)
            {
                yield return row;
            }
        }
    }

    private static long ReadCells(SepReader reader, CsvTextSource source, List<string?> cells)
    {
        var row = reader.Current;
        var number = row.RowIndex + 1 + source.LeadingBlankLines;
        cells.Clear();
        for (var i = 0; i < row.ColCount; i++)
        {
            cells.Add(Unquote(row[i].Span, number, i, source.MaxCellChars));
        }

        return number;
    }

    private static TabularRow? ToRow(long number, string[] header, List<string?> cells)
    {
        var last = cells.FindLastIndex(cell => !string.IsNullOrWhiteSpace(cell));
        if (last < 0)
        {
            // A blank line, or one of only separators (what spreadsheets write for an empty row).
            return null;
        }

        if (last >= header.Length)
        {
            throw new TabularFileException(
                $"row {number} has {last + 1} cells, the header has {header.Length}.");
        }

        var values = new Dictionary<string, string?>(header.Length, StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < header.Length; i++)
        {
            values[header[i]] = i < cells.Count ? cells[i] : null;
        }

        return new TabularRow(number, values);
    }

    /// <summary>A cell's text: as is when unquoted, without its quotes and with "" as " when quoted (spaces around
    /// the quotes, as in <c>a, "b"</c>, are dropped); empty is null. A quote anywhere else breaks the file: it would
    /// silently shift every following cell.</summary>
    private static string? Unquote(ReadOnlySpan<char> raw, long number, int column, int maxCellChars)
    {
        if (raw.IsEmpty)
        {
            return null;
        }

        string text;
        var quote = raw.IndexOf('"');
        if (quote > 0 && raw[..quote].Trim(' ').IsEmpty)
        {
            raw = raw.Trim(' ');
            quote = 0;
        }

        if (quote < 0)
        {
            text = raw.ToString();
        }
        else if (quote > 0)
        {
            throw Broken(number, column, "a quote \" inside a cell that does not start with a quote; quote the whole cell and double the inner quotes");
        }
        else
        {
            var builder = new StringBuilder(raw.Length);
            var i = 1;
            var closed = false;
            while (i < raw.Length)
            {
                var next = raw[i..].IndexOf('"');
                if (next < 0)
                {
                    break;
                }

                builder.Append(raw.Slice(i, next));
                i += next;
                if (i + 1 < raw.Length && raw[i + 1] == '"')
                {
                    builder.Append('"');
                    i += 2;
                    continue;
                }

                if (i != raw.Length - 1)
                {
                    throw Broken(number, column, "text after the closing quote of a quoted cell");
                }

                closed = true;
                break;
            }

            if (!closed)
            {
                throw Broken(number, column, "a quoted cell is never closed (a closing quote \" is missing)");
            }

            text = builder.ToString();
        }

        if (text.Length > maxCellChars)
        {
            throw new TabularFileException($"{Row(number)}, column {column + 1}: a cell is longer than {maxCellChars} characters.");
        }

        return text.Length == 0 ? null : text;
    }

    private static TabularFileException Broken(long number, int column, string what) =>
        new($"{Row(number)}, column {column + 1}: broken quoting: {what}.");

    private static string Row(long number) => $"row {number}";
}
