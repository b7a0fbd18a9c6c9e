using System.Net;
using Platform.Functions.Events;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

/// <summary>
/// What one movement costs in storage calls, counted on the app's own storage clients against Azurite (see
/// <see cref="StorageCalls"/>): the figure the movements benchmark measures in time, pinned as a count so that a call
/// added to the route or to the work it leaves behind shows here. The raw SDK baseline of the benchmark makes three
/// calls: it reads the item and its stock row and writes one transaction.
/// </summary>
public sealed class MovementStorageCallTests(Azurite azurite) : CountedStorageTests(azurite)
{
    private const string Route = "POST /api/v1/inventory/items/{id}/movements";

    /// <summary>The transaction: item, stock, both movement rows, the outbox row, the change log's entry and lane row.</summary>
    private const string Transaction = "table transaction inventory (7 actions)";

    /// <summary>What relaying one movement's event costs: the audit entry written, the outbox row deleted.</summary>
    private static readonly string[] RelayedFromMemory = ["table transaction audit (1 actions)", "table transaction inventory (1 actions)"];

    /// <summary>A read of a change-log lane's sequence row, which a transaction moves on along with its entry.</summary>
    private const string LaneRead = "table read change-log lane";

    [Fact]
    public async Task AMovementIsOneTransactionOnceItsInstanceWroteTheItemAndItsEventCostsTwoWritesAfter()
    {
        // Low on stock from the start (reorder point 5), so its alert is open and stays open: what an alert costs when
        // a movement changes nothing about it is part of the count.
        var item = (await Admin.CreateItemAsync("CALLS-1", extra: new { reorderPoint = 5 })).Id();
        Assert.Single(await Admin.ListAsync("/api/v1/inventory/alerts?status=open"));

        // The audit route relays what is waiting before it reads: the item's creation is out of the way.
        Assert.Contains("inventory.item.created", await Admin.AuditActionsAsync(item));
        var start = Calls.All.Count;

        // The first movement of the item on this instance reads the item and its stock row; the next ones start from
        // the rows the last one wrote.
        var first = await CountedMovementAsync(item);
        Assert.Equal(["table read inventory", "table read inventory", Transaction], first.Request);
        for (var i = 0; i < 2; i++)
        {
            var next = await CountedMovementAsync(item);
            Assert.Equal([Transaction], next.Request);
        }

        // Each movement's event is relayed from memory: its audit entry, then the outbox row deleted. No query.
        var background = Tenants(Calls.All.Skip(start).Where(c => c.Route is null)).Select(Describe).ToList();
        Assert.Equal([.. Enumerable.Range(0, 3).SelectMany(_ => RelayedFromMemory)], background);
        Assert.Equal(3, (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
        Assert.Single(await Admin.ListAsync("/api/v1/inventory/alerts?status=open"));
    }

    [Fact]
    public async Task RowsAnotherInstanceChangedCostOneRefusedTransactionThenTheReadsAndNoUpdateIsLost()
    {
        var item = (await Admin.CreateItemAsync("CALLS-2")).Id();
        await CountedMovementAsync(item);
        await using var other = await new PlatformApp(Azurite, App.Prefix).ReadyAsync();
        using var elsewhere = await other.SignedInClientAsync(Tenant);

        await (await elsewhere.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{item}/movements", new { type = "in", quantity = 10 }))
            .ReadJsonAsync(HttpStatusCode.Created);
        var after = await CountedMovementAsync(item);

        // The rows this instance kept are stale: storage refuses the transaction (412), and the movement reads again.
        // When the other instance happened to write on the same change-log lane (each instance starts on a random one
        // of 16), the lane's row this instance knew is stale too: the retry is refused on it, and the change log reads
        // that row and writes once more. A stale lane shows only after the item's refusal, as storage names one failure.
        List<string> expected = [Transaction, "table read inventory", "table read inventory", Transaction];
        if (after.Request.Contains(LaneRead))
        {
            expected = [.. expected, LaneRead, Transaction];
        }

        Assert.Equal(expected, after.Request);
        Assert.Equal(12, after.Quantity);
        Assert.Equal(12, (await elsewhere.GetJsonAsync($"{InventoryApi.Items}/{item}")).Num("quantity"));
    }

    /// <summary>
    /// One movement of 1 in, and the calls made for it: on the route (after a read of the item, so the caller's
    /// session standing is fresh in memory), and in the background once its event reached the audit trail.
    /// </summary>
    private async Task<(List<string> Request, double Quantity)> CountedMovementAsync(string item)
    {
        await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}");
        var before = Calls.All.Count;
        var response = await (await Admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{item}/movements", new { type = "in", quantity = 1 }))
            .ReadJsonAsync(HttpStatusCode.Created);
        var movement = response.GetProperty("movement").Id();

        // The relay of one partition runs one at a time: once this movement's row is deleted, whatever the relay of the
        // movement before did is counted.
        await Eventually.Until(() => Task.FromResult(Tenants(Calls.All.Skip(before).Where(c => c.Route is null)).ToList()),
            calls => calls.Any(c => c.Table(App.Prefix) == "audit" && c.Text.Contains(movement, StringComparison.Ordinal))
                && calls.Any(c => c.Table(App.Prefix) == "inventory" && c.Kind == "transaction" && c.Text.Contains(EventOutbox.KeyPrefix, StringComparison.Ordinal)),
            "the movement's event to be relayed");
        var request = Calls.All.Skip(before).Where(c => c.Route == Route).Select(Describe).ToList();
        return (request, response.Num("quantity"));
    }

    /// <summary>The calls about this test's tenant's inventory and audit rows (other tenants' and timers' left out).</summary>
    private IEnumerable<StorageCall> Tenants(IEnumerable<StorageCall> calls) =>
        calls.Where(c => c.Table(App.Prefix) is "inventory" or "audit" && c.Text.Contains(Tenant.Id, StringComparison.Ordinal));

    private string Describe(StorageCall call) =>
        call.Kind == "read" && call.Text.Contains("'~changelog-", StringComparison.Ordinal) ? LaneRead : call.Describe(App.Prefix);
}
