using System.Net;
using Platform.Functions.Inventory;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

public sealed class LocationImportTests(Azurite azurite) : ImportKindTests(azurite)
{
    private const string Kind = LocationImport.Kind;

    private async Task<IReadOnlyList<System.Text.Json.JsonElement>> LocationsAsync() => await Admin.ListAsync($"{InventoryApi.Locations}?pageSize=1000");

    [Fact]
    public async Task PathsBuildTheTreeUnderExistingAndEarlierLocations()
    {
        var main = await Admin.CreateLocationIdAsync("Main warehouse");

        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("path", "Main warehouse / Aisle 1"), ("code", "A1")),
            Row(3, ("path", "main warehouse/aisle 1/Shelf 3"), ("description", "Top")),
            Row(4, ("path", "Overflow")),
        ]);

        AssertAllSucceeded(outcomes);
        var all = await LocationsAsync();
        var aisle = Assert.Single(all, l => l.Str("name") == "Aisle 1");
        Assert.Equal(main, aisle.Str("parentId"));
        Assert.Equal("A1", aisle.Str("code"));
        var shelf = Assert.Single(all, l => l.Str("name") == "Shelf 3");
        Assert.Equal(aisle.Id(), shelf.Str("parentId"));
        Assert.Equal("Top", shelf.Str("description"));
        Assert.Null(Assert.Single(all, l => l.Str("name") == "Overflow").Str("parentId"));
        Assert.Equal(["inventory.location.created"], await Admin.AuditActionsAsync(shelf.Id()));
    }

    [Fact]
    public async Task AChildBeforeItsParentFailsNamingTheParentAndAParentFromAnEarlierChunkResolves()
    {
        var first = await ImportAsync(Kind, ImportMode.Create,
            [Row(2, ("path", "Main/Aisle 1")), Row(3, ("path", "Main"))]);

        AssertFailed(first[0], "path", "Main/Aisle 1", "There is no location 'Main' to be the parent; list a location's parents before it.");
        Assert.True(first[1].Succeeded);

        // The next chunk (or a retry of just the failed row) finds the parent the earlier one created.
        AssertAllSucceeded(await ImportAsync(Kind, ImportMode.Create, [Row(4, ("path", "Main/Aisle 1"))]));
        Assert.Equal(2, (await LocationsAsync()).Count);
    }

    [Fact]
    public async Task UpsertChangesCodeAndDescriptionAndTheSameFileAgainWritesNothing()
    {
        var main = await Admin.CreateLocationIdAsync("Main");
        var etag = (await Admin.GetAsync($"{InventoryApi.Locations}/{main}", Ct)).Headers.ETag!.Tag;
        TabularRow[] file = [Row(2, ("path", "Main"), ("code", "M"), ("description", "The big one")), Row(3, ("path", "Main/Dock"))];

        AssertAllSucceeded(await ImportAsync(Kind, ImportMode.Upsert, file));
        var changed = await Admin.GetAsync($"{InventoryApi.Locations}/{main}", Ct);
        var body = await changed.ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal("M", body.Str("code"));
        Assert.Equal("The big one", body.Str("description"));
        Assert.NotEqual(etag, changed.Headers.ETag!.Tag);
        var audit = (await AuditAsync()).Count;

        AssertAllSucceeded(await ImportAsync(Kind, ImportMode.Upsert, file, jobId: "job2"));

        Assert.Equal(changed.Headers.ETag!.Tag, (await Admin.GetAsync($"{InventoryApi.Locations}/{main}", Ct)).Headers.ETag!.Tag);
        Assert.Equal(2, (await LocationsAsync()).Count);
        Assert.Equal(audit, (await AuditAsync()).Count);
    }

    [Fact]
    public async Task CreateRefusesAnExistingPathUnlessThisJobsRowMadeIt()
    {
        await Admin.CreateLocationIdAsync("Main");
        TabularRow[] chunk = [Row(2, ("path", "Main")), Row(3, ("path", "Main/Aisle")), Row(4, ("path", "Main/Aisle/Bin"))];

        var first = await ImportAsync(Kind, ImportMode.Create, chunk);
        var again = await ImportAsync(Kind, ImportMode.Create, chunk);

        Assert.Equal(first, again);
        AssertFailed(first[0], "path", "Main", "A location with this path exists already; import with mode=upsert to update it.");
        Assert.True(first[1].Succeeded && first[2].Succeeded);
        Assert.Equal(3, (await LocationsAsync()).Count);
        AssertFailed((await ImportAsync(Kind, ImportMode.Create, [chunk[1]], jobId: "job2"))[0], "path", "Main/Aisle",
            "A location with this path exists already; import with mode=upsert to update it.");
    }

    [Fact]
    public async Task DryRunChecksAgainstTheTreeAndEarlierRowsAndWritesNothing()
    {
        await Admin.CreateLocationIdAsync("Main");
        var audit = (await AuditAsync()).Count;

        var outcomes = await ImportAsync(Kind, ImportMode.Create,
        [
            Row(2, ("path", "Main/New")),
            Row(3, ("path", "Main/New/Deeper")),
            Row(4, ("path", "Nowhere/Child")),
            Row(5, ("path", "Main/Coded"), ("code", new string('c', 51))),
            Row(6, ("path", "Main//Gap")),
        ], dryRun: true);

        Assert.True(outcomes[0].Succeeded && outcomes[1].Succeeded);
        AssertFailed(outcomes[2], "path", "Nowhere/Child", "There is no location 'Nowhere' to be the parent; list a location's parents before it.");
        var main = (await LocationsAsync())[0].Id();
        var routeMessage = (await (await Admin.SendAsync(HttpMethod.Post, InventoryApi.Locations, new { name = "Coded", parentId = main, code = new string('c', 51) }))
            .ReadProblemAsync(400, "validation_failed")).GetProperty("errors").GetProperty("code")[0].GetString();
        AssertFailed(outcomes[3], "code", new string('c', 51), routeMessage!);
        AssertFailed(outcomes[4], "path", "Main//Gap", "must be location names separated by '/', none of them empty");
        Assert.Single(await LocationsAsync());
        Assert.Equal(audit, (await AuditAsync()).Count);
    }

    [Fact]
    public async Task AnotherTenantsLocationsAreNotParents()
    {
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        await otherAdmin.CreateLocationIdAsync("Theirs");

        var outcomes = await ImportAsync(Kind, ImportMode.Create, [Row(2, ("path", "Theirs/Mine"))]);

        AssertFailed(outcomes[0], "path", "Theirs/Mine", "There is no location 'Theirs' to be the parent; list a location's parents before it.");
        Assert.Single(await otherAdmin.ListAsync(InventoryApi.Locations));
    }
}
