using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;

namespace Platform.Functions.Inventory;

/// <summary>
/// One row of an inventory import, read as the HTTP body its route takes: cells are text, and become the JSON the
/// body would carry (numbers where they parse, else the text itself, so the command refuses them with the very
/// message the route gives). A column absent from the row means "leave as is"; an empty cell means "clear it".
/// </summary>
internal sealed class ImportRow
{
    private readonly Dictionary<string, string?> _values;

    public ImportRow(TabularRow row)
    {
        Number = row.Number;
        // Only read here: a chunk's rows already ignore case (ImportApply reads them so), and are not copied again.
        _values = row.Values is Dictionary<string, string?> values && values.Comparer == StringComparer.OrdinalIgnoreCase
            ? values
            : new Dictionary<string, string?>(row.Values, StringComparer.OrdinalIgnoreCase);
    }

    private readonly Dictionary<string, string> _resolved = new(StringComparer.OrdinalIgnoreCase);

    public long Number { get; }

    /// <summary>Puts what a cell names (a location's id for its path) in place of the cell; error reports keep the cell.</summary>
    public void Resolve(string column, string value) => _resolved[column] = value;

    /// <summary>The resolved value of a cell, else the cell trimmed (null when empty).</summary>
    public string? Resolved(string column) => _resolved.TryGetValue(column, out var value) ? value : Text(column);

    public bool Has(string column) => _values.ContainsKey(column);

    /// <summary>The cell trimmed; null when empty, blank or absent.</summary>
    public string? Text(string column) => _values.TryGetValue(column, out var value) && !string.IsNullOrWhiteSpace(value) ? value.Trim() : null;

    /// <summary>The cell as written (for error reports).</summary>
    public string? Raw(string column) => _values.GetValueOrDefault(column);

    /// <summary>The row's <c>{prefix}name</c> columns, with the name as the header spells it.</summary>
    public IEnumerable<(string Column, string Name)> Prefixed(string prefix) =>
        _values.Keys.Where(k => k.Length > prefix.Length && k.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)).Select(k => (k, k[prefix.Length..]));

    /// <summary>Copies a text cell into <paramref name="body"/>: null (clear) for an empty one when <paramref name="clearEmpty"/>, else left out.</summary>
    public void CopyText(JsonObject body, string column, bool clearEmpty, string? member = null)
    {
        if (!Has(column))
        {
            return;
        }

        if (Text(column) is { } text)
        {
            body[member ?? column] = text;
        }
        else if (clearEmpty)
        {
            body[member ?? column] = null;
        }
    }

    /// <summary>Copies a number cell: a JSON number when it parses (invariant culture), else the text, which the command refuses.</summary>
    public void CopyNumber(JsonObject body, string column, bool clearEmpty)
    {
        if (!Has(column))
        {
            return;
        }

        if (Text(column) is not { } text)
        {
            if (clearEmpty)
            {
                body[column] = null;
            }
        }
        else
        {
            body[column] = ParseNumber(text) is { } number ? JsonValue.Create(number) : JsonValue.Create(text);
        }
    }

    public static double? ParseNumber(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number) ? number : null;

    /// <summary>Import key of this row in <paramref name="jobId"/>: stored with what the row creates, so a re-run knows its own rows.</summary>
    public string ImportKey(string jobId) => $"{jobId}#{Number.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// The outcome of a row a command refused: the column at fault (the field the route names, mapped back to the
    /// column it came from), the cell, and the route's own message.
    /// </summary>
    public RowOutcome Fail(CommandError error, Func<string, string?> columnOf)
    {
        if (error.Fields is { IsValid: false } fields)
        {
            var errors = fields.Errors.ToList();
            var column = columnOf(errors[0].Key) ?? errors[0].Key;
            var message = string.Join("; ", errors.SelectMany((e, i) => e.Value.Select(m => i == 0 ? m : $"{columnOf(e.Key) ?? e.Key}: {m}")));
            return RowOutcome.Fail(Number, column, Raw(column), message);
        }

        var at = columnOf(error.Code);
        return RowOutcome.Fail(Number, at, at is null ? null : Raw(at), error.Message);
    }

    public RowOutcome Fail(string column, string message) => RowOutcome.Fail(Number, column, Raw(column), message);

    public static JsonElement ToElement(JsonObject body) => JsonSerializer.SerializeToElement(body);
}

