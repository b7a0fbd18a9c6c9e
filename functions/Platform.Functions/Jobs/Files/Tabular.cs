namespace Platform.Functions.Jobs.Files;

/// <summary>The file formats of bulk import and export. <see cref="Json"/> reads a JSON array of objects or NDJSON
/// (the first non-whitespace byte '[' means an array) and writes NDJSON.</summary>
public enum TabularFormat
{
    Csv,
    Json,
    Xlsx,
}

/// <summary>What a file may hold before it is rejected as a whole. Every limit bounds memory or work: the readers
/// never hold more than one row (plus the xlsx shared string table) whatever the file.</summary>
public sealed class TabularLimits
{
    public static TabularLimits Default { get; } = new();

    public int MaxColumns { get; init; } = 200;

    public int MaxCellChars { get; init; } = 32 * 1024;

    public long MaxRows { get; init; } = 2_000_000;

    /// <summary>Zip bomb guard: the total of all entries' declared uncompressed sizes, checked before anything is
    /// inflated, and the total of the bytes actually inflated, counted while reading.</summary>
    public long MaxXlsxUncompressedBytes { get; init; } = 1L << 30;

    /// <summary>Zip bomb guard, per entry, for entries declaring more than 1 MB uncompressed.</summary>
    public int MaxXlsxCompressionRatio { get; init; } = 200;

    /// <summary>How many entries the xlsx shared string table may hold (it is kept in memory while the sheet is read).</summary>
    public int MaxSharedStrings { get; init; } = 2_000_000;

    /// <summary>How many characters the xlsx shared string table may hold in total (32 M chars = 64 MB).</summary>
    public long MaxSharedStringChars { get; init; } = 32L * 1024 * 1024;

    /// <summary>An xlsx can only be read with random access; a stream that is not a local file or memory is first
    /// copied to a temporary file (deleted on close), up to this many bytes.</summary>
    public long MaxXlsxFileBytes { get; init; } = 100L * 1024 * 1024;

    internal static string Describe(long bytes) =>
        bytes >= 1024 * 1024 ? $"{bytes / (1024 * 1024)} MB" : $"{bytes / 1024} KB";

    /// <summary>The largest JSON object (one row) held in memory at once, as bytes of the file.</summary>
    public int MaxJsonRowBytes { get; init; } = 4 * 1024 * 1024;
}

/// <summary>
/// Anything wrong with the file as a whole. The message is meant for the user who uploaded the file: it says what is
/// wrong and where ("row 12: ...", "header: column 'email' appears twice").
/// </summary>
public sealed class TabularFileException(string message) : Exception(message);

/// <summary>
/// One row of an imported file.
/// <para><see cref="Number"/> is what the user finds in the file: for CSV and xlsx the row number a spreadsheet
/// shows (the header row is 1 when it is the first line, so the first data row is 2; blank lines count, as they do
/// in a spreadsheet); for a JSON array the 1-based element index; for NDJSON the 1-based line number.</para>
/// <para><see cref="Values"/> maps column names (lookups are case-insensitive) to the cell text; an empty or missing
/// cell is always <c>null</c>, never "".</para>
/// </summary>
public sealed record TabularRow(long Number, IReadOnlyDictionary<string, string?> Values);
