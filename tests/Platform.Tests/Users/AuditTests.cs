using System.Globalization;
using System.Net;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>GET /api/v1/audit: what happened, filtered by actor, target, action and time, in pages.</summary>
public sealed class AuditTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private static string Iso(DateTimeOffset at) => Uri.EscapeDataString(at.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));

    private async Task<IReadOnlyList<JsonElement>> EntriesAsync(string query)
    {
        var page = await Admin.GetJsonAsync($"/api/v1/audit?pageSize=1000&{query}");
        Assert.Equal(JsonValueKind.Null, page.GetProperty("continuationToken").ValueKind);
        return [.. page.GetProperty("items").EnumerateArray()];
    }

    private static IReadOnlyList<string> Actions(IEnumerable<JsonElement> entries) => [.. entries.Select(e => e.Str("action"))];

    [Fact]
    public async Task EntriesFilterByActorTargetActionAndTime()
    {
        Clock.Advance(TimeSpan.FromSeconds(1));
        var created = Clock.GetUtcNow();
        var ada = await Admin.CreateUserIdAsync("ada@example.com", Accounts.Password);
        Clock.Advance(TimeSpan.FromSeconds(1));
        var updated = Clock.GetUtcNow();
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(ada, new { displayName = "Ada L." })).StatusCode);
        Clock.Advance(TimeSpan.FromSeconds(1));
        using var anonymous = App.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.PostLoginAsync(Tenant.Slug, "ada@example.com", Accounts.Password)).StatusCode);
        Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostLoginAsync(Tenant.Slug, "ada@example.com", "not her password")).StatusCode);

        var aboutAda = await EntriesAsync($"targetId={ada}");
        Assert.Equal(["user.created", "user.updated", "auth.login.failed"], Actions(aboutAda));
        var first = aboutAda[0];
        Assert.Equal(Tenant.AdminId, first.Str("actorId"));
        Assert.Equal("user", first.Str("actorType"));
        Assert.Equal("user", first.Str("targetType"));
        Assert.Equal(ada, first.Str("targetId"));
        Assert.Equal("ada@example.com", first.GetProperty("changes").Str("email"));
        Assert.Equal(created.UtcDateTime, first.GetProperty("at").GetDateTimeOffset().UtcDateTime, TimeSpan.FromMilliseconds(1));
        Assert.False(string.IsNullOrEmpty(first.Str("id")));
        Assert.True(first.TryGetProperty("ip", out _));
        Assert.Equal("Ada L.", aboutAda[1].GetProperty("changes").Str("displayName"));
        Assert.Equal("anonymous", aboutAda[2].Str("actorType"));

        Assert.Equal(["auth.login.succeeded"], Actions(await EntriesAsync($"actorId={ada}")));
        var updates = await EntriesAsync("action=user.updated");
        Assert.Equal(ada, Assert.Single(updates).Str("targetId"));
        Assert.Equal(["user.updated"], Actions(await EntriesAsync($"from={Iso(updated)}&to={Iso(updated)}")));
        Assert.Equal(["user.updated", "auth.login.succeeded", "auth.login.failed"], Actions(await EntriesAsync($"from={Iso(updated)}")));
        var before = await EntriesAsync($"to={Iso(created.AddMilliseconds(-1))}");
        Assert.DoesNotContain(before, e => e.Str("targetId") == ada || e.Str("actorId") == ada);
        Assert.Contains("tenant.created", Actions(before));
        Assert.Equal(["user.created"], Actions(await EntriesAsync($"targetId={ada}&action=user.created&actorId={Tenant.AdminId}&from={Iso(created)}&to={Iso(created)}")));
        Assert.Empty(await EntriesAsync($"targetId={ada}&action=user.created&actorId={ada}"));
        Assert.Empty(await EntriesAsync("targetId=01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        Assert.Empty(await EntriesAsync("targetId=" + Uri.EscapeDataString("x' or TargetId ne '")));

        Assert.Equal(["from"], await (await Admin.GetAsync($"/api/v1/audit?from={Iso(updated)}&to={Iso(created)}", Ct)).ValidationErrorsAsync());
        Assert.Equal(["actorId"], await (await Admin.GetAsync($"/api/v1/audit?actorId={new string('a', 101)}", Ct)).ValidationErrorsAsync());
        Assert.Equal(["pageSize"], await (await Admin.GetAsync("/api/v1/audit?pageSize=1001", Ct)).ValidationErrorsAsync());
    }

    [Fact]
    public async Task TheFarEndsOfTimeBoundARangeLikeAnyOtherInstant()
    {
        // The last instant a timestamp can hold has no next millisecond to bound the range with.
        var all = await EntriesAsync($"from={Uri.EscapeDataString("0001-01-01T00:00:00Z")}&to={Uri.EscapeDataString("9999-12-31T23:59:59.9999999Z")}");

        Assert.Contains("tenant.created", Actions(all));
        Assert.Empty(await EntriesAsync($"from={Uri.EscapeDataString("9999-12-31T23:59:59.9999999Z")}"));
    }

    [Fact]
    public async Task PagesOfTwoWalkTheWholeTrailOnce()
    {
        for (var i = 0; i < 5; i++)
        {
            Clock.Advance(TimeSpan.FromMilliseconds(10));
            await Admin.CreateUserIdAsync($"user{i}@example.com");
        }

        var all = await EntriesAsync("");
        var pages = await Admin.PagesAsync("/api/v1/audit?pageSize=2");

        Assert.True(all.Count >= 8, $"only {all.Count} entries");
        Assert.True(pages.Count >= all.Count / 2, $"{pages.Count} pages for {all.Count} entries");
        Assert.All(pages, p => Assert.True(p.Count <= 2));
        var paged = pages.SelectMany(p => p).Select(e => e.Str("id")).ToList();
        Assert.Equal(all.Select(e => e.Str("id")), paged);
        Assert.Equal(paged.Order(StringComparer.Ordinal), paged);

        var filtered = await Admin.PagesAsync("/api/v1/audit?pageSize=2&action=user.created");
        Assert.Equal(6, filtered.Sum(p => p.Count));

        var token = (await Admin.GetJsonAsync("/api/v1/audit?pageSize=2")).Str("continuationToken");
        await (await Admin.GetAsync($"/api/v1/audit?pageSize=3&continuationToken={Uri.EscapeDataString(token)}", Ct)).ReadProblemAsync(400, "invalid_continuation_token");
        await (await Admin.GetAsync($"/api/v1/audit?pageSize=2&action=user.created&continuationToken={Uri.EscapeDataString(token)}", Ct)).ReadProblemAsync(400, "invalid_continuation_token");
        await (await Admin.GetAsync($"/api/v1/audit?pageSize=2&continuationToken={Uri.EscapeDataString(token[..^3] + "AAA")}", Ct)).ReadProblemAsync(400, "invalid_continuation_token");
    }

    [Fact]
    public async Task ReadingTheTrailNeedsAuditRead()
    {
        await Admin.CreateUserIdAsync("manager@example.com", Accounts.Password, ["manager"]);
        Assert.Equal(HttpStatusCode.Created, (await Admin.PutRoleAsync("people", "users.read", "users.write", "users.delete", "roles.manage")).StatusCode);
        await Admin.CreateUserIdAsync("people@example.com", Accounts.Password, ["people"]);
        await Admin.CreateUserIdAsync("plain@example.com", Accounts.Password);
        using var manager = await App.SignInAsAsync(Tenant, "manager@example.com");
        using var people = await App.SignInAsAsync(Tenant, "people@example.com");
        using var plain = await App.SignInAsAsync(Tenant, "plain@example.com");

        Assert.Equal(HttpStatusCode.OK, (await manager.GetAsync("/api/v1/audit", Ct)).StatusCode);
        await (await people.GetAsync("/api/v1/audit", Ct)).ReadProblemAsync(403, "forbidden");
        await (await plain.GetAsync("/api/v1/audit", Ct)).ReadProblemAsync(403, "forbidden");
        using var anonymous = App.CreateClient();
        await (await anonymous.GetAsync("/api/v1/audit", Ct)).ReadProblemAsync(401, "unauthorized");
    }
}
