using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Functions.Query;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>GET /api/v1/users: paging, continuation tokens, search, filter and sort.</summary>
public sealed class UserListTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private async Task<IReadOnlyList<string>> CreateManyAsync(int count, string prefix = "user")
    {
        var response = await Admin.BulkAsync(Enumerable.Range(0, count).Select(i => new
        {
            op = "create",
            data = new { email = $"{prefix}{i:D3}@example.com", displayName = $"{prefix} {i:D3}" },
        }));
        var results = (await response.ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray().ToList();
        Assert.All(results, r => Assert.Equal(201, r.GetProperty("status").GetInt32()));
        return [.. results.Select(r => r.Id())];
    }

    private static string Filter(string expression) => "filter=" + Uri.EscapeDataString(expression);

    private Task<HttpResponseMessage> GetFiltered(string expression) => Admin.GetAsync("/api/v1/users?" + Filter(expression), Ct);

    [Fact]
    public async Task PageSizeDefaultsToFiftyAndIsAtMostAThousand()
    {
        await CreateManyAsync(60);

        var first = await Admin.GetJsonAsync("/api/v1/users");
        var all = await Admin.GetJsonAsync("/api/v1/users?pageSize=1000");

        Assert.Equal(50, first.GetProperty("items").GetArrayLength());
        Assert.Equal(JsonValueKind.String, first.GetProperty("continuationToken").ValueKind);
        Assert.Equal(61, all.GetProperty("items").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, all.GetProperty("continuationToken").ValueKind);
        foreach (var size in UserApi.Names("1001", "0", "-1", "ten", "1.5", "99999999999"))
        {
            Assert.Equal(["pageSize"], await (await Admin.GetAsync($"/api/v1/users?pageSize={size}", Ct)).ValidationErrorsAsync());
        }
    }

    [Fact]
    public async Task PagesSortedByAFieldWithDuplicatesServeEveryRowOnceWhileRowsComeAndGo()
    {
        // Created Cid, Ann, Bob, Cid, Ann ...: the name order is not the creation (id) order, and names repeat.
        var names = new[] { "Cid", "Ann", "Bob" };
        var response = await Admin.BulkAsync(Enumerable.Range(0, 12).Select(i => new
        {
            op = "create",
            data = new { email = $"dup{i:D2}@example.com", displayName = names[i % 3] },
        }));
        Assert.All((await response.ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray(), r => Assert.Equal(201, r.GetProperty("status").GetInt32()));
        var expected = (await Admin.ListAsync()).Select(u => u.Id()).ToHashSet();

        var seen = new List<string>();
        var served = new List<string>();
        string? token = null;
        for (var page = 0; ; page++)
        {
            var body = await Admin.GetJsonAsync($"/api/v1/users?pageSize=3&sort=displayName{(token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token))}");
            var items = body.GetProperty("items").EnumerateArray().ToList();
            seen.AddRange(items.Select(u => u.Id()));
            served.AddRange(items.Select(u => u.Str("displayName")));
            token = body.GetProperty("continuationToken").GetString();
            if (token is null)
            {
                break;
            }

            Assert.True(page < 50, "the list never ended");

            // Between pages: the row that ended the page goes, one user lands before the cursor and one after it.
            if (items[^1].Id() != Tenant.AdminId)
            {
                Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{items[^1].Id()}", Ct)).StatusCode);
            }

            await Admin.CreateUserAsync($"before{page}@example.com", displayName: "Aaa");
            expected.Add(await Admin.CreateUserIdAsync($"zzz{page}@example.com"));
        }

        // Every row there from the start and every row added past the cursor, each exactly once, in name order; the
        // ones added before the cursor are not served at all (they belong to pages already read).
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.Equal(expected.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        Assert.Equal(served.Order(StringComparer.Ordinal), served);
    }

    [Fact]
    public async Task ContinuationTokensPageThroughEveryUserOnce()
    {
        var created = await CreateManyAsync(25);
        var expected = created.Append(Tenant.AdminId).Order(StringComparer.Ordinal).ToList();

        foreach (var query in new[] { "pageSize=10", "pageSize=10&sort=displayName", "pageSize=10&sort=-createdAt,-displayName", "pageSize=7&" + Filter("email ne 'nobody@example.com'") })
        {
            var pages = await Admin.PagesAsync("/api/v1/users?" + query);

            var ids = pages.SelectMany(p => p).Select(u => u.Id()).ToList();
            Assert.Equal(expected, ids.Order(StringComparer.Ordinal));
            Assert.Equal(ids.Count, ids.Distinct().Count());
            Assert.All(pages.SkipLast(1), p => Assert.Equal(query.StartsWith("pageSize=7", StringComparison.Ordinal) ? 7 : 10, p.Count));
        }

        var sorted = (await Admin.PagesAsync("/api/v1/users?pageSize=10&sort=displayName")).SelectMany(p => p).Select(u => u.Str("displayName")).ToList();
        Assert.Equal(sorted.Order(StringComparer.Ordinal), sorted);
    }

    [Fact]
    public async Task TamperedOrForeignContinuationTokensAreRefused()
    {
        await CreateManyAsync(5);
        var token = (await Admin.GetJsonAsync("/api/v1/users?pageSize=2")).Str("continuationToken");
        var dot = token.IndexOf('.', StringComparison.Ordinal);
        var flipped = token[..(dot - 2)] + (token[dot - 2] == 'A' ? 'B' : 'A') + token[(dot - 1)..];
        var resigned = token[..(dot + 1)] + new string('A', token.Length - dot - 1);

        foreach (var bad in new[] { flipped, resigned, "garbage", ".", token + "x", new string('a', 5000) })
        {
            await (await Admin.GetAsync($"/api/v1/users?pageSize=2&continuationToken={Uri.EscapeDataString(bad)}", Ct))
                .ReadProblemAsync(400, "invalid_continuation_token");
        }

        // A token belongs to its query: another filter, search or sort cannot use it.
        foreach (var other in UserApi.Names("q=user", "sort=displayName", Filter("status eq 'active'"), "includeDeleted=true"))
        {
            await (await Admin.GetAsync($"/api/v1/users?pageSize=2&{other}&continuationToken={Uri.EscapeDataString(token)}", Ct))
                .ReadProblemAsync(400, "invalid_continuation_token");
        }

        Assert.Equal(2, (await Admin.GetJsonAsync($"/api/v1/users?pageSize=2&continuationToken={Uri.EscapeDataString(token)}")).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task SearchIgnoresCaseOverEmailDisplayNameAndStringCustomFields()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "nickname", type = "string" }, new { name = "team", type = "enum", values = UserApi.Names("Bletchley", "Navy") }, new { name = "level", type = "number" })).StatusCode);
        await Admin.CreateUserAsync("grace@navy.example", "Grace Hopper", fields: new { nickname = "Amazing Grace", level = 31337 });
        await Admin.CreateUserAsync("alan@cambridge.example", "Alan Turing", fields: new { nickname = "Prof", team = "Bletchley" });
        await Admin.CreateUserAsync("kj@nasa.example", "Katherine Johnson");

        async Task<IReadOnlyList<string>> Search(string q) => [.. (await Admin.EmailsAsync("q=" + Uri.EscapeDataString(q))).Order(StringComparer.Ordinal)];

        Assert.Equal(["grace@navy.example"], await Search("HOPPER"));
        Assert.Equal(["grace@navy.example"], await Search("  NaVy.Example "));
        Assert.Equal(["grace@navy.example"], await Search("amazing"));
        Assert.Equal(["alan@cambridge.example"], await Search("pROF"));
        Assert.Equal(["alan@cambridge.example"], await Search("bletchley"));
        Assert.Equal(["kj@nasa.example"], await Search("katherine j"));
        Assert.Equal(["alan@cambridge.example", "grace@navy.example"], await Search("ING"));
        Assert.Empty(await Search("31337"));
        Assert.Empty(await Search("' or 1 eq 1"));
        Assert.Equal(4, (await Search("")).Count);
        Assert.Equal(["q"], await (await Admin.GetAsync("/api/v1/users?q=" + new string('x', 201), Ct)).ValidationErrorsAsync());
    }

    [Fact]
    public async Task FiltersAndSortsOfTheContractWork()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(
            new { name = "level", type = "number" },
            new { name = "remote", type = "boolean" },
            new { name = "joined", type = "date" },
            new { name = "team", type = "enum", values = UserApi.Names("red", "blue", "green") },
            new { name = "nickname", type = "string" })).StatusCode);
        Clock.Advance(TimeSpan.FromSeconds(10));
        await Admin.CreateUserAsync("old@example.com", "Old One", fields: new { level = 2, remote = false, joined = "2020-05-01", team = "red" });
        Clock.Advance(TimeSpan.FromSeconds(10));
        var cutoff = Clock.GetUtcNow();
        Clock.Advance(TimeSpan.FromSeconds(10));
        await Admin.CreateUserAsync("new1@example.com", "New Three", fields: new { level = 5, remote = true, joined = "2026-02-01T09:00:00Z", team = "blue", nickname = "It's me" });
        Clock.Advance(TimeSpan.FromSeconds(10));
        var locked = (await Admin.CreateUserAsync("new2@example.com", "New Two", fields: new { level = 7, team = "green" })).Id();
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(locked, new { status = "locked" })).StatusCode);
        Clock.Advance(TimeSpan.FromSeconds(10));
        await Admin.CreateUserAsync("new3@example.com", "New One", roles: ["admin"]);
        var stamp = cutoff.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);

        async Task<IReadOnlyList<string>> Emails(string expression) => [.. (await Admin.EmailsAsync(Filter(expression))).Order(StringComparer.Ordinal)];

        // The contract's own example, verbatim, and with a cut-off between the users.
        Assert.Equal([Tenant.AdminEmail, "new1@example.com", "new3@example.com", "old@example.com"], await Emails("status eq 'active' and (createdAt ge 2026-01-01T00:00:00Z or roles has 'admin')"));
        Assert.Equal([Tenant.AdminEmail, "new1@example.com", "new3@example.com"], await Emails($"status eq 'active' and (createdAt ge {stamp} or roles has 'admin')"));
        Assert.Equal(["new1@example.com", "new2@example.com", "new3@example.com"], await Emails($"createdAt ge '{stamp}'"));
        Assert.Equal(["new2@example.com"], await Emails("status in ('locked', 'deleted')"));
        Assert.Equal([Tenant.AdminEmail, "new1@example.com", "new3@example.com", "old@example.com"], await Emails("not (status eq 'locked')"));
        Assert.Equal(["new1@example.com", "new2@example.com", "new3@example.com"], await Emails("email startswith 'new' AND displayName contains 'New'"));
        Assert.Equal(["new1@example.com"], await Emails("fields.level ge 5 and fields.level lt 7"));
        Assert.Equal(["new1@example.com"], await Emails("fields.remote eq true"));
        Assert.Equal(["old@example.com"], await Emails("fields.joined lt 2026-01-01"));
        Assert.Equal(["new1@example.com"], await Emails("fields.joined ge 2026-01-01T00:00:00Z"));
        Assert.Equal(["new1@example.com", "new2@example.com"], await Emails("fields.team in ('blue', 'green')"));
        Assert.Equal(["new1@example.com"], await Emails("fields.nickname eq 'It''s me'"));
        Assert.Equal([Tenant.AdminEmail, "new3@example.com"], await Emails("fields.level eq null and roles has 'admin'"));
        Assert.Equal([Tenant.AdminEmail, "new3@example.com"], await Emails("roles has 'admin'"));

        var newestFirst = await Admin.EmailsAsync("sort=-createdAt");
        Assert.Equal(["new3@example.com", "new1@example.com", "old@example.com", Tenant.AdminEmail], newestFirst.Where(e => e != "new2@example.com").ToList());
        Assert.Equal(["new2@example.com", "new1@example.com"], newestFirst.Where(e => e.StartsWith("new", StringComparison.Ordinal)).Skip(1).ToList());
        var byName = (await Admin.ListAsync("sort=displayName")).Select(u => u.Str("displayName")).ToList();
        Assert.Equal(byName.Order(StringComparer.Ordinal), byName);
        Assert.Equal(["New One", "New Three", "New Two"], byName.Where(n => n.StartsWith("New", StringComparison.Ordinal)));
        Assert.Equal(["new2@example.com", "new1@example.com", "old@example.com"], (await Admin.EmailsAsync("sort=-fields.level&" + Filter("fields.level ne null"))).ToList());

        foreach (var sort in UserApi.Names("password", "passwordHash", "roles", "-", "displayName,displayName", "a,b,c,d", "fields.nope", "createdAt desc"))
        {
            await (await Admin.GetAsync("/api/v1/users?sort=" + Uri.EscapeDataString(sort), Ct)).ReadProblemAsync(400, "invalid_sort");
        }

        foreach (var bad in UserApi.Names("passwordHash eq 'x'", "fields.level eq 'high'", "createdAt ge 'yesterday'", "roles eq 'admin'", "fields.nope eq 1", "status eq", "status eq 'active' and", "(status eq 'active'"))
        {
            var problem = await (await GetFiltered(bad)).ReadProblemAsync(400, "invalid_filter");
            Assert.Matches("position [0-9]+", problem.Str("detail"));
        }
    }

    [Fact]
    public async Task HostileFiltersAreRefusedQuickly()
    {
        var longest = TimeSpan.Zero;
        foreach (var expression in new[]
        {
            "' or true",
            "status eq 'a' or 1 eq 1",
            "status eq 'a' or true",
            "status eq 'a'; DROP TABLE users",
            "PartitionKey ne ''",
            string.Join(" or ", Enumerable.Repeat("status eq 'active'", 10_000)),
            string.Join(" or ", Enumerable.Repeat("id eq 'x'", 101)),
            new string('(', 10_000) + "status eq 'active'" + new string(')', 10_000),
            new string('(', 33) + "status eq 'active'" + new string(')', 33),
            string.Concat(Enumerable.Repeat("not ", 1_000)) + "status eq 'active'",
            string.Concat(Enumerable.Repeat("not ", 33)) + "status eq 'active'",
            "status in (" + string.Join(",", Enumerable.Repeat("'a'", 101)) + ")",
            "displayName eq '" + new string('x', 1_001) + "'",
            "status eq 'active",
        })
        {
            var watch = Stopwatch.StartNew();
            var response = await GetFiltered(expression);
            watch.Stop();

            await response.ReadProblemAsync(400, "invalid_filter");
            longest = watch.Elapsed > longest ? watch.Elapsed : longest;
        }

        Assert.True(longest < TimeSpan.FromSeconds(2), $"slowest refusal took {longest}");

        // A quote inside a string literal is just text, never syntax.
        var escaped = await Admin.GetJsonAsync("/api/v1/users?" + Filter("status eq 'a'' or ''1'' eq ''1'"));
        Assert.Empty(escaped.GetProperty("items").EnumerateArray());
        var nested = await Admin.GetJsonAsync("/api/v1/users?" + Filter(new string('(', 10) + "status eq 'active'" + new string(')', 10)));
        Assert.Single(nested.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task ListsOnAnotherInstanceCatchUpWithItsWritesThroughTheChangeLog()
    {
        var renamed = await Admin.CreateUserIdAsync("renamed@example.com");
        var deleted = await Admin.CreateUserIdAsync("deleted@example.com");
        await using var other = await new PlatformApp(Azurite, App.Prefix, services: s => s.AddSingleton<TimeProvider>(Clock)).ReadyAsync();
        using var elsewhere = other.CreateClient((await App.LoginAsync(Tenant)).AccessToken);
        Assert.Contains("deleted@example.com", await elsewhere.EmailsAsync());

        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(renamed, new { displayName = "Now Renamed" })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{deleted}", Ct)).StatusCode);
        await Admin.CreateUserIdAsync("added@example.com");
        Clock.Advance(ListProjection<UserEntity, UserListItem>.RefreshEvery);

        var users = await elsewhere.ListAsync("?pageSize=1000");

        Assert.Equal("Now Renamed", users.Single(u => u.Id() == renamed).Str("displayName"));
        Assert.DoesNotContain(users, u => u.Id() == deleted);
        Assert.Contains(users, u => u.Str("email") == "added@example.com");
    }

    [Fact]
    public async Task ListsCatchUpWithWritesOfAnInstanceWhoseClockIsTwentySecondsBehind()
    {
        var renamed = await Admin.CreateUserIdAsync("renamed@example.com");
        Assert.Contains("renamed@example.com", await Admin.EmailsAsync());
        var behind = new FakeTimeProvider(Clock.GetUtcNow() - TimeSpan.FromSeconds(20));
        await using var other = await new PlatformApp(Azurite, App.Prefix, services: s => s.AddSingleton<TimeProvider>(behind)).ReadyAsync();
        using var skewed = other.CreateClient((await other.LoginAsync(Tenant)).AccessToken);

        // Its change-log entries used to be keyed by its clock: behind this instance's last look and its 10 s overlap.
        Assert.Equal(HttpStatusCode.OK, (await skewed.PatchUserAsync(renamed, new { displayName = "Renamed Elsewhere" })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await skewed.PostUserAsync(new { email = "late@example.com", displayName = "Late" })).StatusCode);
        Clock.Advance(ListProjection<UserEntity, UserListItem>.RefreshEvery);

        var users = await Admin.ListAsync("?pageSize=1000");

        Assert.Equal("Renamed Elsewhere", users.Single(u => u.Id() == renamed).Str("displayName"));
        Assert.Contains(users, u => u.Str("email") == "late@example.com");
    }
}
