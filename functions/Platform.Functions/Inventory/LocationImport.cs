using System.Text.Json.Nodes;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Imports;

namespace Platform.Functions.Inventory;

/// <summary>
/// Import kind <c>inventory-locations</c>: a row is a location named by its path (<c>Main warehouse/Aisle 1/Shelf 3</c>,
/// the natural key, compared ignoring case), with the other members of <c>POST /api/v1/inventory/locations</c>. Read
/// by <see cref="LocationCommands.Read"/> / <see cref="LocationCommands.ReadChanges"/> and written by
/// <see cref="LocationCommands.CreateAsync(Platform.Functions.Auth.Caller, LocationInput, string?, CancellationToken)"/> /
/// <see cref="LocationCommands.UpdateAsync"/>, one row at a time in file order (a tree is small, and each location's
/// parent must exist before it).
/// </summary>
/// <remarks>
/// <para>A row creates its own location only, never its parents: the parent path must name a location that exists -
/// made over HTTP, by an earlier row of the file (this chunk or an earlier one) - or the row fails naming the missing
/// parent. So a typo in a path cannot grow a stray branch, and a file lists parents before their children (a child
/// listed first fails; fix the order, or re-import just the failed rows). A path that names several locations (sibling
/// names may repeat over HTTP) fails as ambiguous.</para>
/// <para>Create: an existing path fails, unless the location there was created by this very job and row (a re-run).
/// Upsert: an existing location takes the row's <c>code</c> and <c>description</c>; a row that changes nothing writes
/// nothing. Dry run checks against the stored tree plus this chunk's earlier rows; a parent created by an earlier
/// chunk of the same dry run is not there, so such a child fails in the dry run only.</para>
/// </remarks>
public sealed class LocationImport(LocationCommands locations) : IImportKind
{
    public const string Kind = "inventory-locations";

    public IReadOnlyList<ImportColumn> Columns { get; } =
    [
        new("path", "Main warehouse/Aisle 1/Shelf 3", "Names from the root down, separated by '/'; its parent must exist or come earlier in the file", Required: true),
        new("code", "A1-S3", $"At most {LocationCommands.MaxCodeLength} characters"),
        new("description", "Top shelf, heavy items below", $"At most {LocationCommands.MaxDescriptionLength} characters"),
    ];

    public async Task<IReadOnlyList<RowOutcome>> ApplyAsync(ImportBatch batch, CancellationToken cancellationToken)
    {
        var caller = batch.Caller;
        var paths = await LocationPaths.LoadAsync(locations, caller.Tenant, cancellationToken);
        var outcomes = new List<RowOutcome>(batch.Rows.Count);
        foreach (var tabular in batch.Rows)
        {
            var row = new ImportRow(tabular);
            outcomes.Add(await ApplyRowAsync(batch, row, paths, cancellationToken));
        }

        return outcomes;
    }

    private async Task<RowOutcome> ApplyRowAsync(ImportBatch batch, ImportRow row, LocationPaths paths, CancellationToken cancellationToken)
    {
        if (row.Text("path") is not { } text)
        {
            return row.Fail("path", "is required");
        }

        if (LocationPaths.Normalize(text) is not { } path)
        {
            return row.Fail("path", "must be location names separated by '/', none of them empty");
        }

        var existing = paths.AtPath(path);
        if (existing.Count > 1)
        {
            return row.Fail("path", $"{existing.Count} locations have this path; rename one of them first");
        }

        if (existing.Count == 1)
        {
            var location = paths.ById(existing[0])!;
            if (batch.Mode == ImportMode.Create)
            {
                return location.ImportKey == row.ImportKey(batch.JobId) && !batch.DryRun
                    ? RowOutcome.Ok(row.Number)
                    : row.Fail("path", "A location with this path exists already; import with mode=upsert to update it.");
            }

            var body = new JsonObject();
            row.CopyText(body, "code", clearEmpty: true);
            row.CopyText(body, "description", clearEmpty: true);
            var element = ImportRow.ToElement(body);

            // On a copy: a dry run must leave the tree it checks against as stored.
            var copy = Copy(location);
            if (LocationCommands.ReadChanges(copy, element).Failed(out var invalid, out var changes))
            {
                return row.Fail(invalid, ColumnOf);
            }

            if (changes.Count == 0 || batch.DryRun)
            {
                return RowOutcome.Ok(row.Number);
            }

            if ((await locations.UpdateAsync(batch.Caller, location.Id, element, _ => true, cancellationToken)).Failed(out var error, out var updated))
            {
                return row.Fail(error, ColumnOf);
            }

            paths.Replaced(updated);
            return RowOutcome.Ok(row.Number);
        }

        var cut = path.LastIndexOf(LocationPaths.Separator);
        string? parentId = null;
        if (cut > 0)
        {
            var parentPath = path[..cut];
            var parents = paths.AtPath(parentPath);
            if (parents.Count != 1)
            {
                return row.Fail("path", parents.Count == 0
                    ? $"There is no location '{parentPath}' to be the parent; list a location's parents before it."
                    : $"{parents.Count} locations have the path '{parentPath}'; the parent is ambiguous.");
            }

            parentId = parents[0];
        }

        var input = new LocationInput(cut > 0 ? path[(cut + 1)..] : path, row.Text("code"), parentId, row.Text("description"));
        if (batch.DryRun)
        {
            if (locations.Read(input).Failed(out var invalid, out var imagined))
            {
                return row.Fail(invalid, ColumnOf);
            }

            if (Depth(paths, parentId) >= LocationCommands.MaxDepth - 1)
            {
                return row.Fail("path", $"Locations nest at most {LocationCommands.MaxDepth} levels deep.");
            }

            paths.Added(imagined);
            return RowOutcome.Ok(row.Number);
        }

        if ((await locations.CreateAsync(batch.Caller, input, row.ImportKey(batch.JobId), cancellationToken)).Failed(out var refused, out var created))
        {
            return row.Fail(refused, ColumnOf);
        }

        paths.Added(created);
        return RowOutcome.Ok(row.Number);
    }

    /// <summary>How deep a child of <paramref name="parentId"/> would sit, less one (a root's children: 1).</summary>
    private static int Depth(LocationPaths paths, string? parentId)
    {
        var depth = 0;
        for (var next = parentId is null ? null : paths.ById(parentId); next is not null && depth <= LocationCommands.MaxDepth; next = next.ParentId is null ? null : paths.ById(next.ParentId))
        {
            depth++;
        }

        return depth;
    }

    private static LocationEntity Copy(LocationEntity location) => new()
    {
        PartitionKey = location.PartitionKey,
        RowKey = location.RowKey,
        ETag = location.ETag,
        Name = location.Name,
        Code = location.Code,
        ParentId = location.ParentId,
        Description = location.Description,
        CreatedAt = location.CreatedAt,
        UpdatedAt = location.UpdatedAt,
        ImportKey = location.ImportKey,
    };

    /// <summary>The name is the path's last segment; the parent and depth problems are the path's too.</summary>
    private static string? ColumnOf(string fieldOrCode) => fieldOrCode switch
    {
        "name" or "parentId" or "parent_not_found" or "location_too_deep" or "location_cycle" or "location_tree_changed" => "path",
        "code" or "description" => fieldOrCode,
        _ => null,
    };
}
