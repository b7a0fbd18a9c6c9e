using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Housekeeping;
using Platform.Functions.Inventory;
using Platform.Functions.Triggers;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class AlertTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private async Task<JsonElement> MoveAsync(string itemId, string type, double quantity) =>
        await (await Admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{itemId}/movements", new { type, quantity })).ReadJsonAsync(HttpStatusCode.Created);

    private Task<IReadOnlyList<JsonElement>> AlertsAsync(string query = "") => Admin.ListAsync($"/api/v1/inventory/alerts{query}");

    [Fact]
    public async Task LowStockRaisesOneAlertThatClosesItselfWhenRestocked()
    {
        // A new item holds nothing, so with a reorder point it starts out low; the first delivery clears that.
        var item = (await Admin.CreateItemAsync("LOW-1", extra: new { reorderPoint = 5 })).Id();
        var atCreation = Assert.Single(await AlertsAsync());
        await MoveAsync(item, "in", 10);
        Assert.Empty(await AlertsAsync());

        await MoveAsync(item, "out", 6);
        await MoveAsync(item, "out", 1);
        var open = await AlertsAsync();
        await MoveAsync(item, "in", 10);

        var alert = Assert.Single(open);
        Assert.Equal("low_stock", alert.Str("kind"));
        Assert.Equal("open", alert.Str("status"));
        Assert.Equal(item, alert.Str("itemId"));
        Assert.Equal(4, alert.Num("quantity"));
        Assert.Empty(await AlertsAsync());
        var closed = await AlertsAsync("?status=closed");
        // Compared as a set: the fake clock stands still, so both ids share a millisecond and their order is random.
        Assert.Equal(new[] { atCreation.Id(), alert.Id() }.Order(StringComparer.Ordinal), closed.Select(a => a.Id()).Order(StringComparer.Ordinal));
        Assert.Equal(0, atCreation.Num("quantity"));
        Assert.Equal(["inventory.low_stock"], await Admin.AuditActionsAsync(alert.Id()));

        // Falling low again is a new condition, so a new alert.
        await MoveAsync(item, "out", 10);
        Assert.NotEqual(alert.Id(), Assert.Single(await AlertsAsync()).Id());
    }

    [Fact]
    public async Task ConcurrentMovementsIntoLowStockRaiseOneAlert()
    {
        var item = (await Admin.CreateItemAsync("LOW-2", extra: new { reorderPoint = 10 })).Id();
        await MoveAsync(item, "in", 20);

        await Task.WhenAll(Enumerable.Range(0, 15).Select(_ => MoveAsync(item, "out", 1)));

        Assert.Equal(5, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
        // Raised once, by whichever movement first found the item at or below 10 (the quantity it saw is recorded).
        Assert.InRange(Assert.Single(await AlertsAsync()).Num("quantity"), 5, 10);
        // The other one was raised at creation (nothing in stock yet) and closed by the delivery.
        Assert.Equal(2, (await AlertsAsync("?status=all")).Count);
    }

    [Fact]
    public async Task AnItemExpiringWithinTheWindowRaisesAnExpiryAlertAndMovingTheDateAwayClosesIt()
    {
        var item = (await Admin.CreateItemAsync("EXP-1", extra: new { expiresAt = Clock.GetUtcNow().AddDays(10) })).Id();

        var alert = Assert.Single(await AlertsAsync());
        var patched = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Items}/{item}", new { expiresAt = Clock.GetUtcNow().AddDays(90) });

        Assert.Equal("expiring", alert.Str("kind"));
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Empty(await AlertsAsync());
        Assert.Equal(["inventory.expiring"], await Admin.AuditActionsAsync(alert.Id()));
    }

    [Fact]
    public async Task TheDailyScanRaisesExpiryAlertsForItemsThatTimeBroughtIntoTheWindow()
    {
        var item = (await Admin.CreateItemAsync("EXP-2", extra: new { expiresAt = Clock.GetUtcNow().AddDays(45) })).Id();
        Assert.Empty(await AlertsAsync());

        Clock.Advance(TimeSpan.FromDays(20));
        await SignInAdminAgainAsync(); // The old access token expired meanwhile.
        await using (var scope = App.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<InventoryExpiryScan>().RunAsync(new TimerInvocation(false, null, null), Ct);
        }

        var alert = Assert.Single(await AlertsAsync());
        Assert.Equal("expiring", alert.Str("kind"));
        Assert.Equal(item, alert.Str("itemId"));
    }

    [Fact]
    public async Task AClosedAlertStaysAsHistoryForItsRetentionAndThenHousekeepingDeletesIt()
    {
        var item = (await Admin.CreateItemAsync("OLD-1", extra: new { reorderPoint = 5 })).Id();
        var closed = Assert.Single(await AlertsAsync()).Id();
        await MoveAsync(item, "in", 10);
        await MoveAsync(item, "out", 8);
        var open = Assert.Single(await AlertsAsync()).Id();

        // The default retention is 90 days after closing; an open alert never expires.
        Clock.Advance(TimeSpan.FromDays(90) - TimeSpan.FromMinutes(1));
        await RunHousekeepingAsync();
        await SignInAdminAgainAsync();
        Assert.Equal(new[] { closed, open }.Order(StringComparer.Ordinal), (await AlertsAsync("?status=all")).Select(a => a.Id()).Order(StringComparer.Ordinal));

        Clock.Advance(TimeSpan.FromMinutes(2));
        await RunHousekeepingAsync();
        await SignInAdminAgainAsync();
        Assert.Equal([open], (await AlertsAsync("?status=all")).Select(a => a.Id()));
    }

    private async Task RunHousekeepingAsync()
    {
        await using var scope = App.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<StorageHousekeeping>().RunAsync(new TimerInvocation(false, null, null), Ct);
    }

    [Fact]
    public async Task AcknowledgingKeepsTheAlertUntilItsConditionClears()
    {
        var item = (await Admin.CreateItemAsync("ACK-1", extra: new { reorderPoint = 1 })).Id();
        var alert = Assert.Single(await AlertsAsync()).Id();

        var acknowledged = await Admin.SendAsync(HttpMethod.Post, $"/api/v1/inventory/alerts/{alert}/acknowledge");
        await MoveAsync(item, "in", 1);

        var body = await acknowledged.ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal("acknowledged", body.Str("status"));
        Assert.Equal(Tenant.AdminId, body.Str("acknowledgedBy"));
        Assert.Equal("acknowledged", Assert.Single(await AlertsAsync()).Str("status"));
        await MoveAsync(item, "in", 5);
        Assert.Empty(await AlertsAsync());
        await (await Admin.SendAsync(HttpMethod.Post, $"/api/v1/inventory/alerts/{alert}/acknowledge")).ReadProblemAsync(409, "alert_closed");
    }

    [Fact]
    public async Task AnotherTenantsAlertAnswers404()
    {
        var theirs = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(theirs);
        await them.CreateItemAsync("THEIRS-1", extra: new { reorderPoint = 1 });
        var alert = Assert.Single(await them.ListAsync("/api/v1/inventory/alerts")).Id();

        await (await Admin.SendAsync(HttpMethod.Post, $"/api/v1/inventory/alerts/{alert}/acknowledge")).ReadProblemAsync(404, "not_found");
        Assert.Empty(await AlertsAsync("?status=all"));
        Assert.Equal("open", Assert.Single(await them.ListAsync("/api/v1/inventory/alerts")).Str("status"));
    }
}
