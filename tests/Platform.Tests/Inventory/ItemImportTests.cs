using System.Net;
using System.Text.Json;
using Platform.Functions.Inventory;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class ItemImportTests(Azurite azurite) : ImportKindTests(azurite)
{
    private const string Kind = ItemImport.Kind;

    private static readonly string[] Tags = ["x", "y"];

    private static readonly int[] Numbers = [1, 2];

    [Fact]
    public async Task CreateWritesEveryColumnAsTheRouteWouldWithAlertsAndEvents()
    {
        var main = await Admin.CreateLocationIdAsync("Main");
        var aisle = await Admin.CreateLocationIdAsync("Aisle 1", main);

        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("sku", "BOLT-10"), ("name", " Bolt M10 "), ("description", "Zinc"), ("category", "fasteners"), ("locationId", "main / aisle 1"),
                ("unit", "pcs"), ("unitCost", "0.25"), ("reorderPoint", "100"), ("reorderQuantity", "500"), ("expiresAt", "2027-03-01T00:00:00Z"),
                ("supplier", "Acme"), ("tags", "metal; small;"), ("fields.colour", "grey"), ("Fields.size", "M10")),
            Row(3, ("sku", "NUT-10"), ("name", "Nut"), ("locationId", main), ("description", "")),
            Row(4, ("sku", "WASHER"), ("name", "Washer"), ("locationId", "Main")),
        ]);

        AssertAllSucceeded(outcomes);
        var bolt = await ItemBySkuAsync("BOLT-10");
        Assert.Equal("Bolt M10", bolt.Str("name"));
        Assert.Equal(aisle, bolt.Str("locationId"));
        Assert.Equal(0.25, bolt.Num("unitCost"));
        Assert.Equal(100, bolt.Num("reorderPoint"));
        Assert.Equal(500, bolt.Num("reorderQuantity"));
        Assert.Equal(new DateTimeOffset(2027, 3, 1, 0, 0, 0, TimeSpan.Zero), bolt.GetProperty("expiresAt").GetDateTimeOffset());
        Assert.Equal(["metal", "small"], bolt.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("grey", bolt.GetProperty("fields").GetProperty("colour").GetString());
        Assert.Equal("M10", bolt.GetProperty("fields").GetProperty("size").GetString());
        Assert.Equal(0, bolt.Num("quantity"));
        var nut = await ItemBySkuAsync("NUT-10");
        Assert.Equal(main, nut.Str("locationId"));
        Assert.Equal(JsonValueKind.Null, nut.GetProperty("description").ValueKind);
        Assert.Equal(main, (await ItemBySkuAsync("WASHER")).Str("locationId"));

        // As over HTTP: the created event, and the low-stock alert a reorder point above the (zero) stock raises.
        Assert.Equal(["inventory.item.created"], await Admin.AuditActionsAsync(bolt.Id()));
        var alert = Assert.Single(await Admin.ListAsync("/api/v1/inventory/alerts"));
        Assert.Equal(bolt.Id(), alert.Str("itemId"));
        Assert.Equal("low_stock", alert.Str("kind"));
        Assert.Equal(["inventory.low_stock"], await Admin.AuditActionsAsync(alert.Id()));

        // The SKU is held: the route refuses it now.
        await (await Admin.PostItemAsync(new { sku = "bolt-10", name = "Again" })).ReadProblemAsync(409, "sku_taken");
    }

    [Fact]
    public async Task UpsertUpdatesWhatDiffersAndTheSameFileAgainWritesNothing()
    {
        AssertAllSucceeded(await ImportAsync(Kind, ImportMode.Create,
            [Row(2, ("sku", "A1"), ("name", "Anvil"), ("unitCost", "10"), ("tags", "heavy"), ("fields.colour", "black"))], jobId: "first"));
        var id = (await ItemBySkuAsync("A1")).Id();
        var (_, etagBefore) = await ItemWithETagAsync(id);

        TabularRow[] file =
        [
            Row(2, ("sku", "a1"), ("name", "Anvil XL"), ("unitCost", "12.5"), ("tags", "heavy;iron"), ("fields.colour", "black"), ("category", "")),
            Row(3, ("sku", "B2"), ("name", "Bellows")),
        ];
        AssertAllSucceeded(await ImportAsync(Kind, ImportMode.Upsert, file, jobId: "second"));
        var (updated, etagAfterFirst) = await ItemWithETagAsync(id);
        Assert.NotEqual(etagBefore, etagAfterFirst);
        Assert.Equal("a1", updated.Str("sku"));
        Assert.Equal("Anvil XL", updated.Str("name"));
        Assert.Equal(12.5, updated.Num("unitCost"));
        Assert.Equal(["heavy", "iron"], updated.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("black", updated.GetProperty("fields").GetProperty("colour").GetString());
        Assert.Equal(2, (await ItemsAsync()).Count);
        Assert.Equal(["inventory.item.created", "inventory.item.updated"], await Admin.AuditActionsAsync(id));
        var audit = (await AuditAsync()).Count;

        AssertAllSucceeded(await ImportAsync(Kind, ImportMode.Upsert, file, jobId: "third"));

        var (_, etagAfterSecond) = await ItemWithETagAsync(id);
        Assert.Equal(etagAfterFirst, etagAfterSecond);
        Assert.Equal(audit, (await AuditAsync()).Count);
        Assert.Equal(2, (await ItemsAsync()).Count);
    }

    [Fact]
    public async Task AnExportedFileImportsBackAsAnUpsertThatWritesNothing()
    {
        var bin = await Admin.CreateLocationIdAsync("Bin");
        await Admin.CreateItemAsync("EXP-1", extra: new
        {
            description = "d", category = "c", locationId = bin, unit = "kg", unitCost = 0.1, reorderPoint = 3, reorderQuantity = 7,
            expiresAt = new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero), supplier = "S", tags = Tags, fields = new { n = 1.5, s = "t" },
        });
        var (columns, rows) = await ExportAsync(ItemExport.Kind, null);
        var (_, etag) = await ItemWithETagAsync((await ItemBySkuAsync("EXP-1")).Id());
        var audit = (await AuditAsync()).Count;

        // The read-only columns go (as the template has none of them); the rest is the import's own form.
        string[] readOnly = ["id", "quantity", "status", "createdAt", "updatedAt"];
        var back = rows.Select((r, i) => Row(i + 2, [.. columns.Select((c, j) => (c, r[j])).Where(c => !readOnly.Contains(c.c))])).ToList();
        AssertAllSucceeded(await ImportAsync(Kind, ImportMode.Upsert, back));

        Assert.Equal(etag, (await ItemWithETagAsync((await ItemBySkuAsync("EXP-1")).Id())).ETag);
        Assert.Equal(audit, (await AuditAsync()).Count);
    }

    [Fact]
    public async Task DryRunChecksEverythingAndWritesNothing()
    {
        await Admin.CreateItemAsync("TAKEN");
        var audit = (await AuditAsync()).Count;

        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("sku", "NEW-1"), ("name", "New"), ("reorderPoint", "5")),
            Row(3, ("sku", "taken"), ("name", "Taken")),
            Row(4, ("sku", "NEW-2"), ("name", "Nowhere"), ("locationId", "01JZZZZZZZZZZZZZZZZZZZZZZZ")),
            Row(5, ("sku", "NEW-1"), ("name", "Again")),
        ], dryRun: true);

        Assert.True(outcomes[0].Succeeded);
        AssertFailed(outcomes[1], "sku", "taken", "Another item of this tenant has the SKU taken.");
        AssertFailed(outcomes[2], "locationId", "01JZZZZZZZZZZZZZZZZZZZZZZZ", "There is no location 01JZZZZZZZZZZZZZZZZZZZZZZZ in this tenant.");
        AssertFailed(outcomes[3], "sku", "NEW-1", "Another item of this tenant has the SKU NEW-1.");
        Assert.Equal(["TAKEN"], (await ItemsAsync()).Select(i => i.Str("sku")));
        Assert.Empty(await Admin.ListAsync("/api/v1/inventory/alerts"));
        Assert.Equal(audit, (await AuditAsync()).Count);
    }

    [Fact]
    public async Task EveryFailureNamesColumnValueAndTheRoutesOwnMessage()
    {
        await Admin.CreateItemAsync("TAKEN");
        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("sku", "bad sku!"), ("name", "X")),
            Row(3, ("sku", "NONAME"), ("name", " ")),
            Row(4, ("sku", "NEG"), ("name", "X"), ("reorderPoint", "-1")),
            Row(5, ("sku", "NAN"), ("name", "X"), ("unitCost", "cheap")),
            Row(6, ("sku", "QTY"), ("name", "X"), ("quantity", "5")),
            Row(7, ("sku", "WHEN"), ("name", "X"), ("expiresAt", "tomorrow")),
            Row(8, ("sku", "FLD"), ("name", "X"), ("fields", "[1,2]")),
            Row(9, ("sku", "TAGS"), ("name", "X"), ("tags", string.Join(';', Enumerable.Range(0, 21).Select(i => $"t{i}")))),
            Row(10, ("sku", "Taken"), ("name", "X")),
            Row(11, ("sku", "LOC"), ("name", "X"), ("locationId", "Nowhere/At all")),
            Row(12, ("name", "No SKU")),
        ]);

        Assert.All(outcomes, o => Assert.False(o.Succeeded));
        AssertFailed(outcomes[0], "sku", "bad sku!", await FieldErrorAsync(await Admin.PostItemAsync(new { sku = "bad sku!", name = "X" }), "sku"));
        AssertFailed(outcomes[1], "name", " ", await FieldErrorAsync(await Admin.PostItemAsync(new { sku = "NONAME", name = " " }), "name"));
        AssertFailed(outcomes[2], "reorderPoint", "-1", await FieldErrorAsync(await Admin.PostItemAsync(new { sku = "NEG", name = "X", reorderPoint = -1 }), "reorderPoint"));
        AssertFailed(outcomes[3], "unitCost", "cheap", "must be a number or null");
        AssertFailed(outcomes[4], "quantity", "5", await FieldErrorAsync(await Admin.PostItemAsync(new { sku = "QTY", name = "X", quantity = 5 }), "quantity"));
        AssertFailed(outcomes[5], "expiresAt", "tomorrow", "must be an ISO-8601 timestamp or null");
        AssertFailed(outcomes[6], "fields", "[1,2]", await FieldErrorAsync(await Admin.PostItemAsync(new { sku = "FLD", name = "X", fields = Numbers }), "fields"));
        AssertFailed(outcomes[7], "tags", string.Join(';', Enumerable.Range(0, 21).Select(i => $"t{i}")),
            await FieldErrorAsync(await Admin.PostItemAsync(new { sku = "TAGS", name = "X", tags = Enumerable.Range(0, 21).Select(i => $"t{i}") }), "tags"));
        AssertFailed(outcomes[8], "sku", "Taken", await DetailAsync(await Admin.PostItemAsync(new { sku = "Taken", name = "X" }), 409, "sku_taken"));
        AssertFailed(outcomes[9], "locationId", "Nowhere/At all", await FieldErrorAsync(await Admin.PostItemAsync(new { sku = "LOC", name = "X", locationId = "Nowhere/At all" }), "locationId"));
        AssertFailed(outcomes[10], "sku", null, "is required");
        Assert.Equal(["TAKEN"], (await ItemsAsync()).Select(i => i.Str("sku")));
    }

    [Fact]
    public async Task ASkuTwiceInOneChunkIsTakenWhenCreatingAndUpdatedInTurnWhenUpserting()
    {
        var created = await ImportAsync(Kind, ImportMode.Create,
            [Row(2, ("sku", "DUP"), ("name", "First")), Row(3, ("sku", "dup"), ("name", "Second")), Row(4, ("sku", "OTHER"), ("name", "Other"))]);

        Assert.True(created[0].Succeeded);
        AssertFailed(created[1], "sku", "dup", "Another item of this tenant has the SKU dup.");
        Assert.True(created[2].Succeeded);
        Assert.Equal("First", (await ItemBySkuAsync("DUP")).Str("name"));

        var upserted = await ImportAsync(Kind, ImportMode.Upsert,
            [Row(2, ("sku", "NEW"), ("name", "One")), Row(3, ("sku", "NEW"), ("name", "Two"), ("unit", "box"))], jobId: "job2");

        AssertAllSucceeded(upserted);
        var item = await ItemBySkuAsync("NEW");
        Assert.Equal("Two", item.Str("name"));
        Assert.Equal("box", item.Str("unit"));
        Assert.Equal(["inventory.item.created", "inventory.item.updated"], await Admin.AuditActionsAsync(item.Id()));
    }

    [Fact]
    public async Task TheSameChunkAppliedTwiceByOneJobReportsTheSameAndCreatesNothingTwice()
    {
        await Admin.CreateItemAsync("HTTP-1");
        TabularRow[] chunk = [.. Enumerable.Range(0, 120).Select(i => Row(i + 2, ("sku", $"S{i:D3}"), ("name", $"Item {i}"), ("reorderPoint", "1")))];
        chunk[5] = Row(7, ("sku", "HTTP-1"), ("name", "Clash"));

        var first = await ImportAsync(Kind, ImportMode.Create, chunk);
        var items = (await ItemsAsync()).Count;
        var alerts = (await Admin.ListAsync("/api/v1/inventory/alerts?pageSize=1000")).Count;
        var again = await ImportAsync(Kind, ImportMode.Create, chunk);

        Assert.Equal(first, again);
        Assert.Equal(119, first.Count(o => o.Succeeded));
        AssertFailed(first[5], "sku", "HTTP-1", "Another item of this tenant has the SKU HTTP-1.");
        Assert.Equal(120, items);
        Assert.Equal(items, (await ItemsAsync()).Count);
        Assert.Equal(alerts, (await Admin.ListAsync("/api/v1/inventory/alerts?pageSize=1000")).Count);

        // Another job's row is not this one's: the SKU is taken.
        var other = await ImportAsync(Kind, ImportMode.Create, [chunk[0]], jobId: "job2");
        AssertFailed(other[0], "sku", "S000", "Another item of this tenant has the SKU S000.");
    }

    [Fact]
    public async Task AnotherTenantsSkusAndLocationsAreNotThisTenants()
    {
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        await otherAdmin.CreateItemAsync("SHARED");
        var theirLocation = await otherAdmin.CreateLocationIdAsync("Theirs");

        var outcomes = await ImportAsync(Kind, ImportMode.Upsert,
            [Row(2, ("sku", "SHARED"), ("name", "Ours")), Row(3, ("sku", "LOC"), ("name", "X"), ("locationId", theirLocation))]);

        Assert.True(outcomes[0].Succeeded);
        AssertFailed(outcomes[1], "locationId", theirLocation, $"There is no location {theirLocation} in this tenant.");
        Assert.Equal("Ours", (await ItemBySkuAsync("SHARED")).Str("name"));
        var theirs = Assert.Single(await otherAdmin.ListAsync(InventoryApi.Items));
        Assert.Equal("Item SHARED", theirs.Str("name"));
    }
}
