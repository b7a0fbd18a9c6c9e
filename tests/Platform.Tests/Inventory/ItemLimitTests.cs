using System.Net;
using Platform.Functions.Inventory;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

/// <summary>
/// The per-tenant item cap (<c>Platform:Inventory:MaxItemsPerTenant</c>, here 2): without it one tenant could create
/// items until storage and every instance's in-memory list gave out.
/// </summary>
public sealed class ItemLimitTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const int Cap = 2;

    protected override bool SignsInAdmin => true;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Platform:Inventory:MaxItemsPerTenant"] = $"{Cap}" };

    [Fact]
    public async Task ACreateBeyondTheCapIsRefusedWithItemLimitReached()
    {
        await Admin.CreateItemAsync("SKU-1");
        await Admin.CreateItemAsync("SKU-2");

        var refused = await Admin.PostItemAsync(new { sku = "SKU-3", name = "Three" });

        await refused.ReadProblemAsync(409, "item_limit_reached");
        Assert.Equal(["SKU-1", "SKU-2"], (await Admin.ListAsync($"{InventoryApi.Items}?includeArchived=true")).Select(i => i.Str("sku")).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task ArchivingAnItemFreesASlot()
    {
        var first = await Admin.CreateItemAsync("SKU-1");
        await Admin.CreateItemAsync("SKU-2");

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{InventoryApi.Items}/{first.Id()}", Ct)).StatusCode);
        await Admin.CreateItemAsync("SKU-3");
        await (await Admin.PostItemAsync(new { sku = "SKU-4", name = "Four" })).ReadProblemAsync(409, "item_limit_reached");
    }

    [Fact]
    public async Task ParallelCreatesForTheLastSlotOnTwoInstancesLetExactlyOneThrough()
    {
        await Admin.CreateItemAsync("SKU-1");
        await using var other = await new PlatformApp(Azurite, App.Prefix, Settings).ReadyAsync();
        using var otherAdmin = await other.SignedInClientAsync(Tenant);

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            (i % 2 == 0 ? Admin : otherAdmin).PostItemAsync(new { sku = $"RACE-{i}", name = $"Racer {i}" })));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
        {
            await refused.ReadProblemAsync(409, "item_limit_reached");
        }

        Assert.Equal(Cap, (await Admin.ListAsync(InventoryApi.Items)).Count);
    }

    [Fact]
    public async Task ATenantWithoutACounterRowIsCountedOnceAndHeldToTheCap()
    {
        var first = await Admin.CreateItemAsync("SKU-1");
        await Admin.CreateItemAsync("SKU-2");

        // A tenant from before the counter: no counter row beside its items.
        await App.Storage.TenantTable(InventoryStore.TableName).For(new TenantId(Tenant.Id)).DeleteAsync(InventoryStore.ItemCounterKey, cancellationToken: Ct);

        await (await Admin.PostItemAsync(new { sku = "SKU-3", name = "Three" })).ReadProblemAsync(409, "item_limit_reached");
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{InventoryApi.Items}/{first.Id()}", Ct)).StatusCode);
        await Admin.CreateItemAsync("SKU-3");
        await (await Admin.PostItemAsync(new { sku = "SKU-4", name = "Four" })).ReadProblemAsync(409, "item_limit_reached");
    }
}
