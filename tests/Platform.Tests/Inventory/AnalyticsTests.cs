using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Inventory;
using Platform.Functions.Query;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class AnalyticsTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string Analytics = "/api/v1/inventory/analytics";
    protected override bool SignsInAdmin => true;

    private async Task MoveAsync(string itemId, object body) =>
        await (await Admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{itemId}/movements", body)).ReadJsonAsync(HttpStatusCode.Created);

    private static Dictionary<string, JsonElement> Groups(JsonElement analytics) =>
        analytics.GetProperty("groups").EnumerateArray().ToDictionary(g => g.Str("key") ?? "(none)");

    [Fact]
    public async Task GroupsByCategoryAndLocationWithValuesDeadStockAndTurnover()
    {
        var a = await Admin.CreateLocationIdAsync("A");
        var b = await Admin.CreateLocationIdAsync("B");
        var hammer = (await Admin.CreateItemAsync("H-1", "Hammer", new { category = "tools", unitCost = 10.0, locationId = a })).Id();
        var saw = (await Admin.CreateItemAsync("S-1", "Saw", new { category = "tools", unitCost = 20.0, locationId = a })).Id();
        var glue = (await Admin.CreateItemAsync("G-1", "Glue", new { category = "supplies", unitCost = 1.5, locationId = b })).Id();
        await MoveAsync(hammer, new { type = "in", quantity = 10 });
        await MoveAsync(saw, new { type = "in", quantity = 2 });
        await MoveAsync(glue, new { type = "in", quantity = 100 });
        await MoveAsync(saw, new { type = "transfer", quantity = 1, toLocationId = b });

        Clock.Advance(TimeSpan.FromDays(100));
        await SignInAdminAgainAsync(); // The first access token expired meanwhile.
        await MoveAsync(hammer, new { type = "out", quantity = 5 });

        var byCategory = await Admin.GetJsonAsync($"{Analytics}?groupBy=category");
        var byLocation = await Admin.GetJsonAsync($"{Analytics}?groupBy=location");

        Assert.Equal(240, byCategory.Num("totalValue"));
        var categories = Groups(byCategory);
        Assert.Equal((2, 7.0, 90.0), (categories["tools"].GetProperty("items").GetInt32(), categories["tools"].Num("quantity"), categories["tools"].Num("value")));
        Assert.Equal((1, 100.0, 150.0), (categories["supplies"].GetProperty("items").GetInt32(), categories["supplies"].Num("quantity"), categories["supplies"].Num("value")));
        var locations = Groups(byLocation);
        Assert.Equal((2, 6.0, 70.0), (locations[a].GetProperty("items").GetInt32(), locations[a].Num("quantity"), locations[a].Num("value")));
        Assert.Equal((2, 101.0, 170.0), (locations[b].GetProperty("items").GetInt32(), locations[b].Num("quantity"), locations[b].Num("value")));
        Assert.Equal(240, byLocation.Num("totalValue"));
        // Glue and the saw have not gone out for 100 days; the hammer just did.
        Assert.Equal([glue, saw], byCategory.GetProperty("deadStock").EnumerateArray().Select(d => d.Str("itemId")));
        var turnover = Assert.Single(byCategory.GetProperty("turnover").EnumerateArray());
        Assert.Equal((hammer, 5.0, 1.0), (turnover.Str("itemId"), turnover.Num("unitsOut"), turnover.Num("turnover")));
        await (await Admin.GetAsync($"{Analytics}?groupBy=colour", Ct)).ReadProblemAsync(400, "validation_failed");
    }

    [Fact]
    public async Task AnotherTenantsStockIsNotCounted()
    {
        var theirs = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(theirs);
        var item = (await them.CreateItemAsync("THEIRS-1", extra: new { unitCost = 5.0, category = "x" })).Id();
        await (await them.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{item}/movements", new { type = "in", quantity = 4 })).ReadJsonAsync(HttpStatusCode.Created);

        var mine = await Admin.GetJsonAsync($"{Analytics}?groupBy=location");

        Assert.Equal(0, mine.Num("totalValue"));
        Assert.Empty(mine.GetProperty("groups").EnumerateArray());
        Assert.Equal(20, (await them.GetJsonAsync(Analytics)).Num("totalValue"));
    }

    [Fact]
    public async Task AnotherInstanceCatchesUpWithMovementsAndItemsRecordedHere()
    {
        var hammer = (await Admin.CreateItemAsync("H-1", "Hammer", new { category = "tools", unitCost = 10.0 })).Id();
        await using var other = await new PlatformApp(Azurite, App.Prefix, services: s => s.AddSingleton<TimeProvider>(Clock)).ReadyAsync();
        using var elsewhere = other.CreateClient((await App.LoginAsync(Tenant)).AccessToken);
        Assert.Equal(0, (await elsewhere.GetJsonAsync(Analytics)).Num("totalValue"));

        await MoveAsync(hammer, new { type = "in", quantity = 3 });
        var glue = (await Admin.CreateItemAsync("G-1", "Glue", new { category = "supplies", unitCost = 2.0 })).Id();
        await MoveAsync(glue, new { type = "in", quantity = 5 });
        Clock.Advance(ListProjection<ItemEntity, ItemListItem>.RefreshEvery);

        Assert.Equal(40, (await elsewhere.GetJsonAsync(Analytics)).Num("totalValue"));
        var listed = await elsewhere.ListAsync($"{InventoryApi.Items}?sort=sku");
        Assert.Equal([(glue, 5.0), (hammer, 3.0)], listed.Select(i => (i.Id(), i.Num("quantity"))));
    }
}
