using System.Net;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>
/// The per-tenant user cap (<c>Platform:Users:MaxUsersPerTenant</c>, here 3 with the signed-up admin as the first):
/// without it one tenant could create users until storage and every instance's in-memory list gave out.
/// </summary>
public sealed class UserLimitTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const int Cap = 3;

    protected override bool SignsInAdmin => true;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Platform:Users:MaxUsersPerTenant"] = $"{Cap}" };

    private static object Create(string email) => new { op = "create", data = new { email, displayName = email.Split('@')[0] } };

    [Fact]
    public async Task ACreateBeyondTheCapIsRefusedWithUserLimitReached()
    {
        await Admin.CreateUserAsync("one@example.com");
        await Admin.CreateUserAsync("two@example.com");

        var refused = await Admin.PostUserAsync(new { email = "three@example.com", displayName = "Three" });

        await refused.ReadProblemAsync(409, "user_limit_reached");
        Assert.Equal(new[] { Tenant.AdminEmail, "one@example.com", "two@example.com" }.Order(StringComparer.Ordinal), (await Admin.EmailsAsync()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task ABulkCreateBeyondTheCapFailsOnlyTheOverflowOperations()
    {
        var results = (await (await Admin.BulkAsync(
            [
                Create("a@example.com"),
                Create("not an email"),
                Create("b@example.com"),
                Create("c@example.com"),
                Create("d@example.com"),
            ])).ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray().ToList();

        Assert.Equal([201, 400, 201, 409, 409], results.Select(r => r.GetProperty("status").GetInt32()));
        Assert.Equal("user_limit_reached", results[3].GetProperty("error").Str("code"));
        Assert.Equal("user_limit_reached", results[4].GetProperty("error").Str("code"));
        Assert.Equal(new[] { Tenant.AdminEmail, "a@example.com", "b@example.com" }.Order(StringComparer.Ordinal), (await Admin.EmailsAsync()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task DeletingAUserFreesASlotAndRestoringTakesOne()
    {
        var one = await Admin.CreateUserIdAsync("one@example.com");
        await Admin.CreateUserAsync("two@example.com");

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{UserApi.Users}/{one}", Ct)).StatusCode);
        await Admin.CreateUserAsync("three@example.com");

        // Back at the cap: the deleted user cannot come back until a slot is free again.
        await (await Admin.PostAsync($"{UserApi.Users}/{one}/restore", null, Ct)).ReadProblemAsync(409, "user_limit_reached");
        var bulk = (await (await Admin.BulkAsync([new { op = "restore", id = one }])).ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results")[0];
        Assert.Equal(409, bulk.GetProperty("status").GetInt32());
        Assert.Equal("user_limit_reached", bulk.GetProperty("error").Str("code"));
        Assert.Equal("deleted", (await Admin.GetUserAsync(one)).Str("status"));
        await (await Admin.PostUserAsync(new { email = "four@example.com", displayName = "Four" })).ReadProblemAsync(409, "user_limit_reached");
    }

    [Fact]
    public async Task ParallelCreatesForTheLastSlotOnTwoInstancesLetExactlyOneThrough()
    {
        await Admin.CreateUserAsync("one@example.com");
        await using var other = await new PlatformApp(Azurite, App.Prefix, Settings).ReadyAsync();
        using var otherAdmin = await other.SignedInClientAsync(Tenant);

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            (i % 2 == 0 ? Admin : otherAdmin).PostUserAsync(new { email = $"racer{i}@example.com", displayName = $"Racer {i}" })));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
        {
            await refused.ReadProblemAsync(409, "user_limit_reached");
        }

        Assert.Equal(Cap, (await Admin.EmailsAsync()).Count);
    }

    [Fact]
    public async Task ASlotFreedOnAnotherInstanceIsSeenByAnInstanceThatLastSawTheTenantFull()
    {
        // This instance writes the counter last, at the cap, and remembers that.
        await Admin.CreateUserAsync("one@example.com");
        var two = await Admin.CreateUserIdAsync("two@example.com");

        await using (var other = await new PlatformApp(Azurite, App.Prefix, Settings).ReadyAsync())
        {
            using var otherAdmin = await other.SignedInClientAsync(Tenant);
            Assert.Equal(HttpStatusCode.NoContent, (await otherAdmin.DeleteAsync($"{UserApi.Users}/{two}", Ct)).StatusCode);
        }

        Assert.Equal(HttpStatusCode.Created, (await Admin.PostUserAsync(new { email = "three@example.com", displayName = "Three" })).StatusCode);
    }

    [Fact]
    public async Task ATenantWithoutACounterRowIsCountedOnceAndHeldToTheCap()
    {
        var one = await Admin.CreateUserIdAsync("one@example.com");
        await Admin.CreateUserAsync("two@example.com");

        // A tenant from before the counter: no counter row beside its users.
        var partition = App.Storage.TenantTable(UserDirectory.TableName).For(new TenantId(Tenant.Id));
        await partition.DeleteAsync(UserDirectory.CounterKey, cancellationToken: Ct);

        await (await Admin.PostUserAsync(new { email = "three@example.com", displayName = "Three" })).ReadProblemAsync(409, "user_limit_reached");
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{UserApi.Users}/{one}", Ct)).StatusCode);
        await Admin.CreateUserAsync("three@example.com");
        await (await Admin.PostUserAsync(new { email = "four@example.com", displayName = "Four" })).ReadProblemAsync(409, "user_limit_reached");
    }
}
