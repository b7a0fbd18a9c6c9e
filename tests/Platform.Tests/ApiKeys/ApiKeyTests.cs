using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.ApiKeys;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.ApiKeys;

public sealed class ApiKeyTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string Manage = "apikeys.manage";
    private const int Limit = 4;
    private static readonly string[] UnknownPermission = ["inventory.read", "no.such"];

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Platform:ApiKeys:UsageFlushInterval"] = "00:00:00.200",
        ["Platform:ApiKeys:MaxKeysPerTenant"] = Limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task CreateReturnsAPlkKeyOnceAndListsNeverShowIt()
    {
        using var admin = await App.SignedInClientAsync(Tenant);

        var response = await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "CI deploys", permissions = new[] { Manage } }, Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString(), StringComparison.Ordinal);
        var created = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var id = created.GetProperty("id").GetString()!;
        var key = created.GetProperty("key").GetString()!;
        var prefix = created.GetProperty("prefix").GetString()!;
        Assert.Matches("^plk_[0-9a-z]{12}_[A-Za-z0-9_-]{43}$", key);
        Assert.Equal(key[4..16], prefix);
        Assert.Equal("CI deploys", created.GetProperty("name").GetString());
        Assert.Equal([Manage], created.GetProperty("permissions").EnumerateArray().Select(p => p.GetString()!));
        Assert.Equal(JsonValueKind.Null, created.GetProperty("expiresAt").ValueKind);
        Assert.Equal(Tenant.AdminId, created.GetProperty("createdBy").GetString());
        Assert.True(created.TryGetProperty("createdAt", out _));
        Assert.Equal($"/api/v1/api-keys/{id}", response.Headers.Location?.OriginalString);

        var secret = key[17..];
        var list = await admin.GetAsync("/api/v1/api-keys", Ct);
        var listText = await list.Content.ReadAsStringAsync(Ct);
        var page = JsonSerializer.Deserialize<JsonElement>(listText);
        var item = Assert.Single(page.GetProperty("items").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, page.GetProperty("continuationToken").ValueKind);
        Assert.Equal(id, item.GetProperty("id").GetString());
        Assert.Equal(prefix, item.GetProperty("prefix").GetString());
        Assert.Equal("active", item.GetProperty("status").GetString());
        Assert.Equal(0, item.GetProperty("useCount").GetInt64());
        Assert.Equal(JsonValueKind.Null, item.GetProperty("lastUsedAt").ValueKind);
        Assert.False(item.TryGetProperty("key", out _));
        Assert.DoesNotContain(secret, listText, StringComparison.Ordinal);

        var single = await admin.GetAsync($"/api/v1/api-keys/{id}", Ct);
        Assert.Equal(HttpStatusCode.OK, single.StatusCode);
        Assert.NotNull(single.Headers.ETag);
        var singleText = await single.Content.ReadAsStringAsync(Ct);
        Assert.DoesNotContain(secret, singleText, StringComparison.Ordinal);
        Assert.False(JsonSerializer.Deserialize<JsonElement>(singleText).TryGetProperty("key", out _));

        // Stored as a hash only.
        var row = await App.Storage.TenantTable(ApiKeyStore.TableName).For(new TenantId(Tenant.Id)).GetAsync<TableEntity>("k:" + id, Ct);
        Assert.NotNull(row);
        Assert.DoesNotContain(row, v => v.Value is string s && s.Contains(secret, StringComparison.Ordinal));
    }

    [Fact]
    public async Task KeyAuthenticatesWithBothHeaderFormsAndOnlyWithinItsScope()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var manage = await CreateKeyAsync(admin, [Manage]);
        var reader = await CreateKeyAsync(admin, ["inventory.read", "users.read"]);

        using var byAuthorization = KeyClient(manage.Key);
        using var byHeader = KeyClient(manage.Key, xApiKey: true);
        using var readerClient = KeyClient(reader.Key);

        Assert.Equal(HttpStatusCode.OK, (await byAuthorization.GetAsync("/api/v1/api-keys", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await byHeader.GetAsync("/api/v1/api-keys", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await byHeader.GetAsync($"/api/v1/api-keys/{reader.Id}", Ct)).StatusCode);

        // A key acts as its creator: /me (for a key, with users.read) is the admin.
        var me = await readerClient.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.Equal(Tenant.AdminId, me.GetProperty("id").GetString());

        // ... but only within its permissions.
        await (await readerClient.GetAsync("/api/v1/api-keys", Ct)).ReadProblemAsync(403, "forbidden");
    }

    [Fact]
    public async Task KeyCannotBeGivenAPermissionItsCreatorLacks()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var manage = await CreateKeyAsync(admin, [Manage]);
        using var keyClient = KeyClient(manage.Key);

        var refused = await keyClient.PostAsJsonAsync("/api/v1/api-keys", new { name = "escalate", permissions = new[] { Manage, "tenant.manage" } }, Ct);

        var problem = await refused.ReadProblemAsync(403, "permission_not_held");
        Assert.Equal(["tenant.manage"], problem.GetProperty("permissions").EnumerateArray().Select(p => p.GetString()!));

        var allowed = await keyClient.PostAsJsonAsync("/api/v1/api-keys", new { name = "sibling", permissions = new[] { Manage } }, Ct);
        Assert.Equal(HttpStatusCode.Created, allowed.StatusCode);
        var sibling = await allowed.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(Tenant.AdminId, sibling.GetProperty("createdBy").GetString());
    }

    [Fact]
    public async Task KeyMadeWithAnExpiringKeyCannotOutliveIt()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var parentExpiry = Clock.GetUtcNow().AddHours(1);
        var parent = await CreateKeyAsync(admin, [Manage], parentExpiry);
        using var keyClient = KeyClient(parent.Key);

        var forever = await keyClient.PostAsJsonAsync("/api/v1/api-keys", new { name = "forever", permissions = new[] { Manage } }, Ct);
        var later = await keyClient.PostAsJsonAsync("/api/v1/api-keys", new { name = "later", permissions = new[] { Manage }, expiresAt = parentExpiry.AddMinutes(1) }, Ct);
        var within = await keyClient.PostAsJsonAsync("/api/v1/api-keys", new { name = "within", permissions = new[] { Manage }, expiresAt = parentExpiry }, Ct);

        Assert.True((await forever.ReadProblemAsync(400, "validation_failed")).GetProperty("errors").TryGetProperty("expiresAt", out _));
        Assert.True((await later.ReadProblemAsync(400, "validation_failed")).GetProperty("errors").TryGetProperty("expiresAt", out _));
        Assert.Equal(HttpStatusCode.Created, within.StatusCode);
    }

    [Fact]
    public async Task InvalidCreateRequestsNameTheirFields()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var now = Clock.GetUtcNow();

        var unknown = await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "k", permissions = UnknownPermission }, Ct);
        var none = await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = " ", permissions = Array.Empty<string>() }, Ct);
        var past = await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "k", permissions = new[] { Manage }, expiresAt = now.AddSeconds(-1) }, Ct);
        var tooFar = await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "k", permissions = new[] { Manage }, expiresAt = now.AddYears(2).AddDays(1) }, Ct);

        var errors = (await unknown.ReadProblemAsync(400, "validation_failed")).GetProperty("errors");
        Assert.Contains("no.such", errors.GetProperty("permissions")[0].GetString(), StringComparison.Ordinal);
        errors = (await none.ReadProblemAsync(400, "validation_failed")).GetProperty("errors");
        Assert.True(errors.TryGetProperty("name", out _) && errors.TryGetProperty("permissions", out _));
        Assert.True((await past.ReadProblemAsync(400, "validation_failed")).GetProperty("errors").TryGetProperty("expiresAt", out _));
        Assert.True((await tooFar.ReadProblemAsync(400, "validation_failed")).GetProperty("errors").TryGetProperty("expiresAt", out _));
    }

    [Fact]
    public async Task RevokedKeyIsRefusedAtOnce()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage]);
        using var keyClient = KeyClient(key.Key);
        Assert.Equal(HttpStatusCode.OK, (await keyClient.GetAsync("/api/v1/api-keys", Ct)).StatusCode);

        var revoked = await admin.DeleteAsync($"/api/v1/api-keys/{key.Id}", Ct);

        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        await (await keyClient.GetAsync("/api/v1/api-keys", Ct)).ReadProblemAsync(401, "unauthorized");
        await (await keyClient.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        await (await admin.GetAsync($"/api/v1/api-keys/{key.Id}", Ct)).ReadProblemAsync(404, "not_found");
        await (await admin.DeleteAsync($"/api/v1/api-keys/{key.Id}", Ct)).ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task DeleteHonoursIfMatch()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage]);
        var etag = (await admin.GetAsync($"/api/v1/api-keys/{key.Id}", Ct)).Headers.ETag!.Tag;

        using var stale = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/api-keys/{key.Id}");
        stale.Headers.TryAddWithoutValidation("If-Match", "\"0000\"");
        await (await admin.SendAsync(stale, Ct)).ReadProblemAsync(412, "precondition_failed");

        using var current = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/api-keys/{key.Id}");
        current.Headers.TryAddWithoutValidation("If-Match", etag);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(current, Ct)).StatusCode);
    }

    [Fact]
    public async Task RotationKeepsTheOldKeyWorkingForTheGracePeriodOnly()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage]);
        using var oldClient = KeyClient(key.Key);
        Assert.Equal(HttpStatusCode.OK, (await oldClient.GetAsync("/api/v1/api-keys", Ct)).StatusCode);

        var rotate = await admin.PostAsJsonAsync($"/api/v1/api-keys/{key.Id}/rotate", new { graceSeconds = 60 }, Ct);

        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        var rotated = await rotate.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var newKey = rotated.GetProperty("key").GetString()!;
        Assert.Matches("^plk_[0-9a-z]{12}_[A-Za-z0-9_-]{43}$", newKey);
        Assert.NotEqual(key.Key, newKey);
        Assert.Equal(key.Id, rotated.GetProperty("id").GetString());
        Assert.Equal(newKey[4..16], rotated.GetProperty("prefix").GetString());
        Assert.Equal(key.Key[4..16], rotated.GetProperty("previousPrefix").GetString());
        using var newClient = KeyClient(newKey, xApiKey: true);
        Assert.Equal(HttpStatusCode.OK, (await oldClient.GetAsync("/api/v1/api-keys", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await newClient.GetAsync("/api/v1/api-keys", Ct)).StatusCode);

        Clock.Advance(TimeSpan.FromSeconds(61));

        await (await oldClient.GetAsync("/api/v1/api-keys", Ct)).ReadProblemAsync(401, "unauthorized");
        Assert.Equal(HttpStatusCode.OK, (await newClient.GetAsync("/api/v1/api-keys", Ct)).StatusCode);
        var view = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/api-keys/{key.Id}", Ct);
        Assert.Equal(JsonValueKind.Null, view.GetProperty("previousPrefix").ValueKind);
    }

    [Fact]
    public async Task RotationWithoutABodyGivesAnHourOfGraceAndRefusesTooLongOnes()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage, "users.read"]);

        var tooLong = await admin.PostAsJsonAsync($"/api/v1/api-keys/{key.Id}/rotate", new { graceSeconds = 7 * 24 * 3600 + 1 }, Ct);
        var rotate = await admin.PostAsync($"/api/v1/api-keys/{key.Id}/rotate", null, Ct);

        Assert.True((await tooLong.ReadProblemAsync(400, "validation_failed")).GetProperty("errors").TryGetProperty("graceSeconds", out _));
        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        var rotated = await rotate.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(Clock.GetUtcNow().AddHours(1), rotated.GetProperty("previousValidUntil").GetDateTimeOffset());
        using var oldClient = KeyClient(key.Key);
        Clock.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(HttpStatusCode.OK, (await oldClient.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    [Fact]
    public async Task ExpiredKeyIsRefused()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage], Clock.GetUtcNow().AddMinutes(2));
        using var keyClient = KeyClient(key.Key);
        Assert.Equal(HttpStatusCode.OK, (await keyClient.GetAsync("/api/v1/api-keys", Ct)).StatusCode);

        Clock.Advance(TimeSpan.FromMinutes(3));

        await (await keyClient.GetAsync("/api/v1/api-keys", Ct)).ReadProblemAsync(401, "unauthorized");
        var view = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/api-keys/{key.Id}", Ct);
        Assert.Equal("expired", view.GetProperty("status").GetString());
        await (await admin.PostAsync($"/api/v1/api-keys/{key.Id}/rotate", null, Ct)).ReadProblemAsync(409, "api_key_expired");
    }

    [Fact]
    public async Task UsageShowsUpInTheListAfterAFlush()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage, "users.read"]);
        using var keyClient = KeyClient(key.Key);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await keyClient.GetAsync("/api/v1/me", Ct)).StatusCode);
        }

        var item = await Eventually.Until(
            async () => (await admin.GetFromJsonAsync<JsonElement>("/api/v1/api-keys", Ct)).GetProperty("items")[0],
            i => i.GetProperty("useCount").GetInt64() == 3, "the usage to be flushed");
        var lastUsed = item.GetProperty("lastUsedAt").GetDateTimeOffset();
        Assert.InRange(lastUsed, Clock.GetUtcNow().AddSeconds(-1), Clock.GetUtcNow().AddSeconds(1));
    }

    [Fact]
    public async Task AnotherTenantsKeyIsNotFound()
    {
        var other = await App.SignUpAsync();
        using var theirAdmin = await App.SignedInClientAsync(other);
        var theirs = await CreateKeyAsync(theirAdmin, [Manage, "users.read"]);
        using var admin = await App.SignedInClientAsync(Tenant);

        await (await admin.GetAsync($"/api/v1/api-keys/{theirs.Id}", Ct)).ReadProblemAsync(404, "not_found");
        await (await admin.PostAsync($"/api/v1/api-keys/{theirs.Id}/rotate", null, Ct)).ReadProblemAsync(404, "not_found");
        await (await admin.DeleteAsync($"/api/v1/api-keys/{theirs.Id}", Ct)).ReadProblemAsync(404, "not_found");
        await (await admin.GetAsync("/api/v1/api-keys/not-an-id", Ct)).ReadProblemAsync(404, "not_found");

        var ours = await admin.GetFromJsonAsync<JsonElement>("/api/v1/api-keys", Ct);
        Assert.Empty(ours.GetProperty("items").EnumerateArray());
        using var theirKey = KeyClient(theirs.Key);
        var me = await theirKey.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.Equal(other.AdminId, me.GetProperty("id").GetString());
    }

    [Theory]
    [InlineData("plk_")]
    [InlineData("plk_x_y")]
    [InlineData("plk_abcdefghjkmn_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("plk_ABCDEFGHJKMN_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("not a key at all")]
    public async Task GarbageKeysAreUnauthorizedNotErrors(string garbage)
    {
        using var byAuthorization = App.CreateClient();
        byAuthorization.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "ApiKey " + garbage);
        using var byHeader = App.CreateClient();
        byHeader.DefaultRequestHeaders.TryAddWithoutValidation("X-Api-Key", garbage);

        var first = await byAuthorization.GetAsync("/api/v1/api-keys", Ct);
        var second = await byHeader.GetAsync("/api/v1/me", Ct);

        await first.ReadProblemAsync(401, "unauthorized");
        await second.ReadProblemAsync(401, "unauthorized");
        Assert.Contains("ApiKey", first.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OversizedOrConflictingKeyHeadersAreUnauthorized()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage, "users.read"]);
        var other = await CreateKeyAsync(admin, [Manage]);
        using var huge = App.CreateClient();
        huge.DefaultRequestHeaders.TryAddWithoutValidation("X-Api-Key", "plk_" + new string('a', 10 * 1024));
        using var hugeAuthorization = App.CreateClient();
        hugeAuthorization.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "ApiKey " + key.Key + new string('a', 10 * 1024));
        using var conflicting = KeyClient(key.Key);
        conflicting.DefaultRequestHeaders.TryAddWithoutValidation("X-Api-Key", other.Key);
        using var agreeing = KeyClient(key.Key);
        agreeing.DefaultRequestHeaders.TryAddWithoutValidation("X-Api-Key", key.Key);

        await (await huge.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        await (await hugeAuthorization.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        await (await conflicting.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        Assert.Equal(HttpStatusCode.OK, (await agreeing.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    [Fact]
    public async Task TenantKeyLimitIsEnforced()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var keys = new List<CreatedKey>();
        for (var i = 0; i < Limit; i++)
        {
            keys.Add(await CreateKeyAsync(admin, [Manage]));
        }

        var refused = await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "one too many", permissions = new[] { Manage } }, Ct);

        await refused.ReadProblemAsync(409, "api_key_limit_reached");
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/api-keys/{keys[0].Id}", Ct)).StatusCode);
        await CreateKeyAsync(admin, [Manage]);
    }

    [Fact]
    public async Task RacingCreationsNeverExceedTheLimit()
    {
        using var admin = await App.SignedInClientAsync(Tenant);

        var responses = await Task.WhenAll(Enumerable.Range(0, Limit * 2).Select(i =>
            admin.PostAsJsonAsync("/api/v1/api-keys", new { name = $"racer {i}", permissions = new[] { Manage } }, Ct)));

        Assert.Equal(Limit, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(Limit, responses.Count(r => r.StatusCode == HttpStatusCode.Conflict));
        var page = await admin.GetFromJsonAsync<JsonElement>("/api/v1/api-keys", Ct);
        Assert.Equal(Limit, page.GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task ListPagesWithPageSizeAndContinuationToken()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var ids = new HashSet<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await CreateKeyAsync(admin, [Manage])).Id);
        }

        var first = await admin.GetFromJsonAsync<JsonElement>("/api/v1/api-keys?pageSize=2", Ct);
        var token = first.GetProperty("continuationToken").GetString()!;
        var second = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/api-keys?pageSize=2&continuationToken={Uri.EscapeDataString(token)}", Ct);

        var seen = first.GetProperty("items").EnumerateArray().Concat(second.GetProperty("items").EnumerateArray()).Select(i => i.GetProperty("id").GetString()!).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), seen);
        Assert.Equal(JsonValueKind.Null, second.GetProperty("continuationToken").ValueKind);
        await (await admin.GetAsync("/api/v1/api-keys?pageSize=0", Ct)).ReadProblemAsync(400, "validation_failed");
        await (await admin.GetAsync("/api/v1/api-keys?continuationToken=nonsense", Ct)).ReadProblemAsync(400, "invalid_continuation_token");
    }

    [Fact]
    public async Task RevokingAllKeysOfAUserCutsThemOff()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var first = await CreateKeyAsync(admin, [Manage, "users.read"]);
        var second = await CreateKeyAsync(admin, ["inventory.read"]);
        using var firstClient = KeyClient(first.Key);
        Assert.Equal(HttpStatusCode.OK, (await firstClient.GetAsync("/api/v1/me", Ct)).StatusCode);

        var revoked = await App.Services.GetRequiredService<ApiKeyStore>().RevokeAllOfUserAsync(new TenantId(Tenant.Id), Tenant.AdminId, Ct);

        Assert.Equal(2, revoked);
        await (await firstClient.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        using var secondClient = KeyClient(second.Key);
        await (await secondClient.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        Assert.Empty((await admin.GetFromJsonAsync<JsonElement>("/api/v1/api-keys", Ct)).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task KeyChangesAreAuditedWithoutTheSecret()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage]);
        var rotated = await (await admin.PostAsync($"/api/v1/api-keys/{key.Id}/rotate", null, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/api-keys/{key.Id}", Ct)).StatusCode);
        await App.Services.GetRequiredService<EventRelay>().CatchUpAsync(new TenantId(Tenant.Id), Ct);

        var entries = new List<TableEntity>();
        await foreach (var entry in App.Storage.TenantTable("audit").For(new TenantId(Tenant.Id)).QueryAsync<TableEntity>(cancellationToken: Ct))
        {
            if (entry.GetString("TargetId") == key.Id)
            {
                entries.Add(entry);
            }
        }

        // Ids made in the same millisecond of the fake clock do not sort by time, so compare as a set.
        Assert.Equal(["apikey.created", "apikey.revoked", "apikey.rotated"], entries.Select(e => e.GetString("Action")).Order(StringComparer.Ordinal));
        Assert.All(entries, e => Assert.Equal(Tenant.AdminId, e.GetString("ActorId")));
        var secrets = new[] { key.Key[17..], rotated.GetProperty("key").GetString()![17..] };
        Assert.All(entries, e => Assert.DoesNotContain(e, v => v.Value is string s && secrets.Any(secret => s.Contains(secret, StringComparison.Ordinal))));
    }

    [Fact]
    public async Task RevocationReachesAnotherInstanceWithinTheCheckInterval()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, [Manage]);
        await using var other = await new PlatformApp(Azurite, App.Prefix, new Dictionary<string, string?>
        {
            ["Platform:Auth:RevocationCheckInterval"] = "00:00:01",
        }).ReadyAsync();
        using var elsewhere = other.CreateClient();
        elsewhere.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key.Key);
        Assert.Equal(HttpStatusCode.OK, (await elsewhere.GetAsync("/api/v1/api-keys", Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/api-keys/{key.Id}", Ct)).StatusCode);

        await Eventually.Until(async () => (await elsewhere.GetAsync("/api/v1/api-keys", Ct)).StatusCode,
            status => status == HttpStatusCode.Unauthorized, "the other instance to see the revocation", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AKeyManagerCannotRotateOrRevokeAKeyCarryingPermissionsTheyLack()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        Assert.Equal(HttpStatusCode.Created, (await admin.PutRoleAsync("key-keeper", Manage)).StatusCode);
        await admin.CreateUserIdAsync("keeper@example.com", Accounts.Password, ["manager", "key-keeper"]);
        using var manager = await App.SignInAsAsync(Tenant, "keeper@example.com");
        var adminKey = await CreateKeyAsync(admin, [Manage, "tenant.manage", "roles.manage", "users.read"]);
        var managerKey = await CreateKeyAsync(manager, ["inventory.read"]);

        await (await manager.PostAsJsonAsync($"/api/v1/api-keys/{adminKey.Id}/rotate", new { graceSeconds = 0 }, Ct)).ReadProblemAsync(403, "permission_not_held");
        await (await manager.DeleteAsync($"/api/v1/api-keys/{adminKey.Id}", Ct)).ReadProblemAsync(403, "permission_not_held");

        // The admin's key was neither rotated nor revoked: its text still works, and its prefix is the same.
        using var adminKeyClient = KeyClient(adminKey.Key);
        Assert.Equal(HttpStatusCode.OK, (await adminKeyClient.GetAsync("/api/v1/api-keys", Ct)).StatusCode);
        var view = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/api-keys/{adminKey.Id}", Ct);
        Assert.Equal(adminKey.Key[4..16], view.GetProperty("prefix").GetString());
        Assert.Equal(JsonValueKind.Null, view.GetProperty("rotatedAt").ValueKind);

        // Their own key they may rotate; the admin (who holds every permission) may revoke it.
        Assert.Equal(HttpStatusCode.OK, (await manager.PostAsJsonAsync($"/api/v1/api-keys/{managerKey.Id}/rotate", new { graceSeconds = 0 }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/api-keys/{managerKey.Id}", Ct)).StatusCode);
        await (await admin.GetAsync($"/api/v1/api-keys/{managerKey.Id}", Ct)).ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task ANarrowKeyCannotRotateAWiderKeyOfTheSameCreator()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var wide = await CreateKeyAsync(admin, [Manage, "users.delete", "tenant.manage"]);
        var narrow = await CreateKeyAsync(admin, [Manage]);
        using var narrowClient = KeyClient(narrow.Key);

        await (await narrowClient.PostAsJsonAsync($"/api/v1/api-keys/{wide.Id}/rotate", new { graceSeconds = 0 }, Ct)).ReadProblemAsync(403, "permission_not_held");
        await (await narrowClient.DeleteAsync($"/api/v1/api-keys/{wide.Id}", Ct)).ReadProblemAsync(403, "permission_not_held");
        Assert.Equal(HttpStatusCode.OK, (await narrowClient.PostAsJsonAsync($"/api/v1/api-keys/{narrow.Id}/rotate", new { graceSeconds = 60 }, Ct)).StatusCode);
    }

    [Fact]
    public async Task ChangesMadeWithAKeyAreAuditedAsTheKeyNotAsItsCreator()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = await CreateKeyAsync(admin, ["inventory.write", "inventory.read", "users.write", "users.read", "jobs.read", "reports.read"]);
        using var keyClient = KeyClient(key.Key);

        var item = (await Inventory.ItemApi.CreateItemAsync(keyClient, "KEY-1")).Id();
        var user = await keyClient.CreateUserIdAsync("made-by-key@example.com");
        var location = await Inventory.InventoryApi.CreateLocationIdAsync(admin, "Made by the admin");

        var entries = (await admin.GetJsonAsync("/api/v1/audit?pageSize=1000")).GetProperty("items").EnumerateArray().ToList();
        var itemCreated = Assert.Single(entries, e => e.Str("action") == "inventory.item.created" && e.Str("targetId") == item);
        Assert.Equal("apikey", itemCreated.Str("actorType"));
        Assert.Equal(key.Id, itemCreated.Str("actorId"));
        var userCreated = Assert.Single(entries, e => e.Str("action") == "user.created" && e.Str("targetId") == user);
        Assert.Equal("apikey", userCreated.Str("actorType"));
        Assert.Equal(key.Id, userCreated.Str("actorId"));
        Assert.Equal(Tenant.AdminId, itemCreated.Str("onBehalfOf"));
        // What the key did is still found by its holder's id: the audit filter and the data-portability export.
        var byAdmin = (await admin.GetJsonAsync($"/api/v1/audit?pageSize=1000&actorId={Tenant.AdminId}")).GetProperty("items").EnumerateArray();
        Assert.Contains(byAdmin, e => e.Str("action") == "inventory.item.created" && e.Str("targetId") == item);
        var export = await admin.GetJsonAsync($"/api/v1/users/{Tenant.AdminId}/export");
        Assert.Contains(export.GetProperty("auditEntries").EnumerateArray(), e => e.Str("action") == "user.created" && e.Str("targetId") == user);
        var locationCreated = Assert.Single(entries, e => e.Str("action") == "inventory.location.created" && e.Str("targetId") == location);
        Assert.Equal("user", locationCreated.Str("actorType"));
        Assert.Equal(Tenant.AdminId, locationCreated.Str("actorId"));
    }

    private sealed record CreatedKey(string Id, string Key);

    private static async Task<CreatedKey> CreateKeyAsync(HttpClient client, string[] permissions, DateTimeOffset? expiresAt = null)
    {
        var response = await client.PostAsJsonAsync("/api/v1/api-keys", new { name = "test key", permissions, expiresAt }, Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return new CreatedKey(body.GetProperty("id").GetString()!, body.GetProperty("key").GetString()!);
    }

    private HttpClient KeyClient(string key, bool xApiKey = false)
    {
        var client = App.CreateClient();
        if (xApiKey)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", key);
        }
        else
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key);
        }

        return client;
    }
}
