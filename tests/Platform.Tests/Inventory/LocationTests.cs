using System.Net;
using System.Net.Http.Json;
using Platform.Functions.Inventory;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class LocationTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    [Fact]
    public async Task CreateAnswers201WithLocationAndETagAndTheLocationReadsBack()
    {
        var warehouse = await Admin.CreateLocationIdAsync("Warehouse");

        var response = await Admin.PostAsJsonAsync(InventoryApi.Locations,
            new { name = "  Aisle 3 ", code = "A3", parentId = warehouse, description = "Cold goods" }, Ct);

        var created = await response.ReadJsonAsync(HttpStatusCode.Created);
        var id = created.Id();
        Assert.Matches("^[0-9A-Z]{26}$", id);
        Assert.Equal($"{InventoryApi.Locations}/{id}", response.Headers.Location?.OriginalString);
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal("Aisle 3", created.Str("name"));
        Assert.Equal("A3", created.Str("code"));
        Assert.Equal(warehouse, created.Str("parentId"));
        Assert.Equal("Cold goods", created.Str("description"));
        var read = await Admin.GetAsync($"{InventoryApi.Locations}/{id}", Ct);
        Assert.Equal("Aisle 3", (await read.ReadJsonAsync(HttpStatusCode.OK)).Str("name"));
        Assert.NotNull(read.Headers.ETag);
    }

    [Fact]
    public async Task CreateWithoutANameIs400ValidationFailed()
    {
        var response = await Admin.PostAsJsonAsync(InventoryApi.Locations, new { name = " ", code = new string('c', 51) }, Ct);

        var problem = await response.ReadProblemAsync(400, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty("name", out _));
        Assert.True(problem.GetProperty("errors").TryGetProperty("code", out _));
        Assert.Empty(await Admin.ListAsync(InventoryApi.Locations));
    }

    [Fact]
    public async Task AParentThatDoesNotExistIs400ParentNotFound()
    {
        var response = await Admin.PostAsJsonAsync(InventoryApi.Locations, new { name = "Shelf", parentId = "01JZZZZZZZZZZZZZZZZZZZZZZZ" }, Ct);

        await response.ReadProblemAsync(400, "parent_not_found");
        Assert.Empty(await Admin.ListAsync(InventoryApi.Locations));
    }

    [Fact]
    public async Task PatchThatWouldMakeALocationItsOwnAncestorIs409LocationCycle()
    {
        var site = await Admin.CreateLocationIdAsync("Site");
        var hall = await Admin.CreateLocationIdAsync("Hall", site);
        var shelf = await Admin.CreateLocationIdAsync("Shelf", hall);

        var intoGrandchild = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Locations}/{site}", new { parentId = shelf });
        var intoItself = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Locations}/{hall}", new { parentId = hall });

        await intoGrandchild.ReadProblemAsync(409, "location_cycle");
        await intoItself.ReadProblemAsync(409, "location_cycle");
        Assert.Equal(JsonValueKindNull, (await Admin.GetJsonAsync($"{InventoryApi.Locations}/{site}")).GetProperty("parentId").ValueKind);
        Assert.Equal(site, (await Admin.GetJsonAsync($"{InventoryApi.Locations}/{hall}")).Str("parentId"));
    }

    [Fact]
    public async Task PatchMovesALocationClearsFieldsWithNullAndHonoursIfMatch()
    {
        var site = await Admin.CreateLocationIdAsync("Site");
        var other = await Admin.CreateLocationIdAsync("Other site");
        var hall = (await Admin.CreateLocationAsync("Hall", site, code: "H1")).Id();
        var etag = (await Admin.GetAsync($"{InventoryApi.Locations}/{hall}", Ct)).Headers.ETag!.Tag;

        var moved = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Locations}/{hall}", new { parentId = other, code = (string?)null, name = "Hall B" }, etag);
        var stale = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Locations}/{hall}", new { name = "Hall C" }, etag);

        var body = await moved.ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal(other, body.Str("parentId"));
        Assert.Equal("Hall B", body.Str("name"));
        Assert.Equal(JsonValueKindNull, body.GetProperty("code").ValueKind);
        await stale.ReadProblemAsync(412, "precondition_failed");
        var unparented = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Locations}/{hall}", new { parentId = (string?)null });
        Assert.Equal(JsonValueKindNull, (await unparented.ReadJsonAsync(HttpStatusCode.OK)).GetProperty("parentId").ValueKind);
        var missingParent = await Admin.SendAsync(HttpMethod.Patch, $"{InventoryApi.Locations}/{hall}", new { parentId = "01JZZZZZZZZZZZZZZZZZZZZZZZ" });
        await missingParent.ReadProblemAsync(400, "parent_not_found");
    }

    [Fact]
    public async Task DeleteRemovesAnEmptyLocationButNotOneWithChildren()
    {
        var site = await Admin.CreateLocationIdAsync("Site");
        var hall = await Admin.CreateLocationIdAsync("Hall", site);

        var refused = await Admin.DeleteAsync($"{InventoryApi.Locations}/{site}", Ct);
        var deleted = await Admin.DeleteAsync($"{InventoryApi.Locations}/{hall}", Ct);

        await refused.ReadProblemAsync(409, "location_has_children");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await (await Admin.GetAsync($"{InventoryApi.Locations}/{hall}", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{InventoryApi.Locations}/{site}", Ct)).StatusCode);
        Assert.Empty(await Admin.ListAsync(InventoryApi.Locations));
    }

    [Fact]
    public async Task DeletingALocationThatHoldsStockIs409LocationNotEmpty()
    {
        var bin = await Admin.CreateLocationIdAsync("Bin");
        // Stock arrives through movements; this writes the stock row directly so the rule is tested on its own.
        await App.Storage.TenantTable(InventoryStore.TableName).For(new Platform.Functions.Storage.TenantId(Tenant.Id))
            .AddAsync(new StockEntity { RowKey = StockEntity.KeyFor("01JITEM0000000000000000000", bin), ItemId = "01JITEM0000000000000000000", LocationId = bin, Quantity = 3 }, Ct);

        var response = await Admin.DeleteAsync($"{InventoryApi.Locations}/{bin}", Ct);

        await response.ReadProblemAsync(409, "location_not_empty");
        Assert.Equal("Bin", (await Admin.GetJsonAsync($"{InventoryApi.Locations}/{bin}")).Str("name"));
    }

    [Fact]
    public async Task ListFiltersSearchesSortsAndPages()
    {
        var site = await Admin.CreateLocationIdAsync("Site");
        await Admin.CreateLocationIdAsync("Cold room", site);
        await Admin.CreateLocationIdAsync("Aisle", site);

        var children = await Admin.ListAsync($"{InventoryApi.Locations}?filter={Uri.EscapeDataString($"parentId eq '{site}'")}&sort=name");
        var searched = await Admin.ListAsync($"{InventoryApi.Locations}?q=COLD");
        var first = await Admin.GetJsonAsync($"{InventoryApi.Locations}?pageSize=2");
        var second = await Admin.GetJsonAsync($"{InventoryApi.Locations}?pageSize=2&continuationToken={Uri.EscapeDataString(first.Str("continuationToken")!)}");
        var badFilter = await Admin.GetAsync($"{InventoryApi.Locations}?filter=size%20eq%201", Ct);

        Assert.Equal(["Aisle", "Cold room"], children.Select(l => l.Str("name")));
        Assert.Equal(["Cold room"], searched.Select(l => l.Str("name")));
        Assert.Equal(2, first.GetProperty("items").GetArrayLength());
        Assert.Equal(1, second.GetProperty("items").GetArrayLength());
        Assert.Equal(JsonValueKindNull, second.GetProperty("continuationToken").ValueKind);
        await badFilter.ReadProblemAsync(400, "invalid_filter");
    }

    [Fact]
    public async Task AnotherTenantsLocationAnswers404OnEveryRoute()
    {
        var theirs = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(theirs);
        var id = await them.CreateLocationIdAsync("Their warehouse");
        var uri = $"{InventoryApi.Locations}/{id}";

        await (await Admin.GetAsync(uri, Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.SendAsync(HttpMethod.Patch, uri, new { name = "Mine now" })).ReadProblemAsync(404, "not_found");
        await (await Admin.DeleteAsync(uri, Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.PostAsJsonAsync(InventoryApi.Locations, new { name = "Child", parentId = id }, Ct)).ReadProblemAsync(400, "parent_not_found");
        Assert.Empty(await Admin.ListAsync(InventoryApi.Locations));
        Assert.Equal("Their warehouse", (await them.GetJsonAsync(uri)).Str("name"));
    }

    [Fact]
    public async Task ReadingNeedsInventoryReadAndWritingNeedsInventoryWrite()
    {
        using var anonymous = App.CreateClient();
        await Users.UserApi.CreateUserIdAsync(Admin, "clerk@example.com", Accounts.Password);
        using var clerk = await Users.UserApi.SignInAsAsync(App, Tenant, "clerk@example.com");

        await (await anonymous.GetAsync(InventoryApi.Locations, Ct)).ReadProblemAsync(401, "unauthorized");
        Assert.Equal(HttpStatusCode.OK, (await clerk.GetAsync(InventoryApi.Locations, Ct)).StatusCode);
        await (await clerk.PostAsJsonAsync(InventoryApi.Locations, new { name = "X" }, Ct)).ReadProblemAsync(403, "forbidden");
        Assert.Empty(await Admin.ListAsync(InventoryApi.Locations));
    }

    private const System.Text.Json.JsonValueKind JsonValueKindNull = System.Text.Json.JsonValueKind.Null;
}
