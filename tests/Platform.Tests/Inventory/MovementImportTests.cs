using System.Net;
using System.Text.Json;
using Platform.Functions.Inventory;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class MovementImportTests(Azurite azurite) : ImportKindTests(azurite)
{
    private const string Kind = MovementImport.Kind;

    private async Task<JsonElement> StockAsync(string itemId) => await Admin.GetJsonAsync($"{InventoryApi.Items}/{itemId}/stock");

    private async Task<IReadOnlyList<JsonElement>> MovementsAsync() => await Admin.ListAsync($"{InventoryApi.Movements}?pageSize=1000");

    private static double At(JsonElement stock, string? locationId) =>
        stock.GetProperty("locations").EnumerateArray().Where(l => l.GetProperty("locationId").GetString() == locationId).Sum(l => l.Num("quantity"));

    [Fact]
    public async Task RowsMoveStockBySkuOrIdAndLocationPathOrIdInFileOrder()
    {
        var main = await Admin.CreateLocationIdAsync("Main");
        var shelf = await Admin.CreateLocationIdAsync("Shelf", main);
        var bolt = (await Admin.CreateItemAsync("BOLT", extra: new { locationId = main })).Id();

        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("sku", "bolt"), ("type", "in"), ("quantity", "100"), ("batch", "LOT-1"), ("supplier", "Acme"), ("reference", "PO-1")),
            Row(3, ("itemId", bolt), ("type", "transfer"), ("quantity", "30"), ("toLocationId", "Main/Shelf")),
            Row(4, ("sku", "BOLT"), ("type", "out"), ("quantity", "10.5"), ("fromLocationId", shelf), ("reason", "Sold")),
            Row(5, ("sku", "BOLT"), ("type", "adjust"), ("quantity", "65"), ("toLocationId", "main")),
        ]);

        AssertAllSucceeded(outcomes);
        var stock = await StockAsync(bolt);
        Assert.Equal(84.5, stock.Num("quantity"));
        Assert.Equal(65, At(stock, main));
        Assert.Equal(19.5, At(stock, shelf));
        var movements = await MovementsAsync();
        Assert.Equal(["in", "transfer", "out", "adjust"], movements.Select(m => m.Str("type")));
        Assert.Equal("LOT-1", movements[0].Str("batch"));
        Assert.Equal("Acme", movements[0].Str("supplier"));
        Assert.Equal("PO-1", movements[0].Str("reference"));
        Assert.Equal(Tenant.AdminId, movements[0].Str("actorId"));
        Assert.Equal(["inventory.movement.created"], await Admin.AuditActionsAsync(movements[0].Id()));
    }

    [Fact]
    public async Task EveryFailureNamesColumnValueAndTheRoutesOwnMessage()
    {
        var main = await Admin.CreateLocationIdAsync("Main");
        var item = (await Admin.CreateItemAsync("ITEM")).Id();
        var archived = (await Admin.CreateItemAsync("GONE")).Id();
        await Admin.SendAsync(HttpMethod.Delete, $"{InventoryApi.Items}/{archived}");

        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("sku", "ITEM"), ("type", "sideways"), ("quantity", "1")),
            Row(3, ("sku", "ITEM"), ("type", "in"), ("quantity", "-1")),
            Row(4, ("sku", "ITEM"), ("type", "in"), ("quantity", "lots")),
            Row(5, ("sku", "ITEM"), ("type", "out"), ("quantity", "5")),
            Row(6, ("sku", "ITEM"), ("type", "transfer"), ("quantity", "1")),
            Row(7, ("sku", "ITEM"), ("type", "transfer"), ("quantity", "1"), ("fromLocationId", "Main"), ("toLocationId", main)),
            Row(8, ("sku", "ITEM"), ("type", "in"), ("quantity", "1"), ("toLocationId", "Nowhere")),
            Row(9, ("sku", "NOPE"), ("type", "in"), ("quantity", "1")),
            Row(10, ("itemId", archived), ("type", "in"), ("quantity", "1")),
            Row(11, ("type", "in"), ("quantity", "1")),
            Row(12, ("sku", "ITEM"), ("type", "in"), ("quantity", "1"), ("reason", new string('r', 501))),
        ]);

        Task<HttpResponseMessage> Post(string id, object body) => Admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{id}/movements", body);
        Assert.All(outcomes, o => Assert.False(o.Succeeded));
        AssertFailed(outcomes[0], "type", "sideways", await FieldErrorAsync(await Post(item, new { type = "sideways", quantity = 1 }), "type"));
        AssertFailed(outcomes[1], "quantity", "-1", await FieldErrorAsync(await Post(item, new { type = "in", quantity = -1 }), "quantity"));
        AssertFailed(outcomes[2], "quantity", "lots", await FieldErrorAsync(await Post(item, new { type = "in" }), "quantity"));
        AssertFailed(outcomes[3], "quantity", "5", await DetailAsync(await Post(item, new { type = "out", quantity = 5 }), 409, "insufficient_stock"));
        AssertFailed(outcomes[4], "toLocationId", null, await FieldErrorAsync(await Post(item, new { type = "transfer", quantity = 1 }), "toLocationId"));
        AssertFailed(outcomes[5], "toLocationId", main,
            await DetailAsync(await Post(item, new { type = "transfer", quantity = 1, fromLocationId = main, toLocationId = main }), 400, "same_location"));
        AssertFailed(outcomes[6], "toLocationId", "Nowhere", await DetailAsync(await Post(item, new { type = "in", quantity = 1, toLocationId = "Nowhere" }), 400, "location_not_found"));
        AssertFailed(outcomes[7], "sku", "NOPE", "No item of this tenant has the SKU NOPE.");
        AssertFailed(outcomes[8], "itemId", archived, await DetailAsync(await Post(archived, new { type = "in", quantity = 1 }), 409, "item_archived"));
        AssertFailed(outcomes[9], "sku", null, "is required (or give itemId)");
        AssertFailed(outcomes[10], "reason", new string('r', 501), await FieldErrorAsync(await Post(item, new { type = "in", quantity = 1, reason = new string('r', 501) }), "reason"));
        Assert.Empty(await MovementsAsync());
    }

    [Fact]
    public async Task TheSameChunkAppliedTwiceByOneJobMovesStockOnce()
    {
        var a = (await Admin.CreateItemAsync("A")).Id();
        var b = (await Admin.CreateItemAsync("B")).Id();
        TabularRow[] chunk =
        [
            Row(2, ("sku", "A"), ("type", "in"), ("quantity", "10")),
            Row(3, ("sku", "B"), ("type", "in"), ("quantity", "5")),
            Row(4, ("sku", "A"), ("type", "out"), ("quantity", "4")),
            Row(5, ("sku", "B"), ("type", "out"), ("quantity", "50")),
        ];

        var first = await ImportAsync(Kind, ImportMode.Create, chunk);
        var again = await ImportAsync(Kind, ImportMode.Upsert, chunk);

        Assert.Equal(first, again);
        Assert.Equal([true, true, true, false], first.Select(o => o.Succeeded));
        Assert.Equal(6, (await StockAsync(a)).Num("quantity"));
        Assert.Equal(5, (await StockAsync(b)).Num("quantity"));
        Assert.Equal(3, (await MovementsAsync()).Count);

        // Another job's rows are new movements.
        AssertAllSucceeded(await ImportAsync(Kind, ImportMode.Create, [chunk[0]], jobId: "job2"));
        Assert.Equal(16, (await StockAsync(a)).Num("quantity"));
    }

    [Fact]
    public async Task DryRunForecastsStockFromTheChunksEarlierRowsAndWritesNothing()
    {
        var item = (await Admin.CreateItemAsync("A", extra: new { reorderPoint = 5 })).Id();
        var (_, etag) = await ItemWithETagAsync(item);
        var audit = (await AuditAsync()).Count;

        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("sku", "A"), ("type", "in"), ("quantity", "10")),
            Row(3, ("sku", "A"), ("type", "out"), ("quantity", "8")),
            Row(4, ("sku", "A"), ("type", "out"), ("quantity", "3")),
            Row(5, ("sku", "A"), ("type", "in"), ("quantity", "1"), ("toLocationId", "Nowhere")),
        ], dryRun: true);

        Assert.True(outcomes[0].Succeeded && outcomes[1].Succeeded);
        AssertFailed(outcomes[2], "quantity", "3", "Only 2 in stock at no location; cannot take 3.");
        AssertFailed(outcomes[3], "toLocationId", "Nowhere", "There is no location Nowhere in this tenant.");
        Assert.Equal(0, (await StockAsync(item)).Num("quantity"));
        Assert.Empty(await MovementsAsync());
        Assert.Equal(etag, (await ItemWithETagAsync(item)).ETag);
        Assert.Equal(audit, (await AuditAsync()).Count);
    }

    [Fact]
    public async Task AnotherTenantsItemsAndLocationsAreNotFound()
    {
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        var theirItem = (await otherAdmin.CreateItemAsync("THEIRS")).Id();
        var theirLocation = await otherAdmin.CreateLocationIdAsync("Their shelf");
        await Admin.CreateItemAsync("MINE");

        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("sku", "THEIRS"), ("type", "in"), ("quantity", "1")),
            Row(3, ("itemId", theirItem), ("type", "in"), ("quantity", "1")),
            Row(4, ("sku", "MINE"), ("type", "in"), ("quantity", "1"), ("toLocationId", theirLocation)),
            Row(5, ("sku", "MINE"), ("type", "in"), ("quantity", "1"), ("toLocationId", "Their shelf")),
        ]);

        AssertFailed(outcomes[0], "sku", "THEIRS", "No item of this tenant has the SKU THEIRS.");
        AssertFailed(outcomes[1], "itemId", theirItem, "No item of this tenant has this id.");
        AssertFailed(outcomes[2], "toLocationId", theirLocation, $"There is no location {theirLocation} in this tenant.");
        AssertFailed(outcomes[3], "toLocationId", "Their shelf", "There is no location Their shelf in this tenant.");
        Assert.Equal(0, (await otherAdmin.GetJsonAsync($"{InventoryApi.Items}/{theirItem}")).Num("quantity"));
    }
}
