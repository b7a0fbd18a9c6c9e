using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;
using Platform.Functions.Usage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Reports;
using Platform.Tests.Users;

namespace Platform.Tests.Usage;

/// <summary>
/// Usage metering through the real pipeline: requests made over HTTP are gathered in memory, flushed to the usage
/// table every 200 ms here (<c>Platform:Usage:FlushInterval</c>), and read back through <c>GET /api/v1/usage</c>.
/// </summary>
public sealed class UsageTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string FailHeader = "X-Test-Fail";
    private const string UserById = "GET /api/v1/users/{id}";

    protected override bool SignsInAdmin => true;

    // The durable worker runs the usage report's job (POST /api/v1/reports); it makes no requests of its own.
    protected override IDictionary<string, string?> Settings => Platform.Tests.Reports.ReportApi.RunsReports(new Dictionary<string, string?>
    {
        ["Platform:Usage:FlushInterval"] = "00:00:00.200",
        ["Platform:ApiKeys:UsageFlushInterval"] = "00:00:00.200",
    });

    // A real 500 through the real pipeline: authorization of a request carrying the marker throws, the exception
    // handler answers 500 (and clears the endpoint), and metering must still name the route.
    // Some tests start a second instance on the app's storage and sign in there, which needs the clock to be now.
    protected override bool SharesApp => false;

    protected override void ConfigureServices(IServiceCollection services) => services.AddSingleton<IAuthorizationHandler, FailOnMarker>();

    [Fact]
    public async Task RequestsAreCountedPerRouteTemplateWithErrorsByStatus()
    {
        var ada = await Admin.CreateUserIdAsync("ada@example.com");
        var bob = await Admin.CreateUserIdAsync("bob@example.com");
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync($"/api/v1/users/{ada}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync($"/api/v1/users/{bob}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync("/api/v1/users/NOSUCHUSER", Ct)).StatusCode);
        using (var failing = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/users/{ada}"))
        {
            failing.Headers.Add(FailHeader, "1");
            Assert.Equal(HttpStatusCode.InternalServerError, (await Admin.SendAsync(failing, Ct)).StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync("/api/v1/no-such-route/xyz", Ct)).StatusCode);

        var items = await WaitForAsync(Admin, "groupBy=endpoint", i => Find(i, UserById)?.Requests >= 4 && Find(i, "(unmatched)") is not null);

        // Two users and an unknown id are one endpoint, named by its template; 404 and 500 are errors.
        var byId = Find(items, UserById)!;
        Assert.Equal(4, byId.Requests);
        Assert.Equal(2, byId.Errors);
        Assert.True(byId.P50Ms > 0 && byId.P50Ms <= byId.P95Ms && byId.P95Ms <= byId.P99Ms, $"percentiles {byId}");
        Assert.Equal(2, Find(items, "POST /api/v1/users")!.Requests);
        Assert.Equal(new UsageRow("(unmatched)", 1, 1, 0, 0, 0), Find(items, "(unmatched)")! with { P50Ms = 0, P95Ms = 0, P99Ms = 0 });
        Assert.DoesNotContain(items, i => i.Key.Contains(ada, StringComparison.Ordinal) || i.Key.Contains(bob, StringComparison.Ordinal) || i.Key.Contains("xyz", StringComparison.Ordinal));
        Assert.Equal(items.OrderByDescending(i => i.Requests).Select(i => i.Requests), items.Select(i => i.Requests));
    }

    [Fact]
    public async Task RequestsAreCountedPerApiKeyAndUser()
    {
        var reader = await CreateKeyAsync(["users.read", "usage.read"]);
        var narrow = await CreateKeyAsync(["inventory.read"]);
        using var readerClient = KeyClient(reader.Key);
        using var narrowClient = KeyClient(narrow.Key);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await readerClient.GetAsync("/api/v1/users", Ct)).StatusCode);
        }

        Assert.Equal(HttpStatusCode.Forbidden, (await narrowClient.GetAsync("/api/v1/users", Ct)).StatusCode);

        var items = await WaitForAsync(Admin, "groupBy=apiKey", i => Find(i, "apikey:" + narrow.Id) is not null && Find(i, "apikey:" + reader.Id)?.Requests >= 3);

        Assert.Equal((3, 0), (Find(items, "apikey:" + reader.Id)!.Requests, Find(items, "apikey:" + reader.Id)!.Errors));
        Assert.Equal((1, 1), (Find(items, "apikey:" + narrow.Id)!.Requests, Find(items, "apikey:" + narrow.Id)!.Errors));
        // The admin's own requests (creating the keys, asking for usage) are the admin's, by user id.
        Assert.True(Find(items, "user:" + Tenant.AdminId)?.Requests >= 2);
        Assert.All(items, i => Assert.Matches("^(apikey|user):[0-9A-Za-z]+$", i.Key));

        // A key with usage.read reads the same usage.
        var byKey = await UsageAsync(readerClient, "groupBy=apiKey");
        Assert.True(Find(byKey, "apikey:" + reader.Id)?.Requests >= 3);
    }

    [Fact]
    public async Task ConcurrentRequestsAreAllCountedWhileFlushesTakeTheirWindows()
    {
        const int Clients = 8;
        const int Each = 50;
        var key = await CreateKeyAsync(["users.read"]);
        using var client = KeyClient(key.Key);

        // Flushes every 200 ms swap the window under requests still recording: none may be lost or counted twice.
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
        {
            for (var i = 0; i < Each; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/permissions", Ct)).StatusCode);
            }
        }));

        var items = await WaitForAsync(Admin, "groupBy=apiKey", i => Find(i, "apikey:" + key.Id)?.Requests >= Clients * Each);
        Assert.Equal(Clients * Each, Find(items, "apikey:" + key.Id)!.Requests);
        var endpoints = await UsageAsync(Admin, "groupBy=endpoint");
        Assert.Equal(Clients * Each, Find(endpoints, "GET /api/v1/permissions")!.Requests);
    }

    [Fact]
    public async Task RequestsAreCountedPerDayOfTheAppsClock()
    {
        var key = await CreateKeyAsync(["users.read", "usage.read"]);
        using var client = KeyClient(key.Key);
        var first = Clock.GetUtcNow();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/users", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/users", Ct)).StatusCode);
        await WaitForAsync(client, "groupBy=apiKey", i => Find(i, "apikey:" + key.Id)?.Requests >= 2);

        Clock.Advance(TimeSpan.FromDays(1));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/api/v1/users/NOSUCHUSER", Ct)).StatusCode);

        var day1 = first.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var day2 = first.AddDays(1).UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var items = await WaitForAsync(client, "groupBy=day", i => Find(i, day2)?.Errors >= 1);

        Assert.Equal([day1, day2], items.Select(i => i.Key));
        Assert.Equal(1, Find(items, day2)!.Errors);
        Assert.Equal(0, Find(items, day1)!.Errors);
        Assert.True(Find(items, day1)!.Requests >= 3, "the key's two requests and its first usage poll, plus the admin's");

        // A range that ends before the second day leaves it out.
        var until = Uri.EscapeDataString(first.AddHours(1).ToString("O", CultureInfo.InvariantCulture));
        var firstDayOnly = await UsageAsync(client, $"groupBy=day&to={until}");
        Assert.Equal([day1], firstDayOnly.Select(i => i.Key));
    }

    [Fact]
    public async Task AnotherTenantsRequestsNeverAppear()
    {
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        Assert.Equal(HttpStatusCode.OK, (await otherAdmin.GetAsync("/api/v1/roles", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await otherAdmin.GetAsync("/api/v1/users/NOSUCHUSER", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync("/api/v1/me", Ct)).StatusCode);

        // The other tenant sees its own requests ...
        var theirs = await WaitForAsync(otherAdmin, "groupBy=endpoint", i => Find(i, "GET /api/v1/roles") is not null && Find(i, UserById) is not null);
        Assert.Null(Find(theirs, "GET /api/v1/me"));
        await WaitForAsync(Admin, "groupBy=endpoint", i => Find(i, "GET /api/v1/me") is not null);

        // ... and this tenant never sees them, whatever the grouping.
        var mine = await UsageAsync(Admin, "groupBy=endpoint");
        Assert.Null(Find(mine, "GET /api/v1/roles"));
        Assert.Null(Find(mine, UserById));
        var callers = await UsageAsync(Admin, "groupBy=apiKey");
        Assert.Equal(["user:" + Tenant.AdminId], callers.Select(i => i.Key));
        var theirCallers = await UsageAsync(otherAdmin, "groupBy=apiKey");
        Assert.Equal(["user:" + other.AdminId], theirCallers.Select(i => i.Key));
    }

    [Fact]
    public async Task UsageNeedsUsageRead()
    {
        using var plain = await SignedInAsync("plain@example.com");
        using var manager = await SignedInAsync("manager@example.com", "manager");
        var key = await CreateKeyAsync(["users.read"]);
        using var keyClient = KeyClient(key.Key);
        using var anonymous = App.CreateClient();

        await (await plain.GetAsync("/api/v1/usage", Ct)).ReadProblemAsync(403, "forbidden");
        await (await manager.GetAsync("/api/v1/usage", Ct)).ReadProblemAsync(403, "forbidden");
        await (await keyClient.GetAsync("/api/v1/usage", Ct)).ReadProblemAsync(403, "forbidden");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/usage", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync("/api/v1/usage", Ct)).StatusCode);
    }

    [Theory]
    [InlineData("groupBy=week", "groupBy")]
    [InlineData("groupBy=", "groupBy")]
    [InlineData("groupBy=Day", "groupBy")]
    [InlineData("from=yesterday", "from")]
    [InlineData("to=2026-13-45T00:00:00Z", "to")]
    [InlineData("from=0001-01-01T00:00:00Z", "from")]
    [InlineData("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    [InlineData("from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    [InlineData("from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    public async Task BadQueriesAre400NamingTheField(string query, string field)
    {
        var problem = await (await Admin.GetAsync("/api/v1/usage?" + query, Ct)).ReadProblemAsync(400, "validation_failed");

        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task UnauthenticatedTrafficIsAttributedToNoTenant()
    {
        using var anonymous = App.CreateClient();
        using var forged = App.CreateClient("not.a.token");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/me", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await forged.GetAsync("/api/v1/me", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await anonymous.GetAsync("/api/v1/no-such-route", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync("/api/v1/me", Ct)).StatusCode);

        var items = await WaitForAsync(Admin, "groupBy=endpoint", i => Find(i, "GET /api/v1/me") is not null);

        // Only the admin's own request: none of the anonymous ones, nor the sign-ins (the admin's included).
        Assert.Equal((1, 0), (Find(items, "GET /api/v1/me")!.Requests, Find(items, "GET /api/v1/me")!.Errors));
        Assert.Null(Find(items, "POST /api/v1/auth/login"));
        Assert.Null(Find(items, "(unmatched)"));

        // Nor is anything stored outside the tenant's partition.
        var partitions = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var row in App.Storage.Table(UsageStore.TableName).QueryAsync<TableEntity>(select: ["PartitionKey"], cancellationToken: Ct))
        {
            partitions.Add(row.PartitionKey);
        }

        Assert.Equal([Tenant.Id], partitions);
    }

    [Fact]
    public async Task UsageReportTypeBuildsItsDocumentFromStoredUsage()
    {
        var key = await CreateKeyAsync(["users.read"]);
        using var keyClient = KeyClient(key.Key);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await keyClient.GetAsync("/api/v1/users", Ct)).StatusCode);
        }

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync($"/api/v1/users/NOSUCH{i}", Ct)).StatusCode);
        }

        await WaitForAsync(Admin, "groupBy=endpoint", i => Find(i, UserById)?.Requests >= 4 && Find(i, "GET /api/v1/users")?.Requests >= 3);

        // Made as a reader makes it: a json report through the route, its job waited for, the file downloaded. The
        // report's own requests (the start, the job polls) are not errors, so the error counts stay exact.
        var now = Clock.GetUtcNow();
        var document = await Admin.ReportDocumentAsync("usage", now.AddDays(-7), now.AddMinutes(1));

        Assert.Equal("usage", document.Type);
        var figures = document.Figures;
        Assert.Equal(["errorRate", "errors", "p50Ms", "p95Ms", "p99Ms", "requests"], figures.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(4, figures["errors"]);
        Assert.True(figures["requests"] >= 7, $"requests {figures["requests"]}");
        Assert.Equal(Math.Round(4 / figures["requests"], 4), figures["errorRate"]);
        Assert.True(figures["p50Ms"] > 0 && figures["p50Ms"] <= figures["p95Ms"] && figures["p95Ms"] <= figures["p99Ms"]);

        var tables = document.Sections.SelectMany(s => s.Tables).ToDictionary(t => t.Name);
        var charts = document.Sections.SelectMany(s => s.Charts).ToDictionary(c => c.Name);
        Assert.Equal(["latency-per-day", "requests-per-api-key", "requests-per-day", "requests-per-endpoint"], tables.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["latency-per-day", "requests-per-day"], charts.Keys.Order(StringComparer.Ordinal));

        var today = now.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        Assert.Equal([today], charts["requests-per-day"].Categories);
        Assert.Equal(figures["requests"], charts["requests-per-day"].Series.Sum(s => s.Values.Sum()));
        Assert.Equal(["p50", "p95", "p99"], charts["latency-per-day"].Series.Select(s => s.Name));
        var perDay = Assert.Single(tables["requests-per-day"].Rows);
        Assert.Equal((long)figures["requests"], perDay[1]);
        Assert.Equal(4L, perDay[2]);

        var endpoints = tables["requests-per-endpoint"].Rows.ToDictionary(r => (string)r[0]!);
        Assert.Equal(4L, endpoints[UserById][1]);
        Assert.Equal(4L, endpoints[UserById][2]);
        Assert.Equal(1.0, endpoints[UserById][3]);
        Assert.Equal(figures["requests"], tables["requests-per-endpoint"].Rows.Sum(r => (long)r[1]!));
        var callers = tables["requests-per-api-key"].Rows.ToDictionary(r => (string)r[0]!);
        Assert.Equal(3L, callers["apikey:" + key.Id][1]);
        Assert.Equal(0L, callers["apikey:" + key.Id][2]);
        Assert.Equal(4L, callers["user:" + Tenant.AdminId][2]);

        // The type takes no filter, and needs usage.read besides reports.read (both refusals come after the report, as
        // they are errors of this tenant too).
        Assert.Contains("no filter", await Admin.RefusedFilterAsync("usage", "requests gt 5"), StringComparison.Ordinal);
        (await Admin.PutRoleAsync("report-reader", "reports.read")).EnsureSuccessStatusCode();
        using (var reportReader = await SignedInAsync("reports@example.com", "report-reader"))
        {
            var forbidden = await (await reportReader.PostAsJsonAsync("/api/v1/reports", new { type = "usage", format = "json" }, Ct)).ReadProblemAsync(403, "forbidden");
            Assert.Contains("usage.read", forbidden.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        // Another tenant's report over the same period holds none of it. Its own requests (signing up and in, making the
        // report) come two hours later on the app's clock, outside the period.
        Clock.Advance(TimeSpan.FromHours(2));
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        var empty = await otherAdmin.ReportDocumentAsync("usage", now.AddDays(-7), now.AddMinutes(1));
        Assert.Equal(0, empty.Figures["requests"]);
        Assert.Empty(empty.Sections.SelectMany(s => s.Tables).SelectMany(t => t.Rows));
    }

    [Fact]
    public async Task HourlyRollupKeepsTheCountsAndRetentionDeletesOldRows()
    {
        var key = await CreateKeyAsync(["users.read", "usage.read"]);
        using var client = KeyClient(key.Key);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/users", Ct)).StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/api/v1/users/NOSUCH", Ct)).StatusCode);
        var before = await WaitForAsync(client, "groupBy=endpoint", i => Find(i, "GET /api/v1/users")?.Requests >= 5 && Find(i, UserById) is not null);

        // Two hours later the rollup merges every minute row of the past hours into hour rows.
        Clock.Advance(TimeSpan.FromHours(2));
        var tenant = new TenantId(Tenant.Id);
        var rows = App.Storage.TenantTable(UsageStore.TableName).For(tenant);
        // (Polled: the UsageRollup timer, due on the moved clock, may take some of the rows first.)
        var currentHour = UsageStore.Floor(Clock.GetUtcNow(), TimeSpan.FromHours(1));
        var keys = await Eventually.Until(async () =>
        {
            using var scope = App.Services.CreateScope();
            await scope.ServiceProvider.GetRequiredService<UsageRollup>().RollUpAsync(tenant, currentHour, Ct);
            var found = new List<string>();
            await foreach (var row in rows.QueryAsync<TableEntity>(cancellationToken: Ct))
            {
                found.Add(row.RowKey);
            }

            return found;
        }, found => !found.Any(k => k.StartsWith("m:", StringComparison.Ordinal) && string.CompareOrdinal(k, UsageRows.MinuteKey(currentHour)) < 0), "the past minute rows to be merged");

        Assert.Contains(keys, k => k.StartsWith("h:", StringComparison.Ordinal));
        var since = Uri.EscapeDataString(Clock.GetUtcNow().AddDays(-1).ToString("O", CultureInfo.InvariantCulture));
        var after = await UsageAsync(client, $"groupBy=endpoint&from={since}");
        Assert.Equal(Find(before, "GET /api/v1/users")!.Requests, Find(after, "GET /api/v1/users")!.Requests);
        Assert.Equal(Find(before, UserById), Find(after, UserById));

        // Past the retention, every row goes (polled: the last usage request of this test is flushed behind it).
        Clock.Advance(TimeSpan.FromDays(401));
        await Eventually.Until(async () =>
        {
            using var scope = App.Services.CreateScope();
            await scope.ServiceProvider.GetRequiredService<UsageRollup>().RunAsync(new TimerInvocation(false, null, null), Ct);
            var left = new List<string>();
            await foreach (var row in rows.QueryAsync<TableEntity>(cancellationToken: Ct))
            {
                left.Add(row.RowKey);
            }

            return left;
        }, left => left.Count == 0, "the usage rows to pass their retention");
    }

    [Fact]
    public async Task AGracefulStopWritesWhatWasGatheredAndTheKeyCapOverflowsIntoOther()
    {
        // A second instance on the same storage that would not flush for an hour, and holds at most 10 keys.
        var token = (await App.LoginAsync(Tenant)).AccessToken;
        var instance = await new PlatformApp(Azurite, App.Prefix, new Dictionary<string, string?>
        {
            ["Platform:Usage:FlushInterval"] = "01:00:00",
            ["Platform:Usage:MaxKeysPerFlush"] = "10",
        }).ReadyAsync();
        string[] routes =
        [
            "/api/v1/me", "/api/v1/users", "/api/v1/users/NOSUCH", "/api/v1/users/NOSUCH/export", "/api/v1/roles", "/api/v1/api-keys",
            "/api/v1/audit", "/api/v1/schema/users", "/api/v1/permissions", "/api/v1/inventory/analytics", "/api/v1/inventory/reorder-suggestions",
            "/api/v1/jobs", "/api/v1/webhooks/event-types", "/api/v1/no-such-route",
        ];
        try
        {
            using var client = instance.CreateClient(token);
            foreach (var route in routes)
            {
                await client.GetAsync(route, Ct);
            }
        }
        finally
        {
            await instance.DisposeAsync();
        }

        // Its usage was written when it stopped: every request, the ones past the cap under (other).
        var from = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-1).ToString("O", CultureInfo.InvariantCulture));
        var to = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(1).ToString("O", CultureInfo.InvariantCulture));
        var items = await UsageAsync(Admin, $"groupBy=endpoint&from={from}&to={to}");
        var other = Find(items, "(other)");
        Assert.NotNull(other);
        Assert.Equal(routes.Length - 10, other.Requests);
        Assert.Contains(items, i => i.Key == "GET /api/v1/me");
        var callers = await UsageAsync(Admin, $"groupBy=apiKey&from={from}&to={to}");
        Assert.Equal(routes.Length - 10, Find(callers, "(other)")!.Requests);
    }

    [Fact]
    public async Task AnInstanceWithMeteringOffCountsNothing()
    {
        var token = (await App.LoginAsync(Tenant)).AccessToken;
        var instance = await new PlatformApp(Azurite, App.Prefix, new Dictionary<string, string?> { ["Platform:Usage:Enabled"] = "false" }).ReadyAsync();
        try
        {
            using var client = instance.CreateClient(token);
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/roles", Ct)).StatusCode);
            }
        }
        finally
        {
            // Metering on, its stop would write these requests now.
            await instance.DisposeAsync();
        }

        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync("/api/v1/me", Ct)).StatusCode);
        var from = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-1).ToString("O", CultureInfo.InvariantCulture));
        var to = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(1).ToString("O", CultureInfo.InvariantCulture));
        var items = await WaitForAsync(Admin, $"groupBy=endpoint&from={from}&to={to}", i => Find(i, "GET /api/v1/me") is not null);
        Assert.Null(Find(items, "GET /api/v1/roles"));
    }

    private sealed record CreatedKey(string Id, string Key);

    private sealed record UsageRow(string Key, long Requests, long Errors, double P50Ms, double P95Ms, double P99Ms);

    private async Task<CreatedKey> CreateKeyAsync(string[] permissions)
    {
        var response = await Admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "usage test", permissions }, Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return new CreatedKey(body.GetProperty("id").GetString()!, body.GetProperty("key").GetString()!);
    }

    private HttpClient KeyClient(string key)
    {
        var client = App.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    private static UsageRow? Find(IEnumerable<UsageRow> items, string key) => items.FirstOrDefault(i => i.Key == key);

    private static async Task<List<UsageRow>> UsageAsync(HttpClient client, string query)
    {
        var response = await client.GetAsync("/api/v1/usage?" + query, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return [.. body.GetProperty("items").EnumerateArray().Select(i => new UsageRow(
            i.GetProperty("key").GetString()!, i.GetProperty("requests").GetInt64(), i.GetProperty("errors").GetInt64(),
            i.GetProperty("p50Ms").GetDouble(), i.GetProperty("p95Ms").GetDouble(), i.GetProperty("p99Ms").GetDouble()))];
    }

    private static Task<List<UsageRow>> WaitForAsync(HttpClient client, string query, Func<List<UsageRow>, bool> done) =>
        Eventually.Until(() => UsageAsync(client, query), done, $"usage ({query}) to show the requests");

    private sealed class FailOnMarker : IAuthorizationHandler
    {
        public Task HandleAsync(AuthorizationHandlerContext context) =>
            context.Resource is HttpContext http && http.Request.Headers.ContainsKey(FailHeader)
                ? throw new InvalidOperationException("Failing this request on purpose (test).")
                : Task.CompletedTask;
    }
}
