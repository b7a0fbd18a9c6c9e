namespace Platform.Functions.Jobs.Files;

internal static class TabularHeader
{
    /// <summary>Column names: trimmed, non-empty, unique regardless of case, at most <see cref="TabularLimits.MaxColumns"/>.
    /// Empty cells after the last name are not columns (spreadsheets leave them behind).</summary>
    public static string[] Validate(IReadOnlyList<string?> cells, TabularLimits limits, Func<int, string> label)
    {
        var count = cells.Count;
        while (count > 0 && string.IsNullOrWhiteSpace(cells[count - 1]))
        {
            count--;
        }

        if (count == 0)
        {
            throw new TabularFileException("header: the header row has no column names.");
        }

        if (count > limits.MaxColumns)
        {
            throw new TabularFileException($"header: more than {limits.MaxColumns} columns.");
        }

        var names = new string[count];
        var seen = new HashSet<string>(count, StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < count; i++)
        {
            var name = cells[i]?.Trim();
            if (string.IsNullOrEmpty(name))
            {
                throw new TabularFileException($"header: {label(i)} has no name.");
            }

            if (!seen.Add(name))
            {
                throw new TabularFileException($"header: column '{name}' appears twice.");
            }

            names[i] = name;
        }

        return names;
    }
}
