using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Functions.Inventory;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class ItemTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    [Fact]
    public async Task CreateAnswers201WithEveryFieldAndZeroQuantity()
    {
        var bin = await Admin.CreateLocationIdAsync("Bin 1");
        var expiresAt = new DateTimeOffset(2027, 3, 1, 0, 0, 0, TimeSpan.Zero);

        var response = await Admin.PostItemAsync(new
        {
            sku = "BOLT-10", name = " Bolt M10 ", description = "Zinc", category = "fasteners", locationId = bin, unit = "pcs", unitCost = 0.25,
            reorderPoint = 100, reorderQuantity = 500, expiresAt, supplier = "Acme", tags = new List<string> { "metal", "small" }, fields = new { colour = "grey" },
        });

        var created = await response.ReadJsonAsync(HttpStatusCode.Created);
        var id = created.Id();
        Assert.Equal($"{InventoryApi.Items}/{id}", response.Headers.Location?.OriginalString);
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal("BOLT-10", created.Str("sku"));
        Assert.Equal("Bolt M10", created.Str("name"));
        Assert.Equal(bin, created.Str("locationId"));
        Assert.Equal(0, created.Num("quantity"));
        Assert.Equal(0.25, created.Num("unitCost"));
        Assert.Equal(100, created.Num("reorderPoint"));
        Assert.Equal(expiresAt, created.GetProperty("expiresAt").GetDateTimeOffset());
        Assert.Equal(["metal", "small"], created.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("grey", created.GetProperty("fields").GetProperty("colour").GetString());
        Assert.Equal("active", created.Str("status"));
        var read = await Admin.GetAsync($"{InventoryApi.Items}/{id}", Ct);
        Assert.Equal(response.Headers.ETag!.Tag, read.Headers.ETag?.Tag);
        Assert.Equal("Bolt M10", (await read.ReadJsonAsync(HttpStatusCode.OK)).Str("name"));
        Assert.Contains("inventory.item.created", await Admin.AuditActionsAsync(id));
    }

    [Fact]
    public async Task QuantityIsReadOnlyOnCreateAndPatch()
    {
        var onCreate = await Admin.PostItemAsync(new { sku = "A1", name = "Anvil", quantity = 5 });
        var id = (await Admin.CreateItemAsync("A2")).Id();
        var onPatch = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Items}/{id}", new { quantity = 5, name = "Changed" });

        var problem = await onCreate.ReadProblemAsync(400, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty("quantity", out _));
        Assert.True((await onPatch.ReadProblemAsync(400, "validation_failed")).GetProperty("errors").TryGetProperty("quantity", out _));
        var item = await Admin.GetJsonAsync($"{InventoryApi.Items}/{id}");
        Assert.Equal(0, item.Num("quantity"));
        Assert.Equal("Item A2", item.Str("name"));
        Assert.DoesNotContain(await Admin.ListAsync(InventoryApi.Items), i => i.Str("sku") == "A1");
    }

    [Fact]
    public async Task InvalidFieldsAre400ValidationFailedNamingEachField()
    {
        var response = await Admin.PostItemAsync(new { sku = "bad sku/1", name = "", unitCost = -1, tags = new List<string> { "" }, fields = new List<int> { 1 } });

        var errors = (await response.ReadProblemAsync(400, "validation_failed")).GetProperty("errors");
        Assert.Equal(["fields", "name", "sku", "tags", "unitCost"], errors.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Empty(await Admin.ListAsync(InventoryApi.Items));
    }

    [Fact]
    public async Task AnUnknownLocationIs400LocationNotFound()
    {
        var response = await Admin.PostItemAsync(new { sku = "L1", name = "Lamp", locationId = "01JZZZZZZZZZZZZZZZZZZZZZZZ" });

        await response.ReadProblemAsync(400, "location_not_found");
        Assert.Empty(await Admin.ListAsync(InventoryApi.Items));
    }

    [Theory]
    [InlineData("unitCost")]
    [InlineData("reorderPoint")]
    [InlineData("reorderQuantity")]
    public async Task ANumberTooLargeForADoubleIsABadRequestAndStoresNothing(string field)
    {
        // 1e400 reads as infinity, which cannot be written back as JSON.
        var body = $$"""{"sku":"INF-1","name":"Infinite","{{field}}":1e400}""";

        var response = await Admin.PostAsync(InventoryApi.Items, new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        await response.ReadProblemAsync(400, "invalid_json");
        Assert.Empty(await Admin.ListAsync(InventoryApi.Items));
    }

    [Fact]
    public async Task ASkuIsUniquePerTenantIgnoringCase()
    {
        await Admin.CreateItemAsync("NUT-5");
        var other = (await Admin.CreateItemAsync("NUT-6")).Id();

        var duplicate = await Admin.PostItemAsync(new { sku = "nut-5", name = "Another nut" });
        var renamed = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Items}/{other}", new { sku = "Nut-5" });

        await duplicate.ReadProblemAsync(409, "sku_taken");
        await renamed.ReadProblemAsync(409, "sku_taken");
        Assert.Equal(["NUT-5", "NUT-6"], (await Admin.ListAsync($"{InventoryApi.Items}?sort=sku")).Select(i => i.Str("sku")));
    }

    [Fact]
    public async Task ConcurrentCreatesWithOneSkuLeaveExactlyOneItem()
    {
        var responses = await Task.WhenAll(Enumerable.Range(0, 10).Select(n => Admin.PostItemAsync(new { sku = "RACE-1", name = $"Racer {n}" })));

        Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
        {
            await refused.ReadProblemAsync(409, "sku_taken");
        }

        Assert.Single(await Admin.ListAsync(InventoryApi.Items));
    }

    [Fact]
    public async Task ChangingTheSkuReleasesTheOldOne()
    {
        var id = (await Admin.CreateItemAsync("OLD-1")).Id();

        var patched = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Items}/{id}", new { sku = "NEW-1" });

        Assert.Equal("NEW-1", (await patched.ReadJsonAsync(HttpStatusCode.OK)).Str("sku"));
        Assert.Equal("OLD-1", (await Admin.CreateItemAsync("OLD-1")).Str("sku"));
        await (await Admin.PostItemAsync(new { sku = "new-1", name = "Clash" })).ReadProblemAsync(409, "sku_taken");
    }

    [Fact]
    public async Task PatchHonoursIfMatchAndClearsFieldsWithNull()
    {
        var id = (await Admin.CreateItemAsync("P1", extra: new { category = "tools", unitCost = 3.5 })).Id();
        var etag = (await Admin.GetAsync($"{InventoryApi.Items}/{id}", Ct)).Headers.ETag!.Tag;

        var patched = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Items}/{id}", new { category = (string?)null, name = "Pliers", tags = new List<string> { "hand" } }, etag);
        var stale = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Items}/{id}", new { name = "Stale" }, etag);

        var body = await patched.ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal(JsonValueKind.Null, body.GetProperty("category").ValueKind);
        Assert.Equal("Pliers", body.Str("name"));
        Assert.Equal(3.5, body.Num("unitCost"));
        Assert.NotEqual(etag, patched.Headers.ETag?.Tag);
        await stale.ReadProblemAsync(412, "precondition_failed");
        Assert.Equal("Pliers", (await Admin.GetJsonAsync($"{InventoryApi.Items}/{id}")).Str("name"));
        Assert.Contains("inventory.item.updated", await Admin.AuditActionsAsync(id));
    }

    [Fact]
    public async Task DeleteArchivesTheItemKeepsItReadableAndReleasesItsSku()
    {
        var id = (await Admin.CreateItemAsync("ARC-1")).Id();

        var deleted = await Admin.DeleteAsync($"{InventoryApi.Items}/{id}", Ct);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        var archived = await Admin.GetJsonAsync($"{InventoryApi.Items}/{id}");
        Assert.Equal("archived", archived.Str("status"));
        Assert.NotEqual(JsonValueKind.Null, archived.GetProperty("archivedAt").ValueKind);
        Assert.Empty(await Admin.ListAsync(InventoryApi.Items));
        Assert.Single(await Admin.ListAsync($"{InventoryApi.Items}?includeArchived=true"));
        await (await Admin.DeleteAsync($"{InventoryApi.Items}/{id}", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Items}/{id}", new { name = "Back" })).ReadProblemAsync(404, "not_found");
        Assert.Equal("ARC-1", (await Admin.CreateItemAsync("ARC-1")).Str("sku"));
        Assert.Contains("inventory.item.deleted", await Admin.AuditActionsAsync(id));
        var row = await App.Storage.TenantTable(InventoryStore.TableName).For(new TenantId(Tenant.Id)).GetAsync<ItemEntity>(ItemEntity.KeyFor(id), Ct);
        Assert.Equal(ItemStatus.Archived, row!.Status);
    }

    [Fact]
    public async Task ListFiltersSearchesSortsAndPagesWithTheSharedFilterLanguage()
    {
        await Admin.CreateItemAsync("S-1", "Hammer", new { category = "tools", unitCost = 12.0, tags = new List<string> { "steel" }, supplier = "Acme" });
        await Admin.CreateItemAsync("S-2", "Saw", new { category = "tools", unitCost = 30.0, tags = new List<string> { "steel", "sharp" } });
        await Admin.CreateItemAsync("S-3", "Glue", new { category = "supplies", unitCost = 4.0, fields = new { brand = "Stik" } });

        string Uri(string query) => $"{InventoryApi.Items}?{query}";
        var tools = await Admin.ListAsync(Uri($"filter={System.Uri.EscapeDataString("category eq 'tools' and unitCost gt 20")}"));
        var steel = await Admin.ListAsync(Uri($"filter={System.Uri.EscapeDataString("tags has 'steel'")}&sort=-unitCost"));
        var branded = await Admin.ListAsync(Uri($"filter={System.Uri.EscapeDataString("fields.brand eq 'Stik'")}"));
        var searched = await Admin.ListAsync(Uri("q=acme"));
        var empty = await Admin.ListAsync(Uri($"filter={System.Uri.EscapeDataString("quantity gt 0")}"));
        var first = await Admin.GetJsonAsync(Uri("pageSize=2&sort=name"));
        var second = await Admin.GetJsonAsync(Uri($"pageSize=2&sort=name&continuationToken={System.Uri.EscapeDataString(first.Str("continuationToken")!)}"));

        Assert.Equal(["Saw"], tools.Select(i => i.Str("name")));
        Assert.Equal(["Saw", "Hammer"], steel.Select(i => i.Str("name")));
        Assert.Equal(["Glue"], branded.Select(i => i.Str("name")));
        Assert.Equal(["Hammer"], searched.Select(i => i.Str("name")));
        Assert.Empty(empty);
        Assert.Equal(["Glue", "Hammer"], first.GetProperty("items").EnumerateArray().Select(i => i.Str("name")));
        Assert.Equal(["Saw"], second.GetProperty("items").EnumerateArray().Select(i => i.Str("name")));
        await (await Admin.GetAsync(Uri("filter=weight%20gt%201"), Ct)).ReadProblemAsync(400, "invalid_filter");
        await (await Admin.GetAsync(Uri("sort=tags"), Ct)).ReadProblemAsync(400, "invalid_sort");
    }

    [Fact]
    public async Task AnotherTenantsItemAnswers404OnEveryRoute()
    {
        var theirs = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(theirs);
        var id = (await them.CreateItemAsync("THEIRS-1")).Id();
        var uri = $"{InventoryApi.Items}/{id}";

        await (await Admin.GetAsync(uri, Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.SendAsync(HttpMethod.Patch, uri, new { name = "Mine" })).ReadProblemAsync(404, "not_found");
        await (await Admin.DeleteAsync(uri, Ct)).ReadProblemAsync(404, "not_found");
        Assert.Empty(await Admin.ListAsync(InventoryApi.Items));
        // SKUs are unique per tenant, not across tenants.
        Assert.Equal("THEIRS-1", (await Admin.CreateItemAsync("THEIRS-1")).Str("sku"));
        var still = await them.GetJsonAsync(uri);
        Assert.Equal("Item THEIRS-1", still.Str("name"));
        Assert.Equal("active", still.Str("status"));
    }
}
