using System.Runtime.CompilerServices;

namespace Platform.Functions.Jobs.Files;

/// <summary>
/// Reads an uploaded file row by row, never holding the whole file. Anything wrong with the file throws
/// <see cref="TabularFileException"/> (only the stream's own <see cref="IOException"/> and cancellation pass as they
/// are). A file error can surface after rows were already yielded (a broken quote near the end of a CSV): a caller
/// that must not apply half a file validates it in a first pass.
/// <para>CSV: RFC 4180 via Sep, optional UTF-8 BOM, ',' or ';' (from the header line), strict UTF-8. A data row with
/// more non-empty cells than the header is a file error naming the row; fewer cells leave the rest null; blank rows
/// are skipped. JSON: an array of objects or NDJSON; nested objects flattened with dots up to three levels, arrays as
/// their JSON text. Xlsx: the first worksheet; see <see cref="XlsxTabularReader"/> (needs random access: other
/// streams are copied to a temporary file first).</para>
/// </summary>
public static class TabularReader
{
    public static IAsyncEnumerable<TabularRow> ReadAsync(Stream stream, TabularFormat format, TabularLimits limits, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(limits);
        var rows = format switch
        {
            TabularFormat.Csv => CsvTabularReader.ReadAsync(stream, limits, ct),
            TabularFormat.Json => JsonTabularReader.ReadAsync(stream, limits, ct),
            TabularFormat.Xlsx => XlsxTabularReader.ReadAsync(stream, limits, ct),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
        };
        return Limited(rows, limits.MaxRows, ct);
    }

    private static async IAsyncEnumerable<TabularRow> Limited(
        IAsyncEnumerable<TabularRow> rows, long maxRows, [EnumeratorCancellation] CancellationToken ct)
    {
        long count = 0;
        await foreach (var row in rows.WithCancellation(ct).ConfigureAwait(false))
        {
            // Rows already decoded in a buffer come without any I/O that would notice the token.
            ct.ThrowIfCancellationRequested();
            if (++count > maxRows)
            {
                throw new TabularFileException($"row {row.Number}: the file has more than {maxRows} rows.");
            }

            yield return row;
        }
    }
}
