namespace Platform.Functions.Jobs.Files;

/// <summary>
/// One row of an uploaded file. <see cref="Number"/> is what a user finds in the file: CSV and xlsx count the header
/// as row 1 (the first data row is 2); a JSON array counts elements from 1; NDJSON counts lines from 1.
/// <see cref="Values"/> maps header names (case-insensitively) to cell text, null for an empty or missing cell.
/// </summary>
public sealed record TabularRow(long Number, IReadOnlyDictionary<string, string?> Values);
