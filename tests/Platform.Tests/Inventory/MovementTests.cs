using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Functions.Inventory;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class MovementTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private Task<HttpResponseMessage> MoveAsync(string itemId, object body, string? idempotencyKey = null) =>
        Admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{itemId}/movements", body, idempotencyKey: idempotencyKey);

    private async Task<JsonElement> MovedAsync(string itemId, object body) => await (await MoveAsync(itemId, body)).ReadJsonAsync(HttpStatusCode.Created);

    private async Task<IReadOnlyList<MovementEntity>> MovementRowsAsync(string itemId)
    {
        var rows = new List<MovementEntity>();
        await foreach (var row in App.Storage.TenantTable(InventoryStore.TableName).For(new TenantId(Tenant.Id))
            .QueryAsync<MovementEntity>(MovementEntity.ItemPrefixFor(itemId), cancellationToken: Ct))
        {
            rows.Add(row);
        }

        return rows;
    }

    [Fact]
    public async Task AnInMovementAnswers201WithTheMovementAndTheNewQuantity()
    {
        var bin = await Admin.CreateLocationIdAsync("Bin");
        var item = (await Admin.CreateItemAsync("IN-1", extra: new { locationId = bin })).Id();

        var response = await MoveAsync(item, new { type = "in", quantity = 12.5, reason = "delivery", batch = "B-7", supplier = "Acme", reference = "PO-1" });

        var body = await response.ReadJsonAsync(HttpStatusCode.Created);
        var movement = body.GetProperty("movement");
        Assert.Equal(12.5, body.Num("quantity"));
        Assert.Equal("in", movement.Str("type"));
        Assert.Equal(12.5, movement.Num("quantity"));
        Assert.Equal(12.5, movement.Num("delta"));
        Assert.Equal(bin, movement.Str("toLocationId"));
        Assert.Equal("B-7", movement.Str("batch"));
        Assert.Equal($"{InventoryApi.Movements}/{movement.Id()}", response.Headers.Location?.OriginalString);
        Assert.Equal("in", (await Admin.GetJsonAsync($"{InventoryApi.Movements}/{movement.Id()}")).Str("type"));
        Assert.Equal(12.5, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
        var stock = await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}/stock");
        Assert.Equal(12.5, stock.Num("quantity"));
        Assert.Equal([(bin, 12.5)], stock.GetProperty("locations").EnumerateArray().Select(s => (s.Str("locationId"), s.Num("quantity"))));
        Assert.Contains("inventory.movement.created", await Admin.AuditActionsAsync(movement.Id()));
    }

    [Fact]
    public async Task OutTransferAndAdjustKeepStockRowsAndTheItemQuantityInStep()
    {
        var a = await Admin.CreateLocationIdAsync("A");
        var b = await Admin.CreateLocationIdAsync("B");
        var item = (await Admin.CreateItemAsync("MIX-1", extra: new { locationId = a })).Id();

        await MovedAsync(item, new { type = "in", quantity = 10 });
        var transfer = await MovedAsync(item, new { type = "transfer", quantity = 4, toLocationId = b });
        var taken = await MovedAsync(item, new { type = "out", quantity = 1, fromLocationId = b });
        var counted = await MovedAsync(item, new { type = "adjust", quantity = 5, toLocationId = a });

        Assert.Equal(10, transfer.Num("quantity"));
        Assert.Equal(0, transfer.GetProperty("movement").Num("delta"));
        Assert.Equal(9, taken.Num("quantity"));
        Assert.Equal(8, counted.Num("quantity"));
        Assert.Equal(-1, counted.GetProperty("movement").Num("delta"));
        var stock = (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}/stock")).GetProperty("locations").EnumerateArray()
            .ToDictionary(s => s.Str("locationId")!, s => s.Num("quantity"));
        Assert.Equal(5, stock[a]);
        Assert.Equal(3, stock[b]);
        Assert.Equal(8, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
        Assert.Equal(4, (await MovementRowsAsync(item)).Count);
    }

    [Fact]
    public async Task TakingMoreThanIsInStockIs409InsufficientStockAndChangesNothing()
    {
        var item = (await Admin.CreateItemAsync("LOW-1")).Id();
        await MovedAsync(item, new { type = "in", quantity = 2 });
        var a = await Admin.CreateLocationIdAsync("A");

        var tooMany = await MoveAsync(item, new { type = "out", quantity = 3 });
        var fromEmpty = await MoveAsync(item, new { type = "transfer", quantity = 1, fromLocationId = a, toLocationId = (string?)null });
        var transferEmpty = await MoveAsync(item, new { type = "transfer", quantity = 1, fromLocationId = a, toLocationId = await Admin.CreateLocationIdAsync("B") });

        await tooMany.ReadProblemAsync(409, "insufficient_stock");
        await fromEmpty.ReadProblemAsync(400, "validation_failed");
        await transferEmpty.ReadProblemAsync(409, "insufficient_stock");
        Assert.Equal(2, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
        Assert.Single(await MovementRowsAsync(item));
    }

    [Fact]
    public async Task ATransferToTheSameOrAMissingLocationIsRefusedWithACode()
    {
        var a = await Admin.CreateLocationIdAsync("A");
        var item = (await Admin.CreateItemAsync("TR-1", extra: new { locationId = a })).Id();
        await MovedAsync(item, new { type = "in", quantity = 5 });

        var same = await MoveAsync(item, new { type = "transfer", quantity = 1, toLocationId = a });
        var missing = await MoveAsync(item, new { type = "transfer", quantity = 1, toLocationId = "01JZZZZZZZZZZZZZZZZZZZZZZZ" });

        await same.ReadProblemAsync(400, "same_location");
        await missing.ReadProblemAsync(400, "location_not_found");
        Assert.Single(await MovementRowsAsync(item));
    }

    [Theory]
    [InlineData("{\"type\":\"in\",\"quantity\":0}")]
    [InlineData("{\"type\":\"in\",\"quantity\":-1}")]
    [InlineData("{\"type\":\"in\",\"quantity\":1e12}")]
    [InlineData("{\"type\":\"in\"}")]
    [InlineData("{\"type\":\"adjust\",\"quantity\":-0.5}")]
    [InlineData("{\"type\":\"steal\",\"quantity\":1}")]
    public async Task AQuantityThatIsNotPositiveFiniteAndWithinTheMaximumIs400ValidationFailed(string body)
    {
        var item = (await Admin.CreateItemAsync("Q-1")).Id();

        var response = await Admin.PostAsync($"{InventoryApi.Items}/{item}/movements", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        await response.ReadProblemAsync(400, "validation_failed");
        Assert.Empty(await MovementRowsAsync(item));
    }

    [Fact]
    public async Task NaNSentAsTextIsRefusedAs400ValidationFailedOnQuantity()
    {
        var item = (await Admin.CreateItemAsync("Q-2")).Id();

        var response = await Admin.PostAsync($"{InventoryApi.Items}/{item}/movements",
            new StringContent("{\"type\":\"in\",\"quantity\":\"NaN\"}", System.Text.Encoding.UTF8, "application/json"), Ct);

        // The web JSON defaults read numbers from strings, so "NaN" binds; the finite check refuses it.
        var problem = await response.ReadProblemAsync(400, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty("quantity", out _));
        Assert.Empty(await MovementRowsAsync(item));
    }

    [Fact]
    public async Task FiftyConcurrentOutsOfOneOnAnItemHoldingTwentyLetExactlyTwentyThrough()
    {
        var item = (await Admin.CreateItemAsync("RUSH-1")).Id();
        await MovedAsync(item, new { type = "in", quantity = 20 });

        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => MoveAsync(item, new { type = "out", quantity = 1 })));

        Assert.Equal(20, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        var refused = responses.Where(r => r.StatusCode != HttpStatusCode.Created).ToList();
        Assert.Equal(30, refused.Count);
        foreach (var response in refused)
        {
            await response.ReadProblemAsync(409, "insufficient_stock");
        }

        Assert.Equal(0, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
        Assert.Equal(20, (await MovementRowsAsync(item)).Count(m => m.Type == "out"));
        Assert.Equal(0, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}/stock")).GetProperty("locations")[0].Num("quantity"));
    }

    [Fact]
    public async Task TheSameIdempotencyKeyRecordsOneMovementAndAnotherBodyIs422()
    {
        var item = (await Admin.CreateItemAsync("IDEM-1")).Id();

        var first = await MoveAsync(item, new { type = "in", quantity = 3 }, "key-1");
        var again = await MoveAsync(item, new { type = "in", quantity = 3 }, "key-1");
        var other = await MoveAsync(item, new { type = "in", quantity = 4 }, "key-1");

        var firstBody = await first.ReadJsonAsync(HttpStatusCode.Created);
        var againBody = await again.ReadJsonAsync(HttpStatusCode.Created);
        Assert.Equal(firstBody.GetProperty("movement").Id(), againBody.GetProperty("movement").Id());
        await other.ReadProblemAsync(422, "idempotency_key_reused");
        Assert.Single(await MovementRowsAsync(item));
        Assert.Equal(3, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
    }

    [Fact]
    public async Task AnArchivedItemTakesNoMovements()
    {
        var item = (await Admin.CreateItemAsync("ARCH-1")).Id();
        await MovedAsync(item, new { type = "in", quantity = 3 });
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{InventoryApi.Items}/{item}", Ct)).StatusCode);

        await (await MoveAsync(item, new { type = "out", quantity = 1 })).ReadProblemAsync(409, "item_archived");

        Assert.Equal(3, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}/stock")).Num("quantity"));
    }

    [Fact]
    public async Task ALocationHoldingStockCannotBeDeletedUntilItIsEmptied()
    {
        var a = await Admin.CreateLocationIdAsync("A");
        var b = await Admin.CreateLocationIdAsync("B");
        var item = (await Admin.CreateItemAsync("LOC-1", extra: new { locationId = a })).Id();
        await MovedAsync(item, new { type = "in", quantity = 2 });

        var refused = await Admin.DeleteAsync($"{InventoryApi.Locations}/{a}", Ct);
        await MovedAsync(item, new { type = "transfer", quantity = 2, toLocationId = b });
        var deleted = await Admin.DeleteAsync($"{InventoryApi.Locations}/{a}", Ct);

        await refused.ReadProblemAsync(409, "location_not_empty");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await (await Admin.DeleteAsync($"{InventoryApi.Locations}/{b}", Ct)).ReadProblemAsync(409, "location_not_empty");
    }

    [Fact]
    public async Task MovementListsFilterByTypeItemBatchSupplierAndDateAndPage()
    {
        var hammer = (await Admin.CreateItemAsync("H-1")).Id();
        var saw = (await Admin.CreateItemAsync("S-1")).Id();
        await MovedAsync(hammer, new { type = "in", quantity = 5, batch = "B1", supplier = "Acme" });
        var before = Clock.GetUtcNow();
        Clock.Advance(TimeSpan.FromMinutes(1));
        await MovedAsync(hammer, new { type = "out", quantity = 1 });
        await MovedAsync(saw, new { type = "in", quantity = 2, batch = "B2" });

        var all = await Admin.ListAsync(InventoryApi.Movements);
        var outs = await Admin.ListAsync($"{InventoryApi.Movements}?type=out");
        var ofSaw = await Admin.ListAsync($"{InventoryApi.Movements}?itemId={saw}");
        var ofHammer = await Admin.ListAsync($"{InventoryApi.Items}/{hammer}/movements");
        var batch = await Admin.ListAsync($"{InventoryApi.Movements}?batch=B1&supplier=Acme");
        var later = await Admin.ListAsync($"{InventoryApi.Movements}?from={Uri.EscapeDataString(before.AddSeconds(1).ToString("O"))}");
        var first = await Admin.GetJsonAsync($"{InventoryApi.Movements}?pageSize=2");
        var second = await Admin.GetJsonAsync($"{InventoryApi.Movements}?pageSize=2&continuationToken={Uri.EscapeDataString(first.Str("continuationToken")!)}");

        Assert.Equal(3, all.Count);
        Assert.Equal(["out"], outs.Select(m => m.Str("type")));
        Assert.Equal([saw], ofSaw.Select(m => m.Str("itemId")));
        Assert.Equal(["in", "out"], ofHammer.Select(m => m.Str("type")));
        Assert.Equal(["B1"], batch.Select(m => m.Str("batch")));
        Assert.Equal(2, later.Count);
        Assert.Equal(2, first.GetProperty("items").GetArrayLength());
        Assert.Single(second.GetProperty("items").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, second.GetProperty("continuationToken").ValueKind);
        await (await Admin.GetAsync($"{InventoryApi.Movements}?type=steal", Ct)).ReadProblemAsync(400, "validation_failed");
        await (await Admin.GetAsync($"{InventoryApi.Movements}?pageSize=1&type=in&continuationToken={Uri.EscapeDataString(first.Str("continuationToken")!)}", Ct))
            .ReadProblemAsync(400, "invalid_continuation_token");
    }

    [Fact]
    public async Task AnotherTenantsItemAndMovementsAnswer404()
    {
        var theirs = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(theirs);
        var item = (await them.CreateItemAsync("THEIRS-1")).Id();
        var movement = (await (await them.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{item}/movements", new { type = "in", quantity = 5 }))
            .ReadJsonAsync(HttpStatusCode.Created)).GetProperty("movement").Id();

        await (await MoveAsync(item, new { type = "out", quantity = 5 })).ReadProblemAsync(404, "not_found");
        await (await Admin.GetAsync($"{InventoryApi.Items}/{item}/movements", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.GetAsync($"{InventoryApi.Items}/{item}/stock", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.GetAsync($"{InventoryApi.Movements}/{movement}", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Empty(await Admin.ListAsync(InventoryApi.Movements));
        Assert.Empty(await Admin.ListAsync($"{InventoryApi.Movements}?itemId={item}"));
        Assert.Equal(5, (await them.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
    }
}
