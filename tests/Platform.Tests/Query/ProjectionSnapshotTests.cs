using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Storage.Blobs;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Inventory;
using Platform.Functions.Query;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;

namespace Platform.Tests.Query;

/// <summary>
/// A large tenant's items and stock are saved as snapshots, so an instance that never held the tenant loads them with
/// one download and the change log after it instead of a scan - and never serves a snapshot it cannot prove current.
/// Two app instances share one storage prefix; the snapshot threshold is lowered to a few rows.
/// </summary>
public sealed class ProjectionSnapshotTests(Azurite azurite) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Dictionary<string, string?> FewRowsMakeASnapshot = new() { ["Platform:Lists:SnapshotMinRows"] = "3" };

    private readonly List<PlatformApp> _apps = [];

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }

        if (_apps.Count > 0)
        {
            await azurite.RemoveAsync(_apps[0].Prefix);
        }
    }

    private async Task<PlatformApp> InstanceAsync(string? prefix = null)
    {
        var app = await new PlatformApp(azurite, prefix, FewRowsMakeASnapshot).ReadyAsync();
        _apps.Add(app);
        return app;
    }

    private static ListProjection<ItemEntity, ItemListItem> Items(PlatformApp app) => app.Services.GetRequiredService<InventoryProjections>().Items;

    private static ListProjection<StockEntity, StockEntity> Stock(PlatformApp app) => app.Services.GetRequiredService<InventoryProjections>().Stock;

    private static BlobClient SnapshotOf(PlatformApp app, TestTenant tenant, string keyPrefix) =>
        app.Services.GetRequiredService<ProjectionSnapshots>().BlobFor(new TenantId(tenant.Id), InventoryStore.TableName, keyPrefix);

    /// <summary>The tenant's items as the list route shows them: id, name and quantity, in id order.</summary>
    private static async Task<string[]> ItemsListedAsync(HttpClient client) =>
        [.. (await client.ListAsync(InventoryApi.Items + "?pageSize=100")).Select(i => $"{i.Id()} {i.Str("name")} {i.Num("quantity")}").Order(StringComparer.Ordinal)];

    private static async Task<string> ValueByLocationAsync(HttpClient client) =>
        (await client.GetJsonAsync("/api/v1/inventory/analytics?groupBy=location")).GetProperty("groups").GetRawText();

    /// <summary>Five items with stock at a location, listed once on <paramref name="app"/> so that it scans and saves both snapshots.</summary>
    private static async Task<(List<string> Ids, string Location)> StockedItemsSavedAsync(PlatformApp app, HttpClient admin, TestTenant tenant)
    {
        var location = await admin.CreateLocationIdAsync("Main store");
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var id = (await admin.CreateItemAsync($"SNAP-{i}", extra: new { unitCost = 2.5 })).Id();
            var movement = await admin.PostAsJsonAsync($"{InventoryApi.Items}/{id}/movements", new { type = "in", quantity = 10 + i, toLocationId = location }, Ct);
            Assert.Equal(HttpStatusCode.Created, movement.StatusCode);
            ids.Add(id);
        }

        Assert.Equal(5, (await ItemsListedAsync(admin)).Length);
        await ValueByLocationAsync(admin);
        await Eventually.Until(() => Task.FromResult(app.Services.GetRequiredService<ProjectionSnapshots>().Saved), saved => saved >= 2, "the items and stock snapshots to be saved");
        foreach (var prefix in new[] { ItemEntity.KeyPrefix, StockEntity.KeyPrefix })
        {
            Assert.True(await SnapshotOf(app, tenant, prefix).ExistsAsync(Ct));
        }

        return (ids, location);
    }

    /// <summary>Waits for an instance that scanned to have saved its snapshot, so the save cannot land after what a test writes next.</summary>
    private static Task<long> SavedAsync(PlatformApp app) =>
        Eventually.Until(() => Task.FromResult(app.Services.GetRequiredService<ProjectionSnapshots>().Saved), saved => saved >= 1, "the scan's snapshot to be saved");

    [Fact]
    public async Task AColdInstanceServesTheSnapshotAndEveryWriteMadeAfterItWithoutAScan()
    {
        var first = await InstanceAsync();
        var tenant = await first.SignUpAsync();
        var admin = await first.SignedInClientAsync(tenant);
        var (ids, location) = await StockedItemsSavedAsync(first, admin, tenant);

        // Written after the snapshot: a rename, a movement, a new item and an archived one. Only the log has them.
        Assert.Equal(HttpStatusCode.OK, (await admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Items}/{ids[0]}", new { name = "Renamed after the snapshot" })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync($"{InventoryApi.Items}/{ids[1]}/movements", new { type = "out", quantity = 3, fromLocationId = location }, Ct)).StatusCode);
        await admin.CreateItemAsync("SNAP-NEW");
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"{InventoryApi.Items}/{ids[2]}", Ct)).StatusCode);
        var expectedItems = await ItemsListedAsync(admin);
        var expectedValue = await ValueByLocationAsync(admin);
        Assert.Contains(expectedItems, i => i.Contains("Renamed after the snapshot", StringComparison.Ordinal));

        var cold = await InstanceAsync(first.Prefix);
        var client = await cold.SignedInClientAsync(tenant);

        Assert.Equal(expectedItems, await ItemsListedAsync(client));
        Assert.Equal(expectedValue, await ValueByLocationAsync(client));
        Assert.Equal((0, 1), (Items(cold).Loads, Items(cold).SnapshotLoads));
        Assert.Equal((0, 1), (Stock(cold).Loads, Stock(cold).SnapshotLoads));
    }

    [Fact]
    public async Task ASnapshotPlantedUnderAnotherTenantsNameIsRefusedAndThatTenantIsScanned()
    {
        var first = await InstanceAsync();
        var owner = await first.SignUpAsync();
        await StockedItemsSavedAsync(first, await first.SignedInClientAsync(owner), owner);
        var victim = await first.SignUpAsync();
        var victimAdmin = await first.SignedInClientAsync(victim);
        await victimAdmin.CreateItemAsync("VICTIM-1");
        var victimItems = await ItemsListedAsync(victimAdmin);

        // The owner's snapshot copied to where the victim's would be: its rows must never show in the victim's lists.
        var planted = SnapshotOf(first, victim, ItemEntity.KeyPrefix);
        await planted.UploadAsync((await SnapshotOf(first, owner, ItemEntity.KeyPrefix).DownloadContentAsync(Ct)).Value.Content, overwrite: true, Ct);

        var cold = await InstanceAsync(first.Prefix);
        Assert.Equal(victimItems, await ItemsListedAsync(await cold.SignedInClientAsync(victim)));
        Assert.Equal((1, 0), (Items(cold).Loads, Items(cold).SnapshotLoads));
        Assert.True(cold.Services.GetRequiredService<ProjectionSnapshots>().Refused >= 1);

        // A header that names the victim and the victim's current log position, over the owner's rows: the rows give it away.
        var ownerRows = await first.Storage.TenantTable(InventoryStore.TableName).For(new TenantId(owner.Id))
            .QueryAsync<ItemEntity>(ItemEntity.KeyPrefix, 1000, Ct).ToListAsync(Ct);
        var victimPosition = await ChangeLog.PositionAsync(first.Storage.TenantTable(InventoryStore.TableName).For(new TenantId(victim.Id)), Ct);
        await first.Services.GetRequiredService<ProjectionSnapshots>().SaveAsync(new TenantId(victim.Id), InventoryStore.TableName, ItemEntity.KeyPrefix,
            victimPosition, ownerRows, Ct);
        var again = await InstanceAsync(first.Prefix);
        Assert.Equal(victimItems, await ItemsListedAsync(await again.SignedInClientAsync(victim)));
        Assert.Equal((1, 0), (Items(again).Loads, Items(again).SnapshotLoads));
        Assert.True(again.Services.GetRequiredService<ProjectionSnapshots>().Refused >= 1);
    }

    [Fact]
    public async Task TheRefreshTimerBringsASnapshotUpToDateWithWritesMadeAfterIt()
    {
        var first = await InstanceAsync();
        var tenant = await first.SignUpAsync();
        var admin = await first.SignedInClientAsync(tenant);
        await StockedItemsSavedAsync(first, admin, tenant);
        await admin.CreateItemAsync("SNAP-LATER");
        var expected = await ItemsListedAsync(admin);
        var partition = first.Storage.TenantTable(InventoryStore.TableName).For(new TenantId(tenant.Id));
        var logged = (await ChangeLog.PositionAsync(partition, Ct)).Total;
        Assert.True(await StoredTotalAsync(first, tenant) < logged);

        // Another instance runs the timer: it loads the tenant from the snapshot and the log, and saves it again.
        var timer = await InstanceAsync(first.Prefix);
        await using (var scope = timer.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<ProjectionSnapshotRefresh>().RunAsync(new Platform.Functions.Triggers.TimerInvocation(false, null, null), Ct);
        }

        Assert.Equal(logged, await StoredTotalAsync(first, tenant));
        Assert.Equal((0, 1), (Items(timer).Loads, Items(timer).SnapshotLoads));

        // The refreshed snapshot holds the later item itself: a cold instance serves it with nothing to catch up.
        var cold = await InstanceAsync(first.Prefix);
        Assert.Equal(expected, await ItemsListedAsync(await cold.SignedInClientAsync(tenant)));
        Assert.Equal((0, 1), (Items(cold).Loads, Items(cold).SnapshotLoads));
    }

    private static async Task<long> StoredTotalAsync(PlatformApp app, TestTenant tenant) =>
        long.Parse((await SnapshotOf(app, tenant, ItemEntity.KeyPrefix).GetPropertiesAsync(cancellationToken: Ct)).Value.Metadata[ProjectionSnapshots.PositionMetadata],
            System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task ASnapshotAheadOfTheLogOrDamagedIsNotServed()
    {
        var first = await InstanceAsync();
        var tenant = await first.SignUpAsync();
        var admin = await first.SignedInClientAsync(tenant);
        await StockedItemsSavedAsync(first, admin, tenant);
        var expected = await ItemsListedAsync(admin);
        var snapshots = first.Services.GetRequiredService<ProjectionSnapshots>();

        // A snapshot claiming log entries the log does not have (as after a reset of the log): its rows are unproven.
        var stale = new ItemEntity
        {
            PartitionKey = tenant.Id, RowKey = ItemEntity.KeyFor("stale"), Sku = "STALE", Name = "Not in the table", CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
        };
        await snapshots.SaveAsync(new TenantId(tenant.Id), InventoryStore.TableName, ItemEntity.KeyPrefix, new LogPosition([.. Enumerable.Repeat(1_000_000L, ChangeLog.Lanes)]), [stale], Ct);
        var ahead = await InstanceAsync(first.Prefix);
        Assert.Equal(expected, await ItemsListedAsync(await ahead.SignedInClientAsync(tenant)));
        Assert.Equal((1, 0), (Items(ahead).Loads, Items(ahead).SnapshotLoads));
        await SavedAsync(ahead);

        // Damaged bytes: not gzip, or gzip of something else. Both refused, the tenant scanned.
        foreach (var damage in new[] { "not a snapshot"u8.ToArray(), Gzip("{\"Format\":1}\n{\"PartitionKey\":1}") })
        {
            await SnapshotOf(first, tenant, ItemEntity.KeyPrefix).UploadAsync(new BinaryData(damage), overwrite: true, Ct);
            var damaged = await InstanceAsync(first.Prefix);
            Assert.Equal(expected, await ItemsListedAsync(await damaged.SignedInClientAsync(tenant)));
            Assert.Equal((1, 0), (Items(damaged).Loads, Items(damaged).SnapshotLoads));
            await SavedAsync(damaged);
        }
    }

    private static byte[] Gzip(string text)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(buffer, System.IO.Compression.CompressionLevel.Fastest))
        {
            gzip.Write(System.Text.Encoding.UTF8.GetBytes(text));
        }

        return buffer.ToArray();
    }
}
