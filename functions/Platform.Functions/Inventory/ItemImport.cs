using System.Text.Json;
using System.Text.Json.Nodes;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>
/// Import kind <c>inventory-items</c>: a row is the body of <c>POST /api/v1/inventory/items</c> (create) or of a
/// PATCH of the item with that SKU (upsert), read by <see cref="ItemCommands.Read"/> and
/// <see cref="ItemCommands.ReadChanges"/>, so a row passes exactly the route's rules and fails with its messages.
/// Written in bulk by <see cref="ItemCommands.CreateManyAsync"/> / <see cref="ItemCommands.UpdateManyAsync"/>.
/// </summary>
/// <remarks>
/// <para>Cells: <c>tags</c> are separated by <c>;</c>; <c>fields</c> is a JSON object and <c>fields.&lt;name&gt;</c>
/// sets one custom field (as text; an existing value of another type whose text is the cell's stays as it is) and an
/// empty one removes it. <c>locationId</c> takes an id or a location's name path. An upsert row leaves the columns the
/// file lacks as they are and clears those it has empty; a row that changes nothing writes nothing. A non-empty
/// <c>quantity</c> is refused as the route refuses it: stock changes through movements (import those).</para>
/// <para>A SKU met again within a chunk starts a new group, so a later row sees what an earlier one did (create: the
/// second is <c>sku_taken</c>; upsert: it updates what the first wrote). Re-runs: each created item's SKU index row
/// keeps <c>{jobId}#{row}</c>, so a create row that finds its own item reports success instead of <c>sku_taken</c>.</para>
/// <para>Dry run reads everything a real run would check (SKUs taken, locations) and remembers this chunk's own rows,
/// but not the rows of other chunks nor the tenant's item cap.</para>
/// </remarks>
public sealed class ItemImport(ItemCommands items, LocationCommands locations, InventoryStore store) : IImportKind
{
    public const string Kind = "inventory-items";

    private const int Parallelism = 16;

    public IReadOnlyList<ImportColumn> Columns { get; } =
    [
        new("sku", "BOLT-10", "Unique per tenant: 1-64 letters, digits, '.', '-' or '_'; the key an upsert matches (ignoring case)", Required: true),
        new("name", "Bolt M10", "Required when creating", Required: true),
        new("description", "Zinc-plated", ""),
        new("category", "fasteners", ""),
        new("locationId", "Main warehouse/Aisle 1", "The item's home location: its id or name path"),
        new("unit", "pcs", ""),
        new("unitCost", "0.25", "A number from 0 to 1000000000 (a '.' for decimals)"),
        new("reorderPoint", "100", "A number from 0 to 1000000000"),
        new("reorderQuantity", "500", "A number from 0 to 1000000000"),
        new("expiresAt", "2027-03-01T00:00:00Z", "ISO 8601 timestamp"),
        new("supplier", "Acme", ""),
        new("tags", "metal;small", $"Up to {ItemCommands.MaxTags}, separated by ';'"),
        new("fields.colour", "grey", "A custom field: one column per field, named fields.<name> (or all at once as a JSON object in a column 'fields')"),
    ];

    public async Task<IReadOnlyList<RowOutcome>> ApplyAsync(ImportBatch batch, CancellationToken cancellationToken)
    {
        var outcomes = new RowOutcome?[batch.Rows.Count];
        var rows = batch.Rows.Select(r => new ImportRow(r)).ToList();
        // Any cell may be a path (a one-level path such as "Main" looks like an id too); a tree is small.
        var paths = rows.Any(r => r.Text("locationId") is not null)
            ? await LocationPaths.LoadAsync(locations, batch.Caller.Tenant, cancellationToken)
            : null;

        // Dry run: the items this chunk's earlier rows would have created or changed, by SKU key.
        var imagined = new Dictionary<string, ItemEntity>(StringComparer.Ordinal);
        var group = new List<int>();
        var skus = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i <= rows.Count; i++)
        {
            var sku = i < rows.Count ? rows[i].Text("sku") : null;
            if (i == rows.Count || sku is not null && !skus.Add(SkuIndexEntity.KeyFor(sku)))
            {
                await ApplyGroupAsync(batch, rows, group, paths, imagined, outcomes, cancellationToken);
                group.Clear();
                skus.Clear();
                if (sku is not null)
                {
                    skus.Add(SkuIndexEntity.KeyFor(sku));
                }
            }

            if (i < rows.Count)
            {
                group.Add(i);
            }
        }

