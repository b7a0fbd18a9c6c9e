using System.Net;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class ReorderSuggestionTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string Suggestions = "/api/v1/inventory/reorder-suggestions";
    protected override bool SignsInAdmin => true;

    private async Task MoveAsync(string itemId, string type, double quantity) =>
        await (await Admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{itemId}/movements", new { type, quantity })).ReadJsonAsync(HttpStatusCode.Created);

    [Fact]
    public async Task ItemsAtOrBelowTheReorderPointAreSuggestedFromRecentUsage()
    {
        var busy = (await Admin.CreateItemAsync("BUSY-1", extra: new { reorderPoint = 10, reorderQuantity = 20, unitCost = 2.0 })).Id();
        var idle = (await Admin.CreateItemAsync("IDLE-1", extra: new { reorderPoint = 5, reorderQuantity = 50 })).Id();
        var stocked = (await Admin.CreateItemAsync("FULL-1", extra: new { reorderPoint = 5 })).Id();
        await (await Admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{busy}/movements", new { type = "in", quantity = 100 })).ReadJsonAsync(HttpStatusCode.Created);
        await MoveAsync(stocked, "in", 100);
        // 90 out over ten days: 3 a day averaged over 30 days, 1 a day over 90.
        for (var day = 0; day < 10; day++)
        {
            Clock.Advance(TimeSpan.FromDays(1));
            await SignInAdminAgainAsync(); // Access tokens do not outlive a day.
            await MoveAsync(busy, "out", 9);
        }

        var page = await Admin.GetJsonAsync(Suggestions);

        var items = page.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal([busy, idle], items.Select(s => s.Str("itemId")));
        var first = items[0];
        Assert.Equal(10, first.Num("quantity"));
        Assert.Equal(3, first.Num("averageDailyUsage30"));
        Assert.Equal(1, first.Num("averageDailyUsage90"));
        Assert.Equal(3.3, first.Num("daysOfStockLeft"));
        // Reorder point 10 + 30 days at 3 a day - the 10 held = 90, above the reorder quantity of 20.
        Assert.Equal(90, first.Num("suggestedQuantity"));
        Assert.Equal(180, first.Num("estimatedCost"));
        Assert.Equal(50, items[1].Num("suggestedQuantity"));
        Assert.Equal(JsonValueKind.Null, items[1].GetProperty("daysOfStockLeft").ValueKind);
    }

    [Fact]
    public async Task AnotherTenantsItemsAreNeverSuggested()
    {
        var theirs = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(theirs);
        await them.CreateItemAsync("THEIRS-1", extra: new { reorderPoint = 5 });

        Assert.Empty((await Admin.GetJsonAsync(Suggestions)).GetProperty("items").EnumerateArray());
        Assert.Single((await them.GetJsonAsync(Suggestions)).GetProperty("items").EnumerateArray());
    }
}