/// <summary>
/// A tenant's locations addressed by name path (<c>Main warehouse/Aisle 1/Shelf 3</c>, names compared ignoring case),
/// for imports: a path names a location when exactly one location sits there (names need not be unique among
/// siblings, so a path can be ambiguous, and then only the id will do). A name containing '/' has no path.
/// </summary>
internal sealed class LocationPaths
{
    public const char Separator = '/';

    private readonly Dictionary<string, LocationEntity> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _byPath = new(StringComparer.OrdinalIgnoreCase);

    public LocationPaths(IEnumerable<LocationEntity> locations)
    {
        foreach (var location in locations)
        {
            _byId[location.Id] = location;
        }

        foreach (var location in _byId.Values)
        {
            if (PathOf(location.Id) is { } path)
            {
                Add(path, location.Id);
            }
        }
    }

    public static async Task<LocationPaths> LoadAsync(LocationCommands locations, Storage.TenantId tenant, CancellationToken cancellationToken) =>
        new(await locations.AllAsync(tenant, cancellationToken));

    /// <summary>A path written with any spacing around its separators, as the key it is found by; null when a segment is empty.</summary>
    public static string? Normalize(string path)
    {
        var segments = path.Split(Separator).Select(s => s.Trim()).ToArray();
        return segments.Any(s => s.Length == 0) ? null : string.Join(Separator, segments);
    }

    public LocationEntity? ById(string id) => _byId.GetValueOrDefault(id);

    /// <summary>The ids at a (normalized) path: none, one, or several when siblings share a name.</summary>
    public IReadOnlyList<string> AtPath(string path) => _byPath.TryGetValue(path, out var ids) ? ids : [];

    /// <summary>
    /// What an import cell names: an existing location's id, or the path of exactly one. Otherwise the id is null and
    /// the problem says why (null problem: nothing there, let the command say so).
    /// </summary>
    public (string? Id, string? Problem) Resolve(string text)
    {
        if (_byId.ContainsKey(text))
        {
            return (text, null);
        }

        if (Normalize(text) is not { } path)
        {
            return (null, null);
        }

        var ids = AtPath(path);
        return ids.Count switch
        {
            1 => (ids[0], null),
            0 => (null, null),
            _ => (null, $"{ids.Count} locations have the path '{path}'; give the location's id instead"),
        };
    }

    /// <summary>Records a location created meanwhile (or, in a dry run, one that would be).</summary>
    public void Added(LocationEntity location)
    {
        _byId[location.Id] = location;
        if (PathOf(location.Id) is { } path)
        {
            Add(path, location.Id);
        }
    }

    public void Replaced(LocationEntity location) => _byId[location.Id] = location;

    /// <summary>The location's name path; null when a name holds the separator or the chain is broken or cyclic.</summary>
    public string? PathOf(string id)
    {
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var next = _byId.GetValueOrDefault(id); next is not null; next = next.ParentId is null ? null : _byId.GetValueOrDefault(next.ParentId))
        {
            if (!seen.Add(next.Id) || next.Name.Contains(Separator, StringComparison.Ordinal) || next.ParentId is not null && !_byId.ContainsKey(next.ParentId))
            {
                return null;
            }

            names.Add(next.Name.Trim());
        }

        names.Reverse();
        return names.Count == 0 ? null : string.Join(Separator, names);
    }

    private void Add(string path, string id)
    {
        if (!_byPath.TryGetValue(path, out var ids))
        {
            _byPath[path] = ids = [];
        }

        if (!ids.Contains(id, StringComparer.Ordinal))
        {
            ids.Add(id);
        }
    }
}