        return outcomes!;
    }

    /// <summary>Rows whose SKUs differ, so they can be checked and written together.</summary>
    private async Task ApplyGroupAsync(
        ImportBatch batch, List<ImportRow> rows, List<int> group, LocationPaths? paths, Dictionary<string, ItemEntity> imagined,
        RowOutcome?[] outcomes, CancellationToken cancellationToken)
    {
        if (group.Count == 0)
        {
            return;
        }

        var caller = batch.Caller;
        var upsert = batch.Mode == ImportMode.Upsert;

        // What exists: needed to update, and to tell a taken SKU before writing in a dry run. A real create skips the
        // reads: the write itself finds a taken SKU (and then reads once, see CreateManyAsync).
        var existing = new (SkuIndexEntity? Index, ItemEntity? Item)[group.Count];
        if (upsert || batch.DryRun)
        {
            var partition = store.For(caller.Tenant);
            await Parallel.ForAsync(0, group.Count, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken }, async (g, ct) =>
            {
                if (rows[group[g]].Text("sku") is not { } sku || !ItemCommands.IsValidSku(sku))
                {
                    return;
                }

                if (imagined.TryGetValue(SkuIndexEntity.KeyFor(sku), out var known))
                {
                    existing[g] = (new SkuIndexEntity { ItemId = known.Id }, known);
                    return;
                }

                var index = await partition.GetAsync<SkuIndexEntity>(SkuIndexEntity.KeyFor(sku), ct);
                var item = index is null ? null : await items.GetAsync(caller.Tenant, index.ItemId, ct);
                existing[g] = (index, item is { Status: ItemStatus.Active } ? item : null);
            });
        }

        var creates = new List<(int Row, NewItem Item)>();
        var updates = new List<(int Row, ItemUpdate Update)>();
        for (var g = 0; g < group.Count; g++)
        {
            var row = rows[group[g]];
            if (ResolveLocation(row, paths) is { } problem)
            {
                outcomes[group[g]] = row.Fail("locationId", problem);
                continue;
            }

            var (index, current) = existing[g];
            if (current is not null && !upsert)
            {
                outcomes[group[g]] = index!.ImportKey == row.ImportKey(batch.JobId) && !batch.DryRun
                    ? RowOutcome.Ok(row.Number)
                    : row.Fail(ItemCommands.SkuTaken(row.Text("sku")!), ColumnOf);
            }
            else if (current is not null)
            {
                var body = Body(row, current, patch: true);
                if (ItemCommands.ReadChanges(current, body).Failed(out var error, out var changes))
                {
                    outcomes[group[g]] = row.Fail(error, ColumnOf);
                }
                else if (changes.Count == 0)
                {
                    outcomes[group[g]] = RowOutcome.Ok(row.Number);
                }
                else
                {
                    updates.Add((group[g], new ItemUpdate(current, body, changes)));
                }
            }
            else if (items.Read(Body(row, null, patch: false)).Failed(out var error, out var item))
            {
                outcomes[group[g]] = row.Fail(error, ColumnOf);
            }
            else
            {
                creates.Add((group[g], new NewItem(item, row.ImportKey(batch.JobId))));
            }
        }

        if (batch.DryRun)
        {
            await ImagineAsync(caller.Tenant, rows, creates.Select(c => (c.Row, c.Item.Item, true)).Concat(updates.Select(u => (u.Row, u.Update.Item, u.Update.Changes.ContainsKey("locationId")))),
                imagined, outcomes, cancellationToken);
            return;
        }

        var created = await items.CreateManyAsync(caller, [.. creates.Select(c => c.Item)], cancellationToken);
        for (var c = 0; c < creates.Count; c++)
        {
            var row = rows[creates[c].Row];
            outcomes[creates[c].Row] = created[c] is { } error ? row.Fail(error, ColumnOf) : RowOutcome.Ok(row.Number);
        }

        var updated = await items.UpdateManyAsync(caller, [.. updates.Select(u => u.Update)], cancellationToken);
        for (var u = 0; u < updates.Count; u++)
        {
            var row = rows[updates[u].Row];
            outcomes[updates[u].Row] = updated[u] is { } error ? row.Fail(error, ColumnOf) : RowOutcome.Ok(row.Number);
        }
    }

    /// <summary>A dry run's last check (the location each row names exists), and what later rows of the chunk then see.</summary>
    private async Task ImagineAsync(
        TenantId tenant, List<ImportRow> rows, IEnumerable<(int Row, ItemEntity Item, bool CheckLocation)> written, Dictionary<string, ItemEntity> imagined,
        RowOutcome?[] outcomes, CancellationToken cancellationToken)
    {
        var known = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var (index, item, checkLocation) in written)
        {
            if (checkLocation && item.LocationId is { } locationId)
            {
                if (!known.TryGetValue(locationId, out var exists))
                {
                    known[locationId] = exists = await locations.GetAsync(tenant, locationId, cancellationToken) is not null;
                }

                if (!exists)
                {
                    outcomes[index] = rows[index].Fail(ItemCommands.LocationNotFound(locationId), ColumnOf);
                    continue;
                }
            }

            imagined[SkuIndexEntity.KeyFor(item.Sku)] = item;
            outcomes[index] = RowOutcome.Ok(rows[index].Number);
        }
    }

    /// <summary>Swaps a location path for its id; a problem when the path names several locations.</summary>
    private static string? ResolveLocation(ImportRow row, LocationPaths? paths)
    {
        if (paths is null || row.Text("locationId") is not { } text)
        {
            return null;
        }

        var (id, problem) = paths.Resolve(text);
        if (id is not null)
        {
            row.Resolve("locationId", id);
        }

        return problem;
    }

    /// <summary>The row as the route's JSON body: a create body, or a PATCH of <paramref name="current"/>.</summary>
    private static JsonElement Body(ImportRow row, ItemEntity? current, bool patch)
    {
        var body = new JsonObject();
        foreach (var column in new[] { "sku", "name", "description", "category", "unit", "expiresAt", "supplier" })
        {
            row.CopyText(body, column, patch);
        }

        if (row.Has("locationId") && (row.Resolved("locationId") is not null || patch))
        {
            body["locationId"] = row.Resolved("locationId");
        }

        foreach (var column in new[] { "unitCost", "reorderPoint", "reorderQuantity" })
        {
            row.CopyNumber(body, column, patch);
        }

        // Refused by the command, as the route refuses it.
        row.CopyNumber(body, "quantity", clearEmpty: false);
        if (row.Text("tags") is { } tags)
        {
            body["tags"] = new JsonArray([.. tags.Split(';').Select(t => t.Trim()).Where(t => t.Length > 0).Select(t => (JsonNode?)t)]);
        }
        else if (row.Has("tags") && patch)
        {
            body["tags"] = null;
        }

        if (Fields(row, current) is (true, var fields))
        {
            body["fields"] = fields;
        }

        return ImportRow.ToElement(body);
    }

    /// <summary>
    /// The custom fields a row sets: its <c>fields</c> JSON and <c>fields.&lt;name&gt;</c> cells over the item's
    /// current fields; not present when the row has no such column or ends where the item already is.
    /// </summary>
    private static (bool Present, JsonNode? Value) Fields(ImportRow row, ItemEntity? current)
    {
        var cells = row.Prefixed(FieldPrefix).ToList();
        if (!row.Has("fields") && cells.Count == 0)
        {
            return (false, null);
        }

        var before = current is null ? null : JsonNode.Parse(current.Fields);
        JsonNode? fields;
        if (row.Has("fields"))
        {
            try
            {
                fields = row.Text("fields") is { } json ? JsonNode.Parse(json) : null;
            }
            catch (JsonException)
            {
                // Not JSON: the command refuses it as the route refuses a non-object.
                fields = row.Text("fields");
            }
        }
        else
        {
            fields = before?.DeepClone() ?? new JsonObject();
        }

        if (cells.Count > 0 && fields is JsonObject target)
        {
            foreach (var (column, name) in cells)
            {
                if (row.Text(column) is not { } text)
                {
                    target.Remove(name);
                }
                else if (!(target[name] is JsonValue kept && kept.GetValueKind() != JsonValueKind.String && kept.ToJsonString() == text))
                {
                    target[name] = text;
                }
            }
        }

        return current is not null && JsonNode.DeepEquals(fields ?? new JsonObject(), before) ? (false, null) : (true, fields);
    }

    private const string FieldPrefix = "fields.";

    /// <summary>The column a field or problem code of the routes comes from.</summary>
    private static string? ColumnOf(string fieldOrCode) => fieldOrCode switch
    {
        "sku_taken" => "sku",
        "location_not_found" => "locationId",
        "item_limit_reached" or "not_found" or "precondition_failed" => null,
        _ => fieldOrCode,
    };
}
