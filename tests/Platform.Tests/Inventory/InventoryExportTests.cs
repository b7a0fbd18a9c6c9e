using Platform.Functions.Inventory;
using Platform.Functions.Jobs.Imports;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class InventoryExportTests(Azurite azurite) : ImportKindTests(azurite)
{
    [Fact]
    public async Task ItemsStreamPastOnePageWithTheListRoutesFilter()
    {
        // More than one storage page (1,000), imported in one go.
        AssertAllSucceeded(await ImportAsync(ItemImport.Kind, ImportMode.Create,
            [.. Enumerable.Range(0, 1_050).Select(i => Row(i + 2, ("sku", $"S{i:D4}"), ("name", $"Item {i}"), ("category", i % 3 == 0 ? "bolts" : "nuts"),
                ("unitCost", "0.5"), ("tags", "a;b"), ("fields.colour", i == 9 ? "red" : "grey")))]));
        var archived = (await ItemBySkuAsync("S0003")).Id();
        await Admin.SendAsync(HttpMethod.Delete, $"{InventoryApi.Items}/{archived}");

        var (columns, all) = await ExportAsync(ItemExport.Kind, null);
        var (_, bolts) = await ExportAsync(ItemExport.Kind, "category eq 'bolts' and fields.colour eq 'grey'");

        Assert.Equal(1_049, all.Count);
        Assert.Equal(348, bolts.Count);
        var sku = columns.ToList().IndexOf("sku");
        Assert.DoesNotContain(all, r => r[sku] == "S0003");
        Assert.DoesNotContain(bolts, r => r[sku] is "S0003" or "S0009");
        Assert.Contains(bolts, r => r[sku] == "S0006");
        var first = all.Single(r => r[sku] == "S0001");
        Assert.Equal("0.5", first[columns.ToList().IndexOf("unitCost")]);
        Assert.Equal("a;b", first[columns.ToList().IndexOf("tags")]);
        Assert.Equal("""{"colour":"grey"}""", first[columns.ToList().IndexOf("fields")]);
        Assert.Equal("0", first[columns.ToList().IndexOf("quantity")]);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", first[columns.ToList().IndexOf("createdAt")]);
    }

    [Fact]
    public async Task MovementsCarryTheirSkuAndFilterOnTheirFields()
    {
        await Admin.CreateItemAsync("A");
        await Admin.CreateItemAsync("B");
        AssertAllSucceeded(await ImportAsync(MovementImport.Kind, ImportMode.Create,
        [
            Row(2, ("sku", "A"), ("type", "in"), ("quantity", "10"), ("supplier", "Acme"), ("batch", "L1")),
            Row(3, ("sku", "B"), ("type", "in"), ("quantity", "5"), ("supplier", "Other")),
            Row(4, ("sku", "A"), ("type", "out"), ("quantity", "2.5"), ("reason", "Sold")),
        ]));

        var (columns, all) = await ExportAsync(MovementExport.Kind, null);
        var (_, acme) = await ExportAsync(MovementExport.Kind, "supplier eq 'Acme' or (sku eq 'A' and quantity lt 3)");

        Assert.Equal(3, all.Count);
        var index = columns.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        // Rows of different items are recorded side by side, so only each item's own rows keep file order.
        Assert.Equal(["A", "A", "B"], all.Select(r => r[index["sku"]]).Order());
        Assert.Equal(["in", "out"], acme.Select(r => r[index["type"]]));
        Assert.Equal("-2.5", acme[1][index["delta"]]);
        Assert.Equal("7.5", acme[1][index["quantityAfter"]]);
        Assert.Equal("Sold", acme[1][index["reason"]]);
        Assert.Equal(Tenant.AdminId, acme[1][index["actorId"]]);
    }

    [Fact]
    public async Task ABadFilterGetsTheParsersMessageAndAnotherTenantSeesNothing()
    {
        Assert.Equal("Unknown field 'colour' at position 0", await CheckFilterAsync(ItemExport.Kind, "colour eq 'red'"));
        Assert.NotNull(await CheckFilterAsync(MovementExport.Kind, "type eq"));
        Assert.NotNull(await CheckFilterAsync(MovementExport.Kind, "quantity eq 'five'"));

        await Admin.CreateItemAsync("MINE");
        var other = await App.SignUpAsync();
        var theirs = new Platform.Functions.Auth.Caller(new Platform.Functions.Storage.TenantId(other.Id), other.AdminId, "export-tests");
        Assert.Empty((await ExportAsync(ItemExport.Kind, null, theirs)).Rows);
        Assert.Single((await ExportAsync(ItemExport.Kind, null)).Rows);
    }
}
