using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Http;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Identity;

/// <summary>POST routes that create things honour Idempotency-Key: a retried request never creates twice.</summary>
public sealed class IdempotencyTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private static readonly string[] ManageOnly = ["apikeys.manage"];

    protected override bool UsesFakeClock => false;

    internal static HttpRequestMessage Post(string path, object body, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    private static HttpRequestMessage PostText(string path, string json, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    /// <summary>The idempotency records of a tenant, as Table storage holds them.</summary>
    internal static async Task<IReadOnlyList<TableEntity>> StoredRecordsAsync(PlatformApp app, TestTenant tenant) =>
        await app.Storage.TenantTable(Idempotency.TableName).For(new TenantId(tenant.Id)).QueryAsync<TableEntity>(cancellationToken: Ct).ToListAsync(Ct);

    private HttpClient KeyClient(string key)
    {
        var client = App.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key);
        return client;
    }

    [Fact]
    public async Task ARetriedSignUpGetsTheFirstAnswerAndCreatesOneTenant()
    {
        using var client = App.CreateClient();
        var slug = "idem-" + Guid.NewGuid().ToString("N")[..8];
        var body = new { name = "Idem", slug, admin = new { email = $"a@{slug}.example", password = Accounts.Password, displayName = "A" } };
        var key = Guid.NewGuid().ToString();

        var first = await client.SendAsync(Post("/api/v1/tenants", body, key), Ct);
        var retry = await client.SendAsync(Post("/api/v1/tenants", body, key), Ct);

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.Equal(await first.Content.ReadAsStringAsync(Ct), await retry.Content.ReadAsStringAsync(Ct));
        Assert.Equal(first.Headers.Location, retry.Headers.Location);
        Assert.True(retry.Headers.Contains("Idempotent-Replayed"));
    }

    [Fact]
    public async Task TheSameKeyWithAnotherBodyIsRefused()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = Guid.NewGuid().ToString();

        var first = await admin.SendAsync(Post("/api/v1/users", new { email = "one@idem.example", displayName = "One" }, key), Ct);
        var other = await admin.SendAsync(Post("/api/v1/users", new { email = "two@idem.example", displayName = "Two" }, key), Ct);

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        await other.ReadProblemAsync(422, "idempotency_key_reused");
        var list = await admin.GetFromJsonAsync<JsonElement>("/api/v1/users?q=idem.example", Ct);
        Assert.Single(list.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task ARetriedUserCreateDoesNotCreateTwice()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = Guid.NewGuid().ToString();
        var body = new { email = "retry@idem.example", displayName = "Retry" };

        var first = await admin.SendAsync(Post("/api/v1/users", body, key), Ct);
        var retry = await admin.SendAsync(Post("/api/v1/users", body, key), Ct);

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.Equal(
            (await first.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString(),
            (await retry.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString());
    }

    [Fact]
    public async Task AKeyOfOneTenantMeansNothingToAnother()
    {
        var other = await App.SignUpAsync();
        using var mine = await App.SignedInClientAsync(Tenant);
        using var theirs = await App.SignedInClientAsync(other);
        var key = Guid.NewGuid().ToString();

        var a = await mine.SendAsync(Post("/api/v1/users", new { email = "same@idem.example", displayName = "Mine" }, key), Ct);
        var b = await theirs.SendAsync(Post("/api/v1/users", new { email = "same@idem.example", displayName = "Theirs" }, key), Ct);

        Assert.Equal(HttpStatusCode.Created, a.StatusCode);
        Assert.Equal(HttpStatusCode.Created, b.StatusCode);
        Assert.False(b.Headers.Contains("Idempotent-Replayed"));
    }

    [Fact]
    public async Task AnUnusableKeyIsABadRequest()
    {
        using var admin = await App.SignedInClientAsync(Tenant);

        var response = await admin.SendAsync(Post("/api/v1/users", new { email = "x@idem.example", displayName = "X" }, new string('k', 300)), Ct);

        await response.ReadProblemAsync(400, "invalid_idempotency_key");
    }

    [Fact]
    public async Task TheKeptAnswerOfAKeyCreateHoldsNoKeyTextInTheClear()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = Guid.NewGuid().ToString();
        var body = new { name = "deploys", permissions = new[] { "apikeys.manage" } };

        var first = await admin.SendAsync(Post("/api/v1/api-keys", body, key), Ct);
        var created = await first.ReadJsonAsync(HttpStatusCode.Created);
        var text = created.Str("key");
        var secret = text[17..];

        var record = Assert.Single(await StoredRecordsAsync(App, Tenant));
        foreach (var (name, value) in record)
        {
            var stored = value switch
            {
                string s => s,
                byte[] bytes => Encoding.UTF8.GetString(bytes) + "\n" + Convert.ToBase64String(bytes),
                BinaryData data => Encoding.UTF8.GetString(data.ToArray()) + "\n" + Convert.ToBase64String(data.ToArray()),
                _ => value?.ToString() ?? "",
            };
            Assert.False(stored.Contains(secret, StringComparison.Ordinal), $"the key's secret is stored in clear in '{name}'");
        }

        var retry = await admin.SendAsync(Post("/api/v1/api-keys", body, key), Ct);
        var replayed = await retry.ReadJsonAsync(HttpStatusCode.Created);
        Assert.True(retry.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(text, replayed.Str("key"));
        Assert.Equal(created.Id(), replayed.Id());
        Assert.Equal(first.Headers.Location, retry.Headers.Location);
    }

    [Fact]
    public async Task AnApiKeyOfTheUserCannotReplayTheUsersKeptAnswer()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var narrow = await (await admin.SendAsync(Post("/api/v1/api-keys", new { name = "narrow", permissions = ManageOnly }, Guid.NewGuid().ToString()), Ct))
            .ReadJsonAsync(HttpStatusCode.Created);
        var key = Guid.NewGuid().ToString();
        var wide = new { name = "wide", permissions = new[] { "apikeys.manage", "users.write" } };
        var made = await (await admin.SendAsync(Post("/api/v1/api-keys", wide, key), Ct)).ReadJsonAsync(HttpStatusCode.Created);

        // The narrow key acts for the same user, but may not mint a key with users.write: the user's kept answer
        // (holding the wide key's text) must not be handed to it.
        using var keyClient = KeyClient(narrow.Str("key"));
        var attempt = await keyClient.SendAsync(Post("/api/v1/api-keys", wide, key), Ct);

        var text = await attempt.Content.ReadAsStringAsync(Ct);
        Assert.DoesNotContain(made.Str("key"), text, StringComparison.Ordinal);
        Assert.False(attempt.Headers.Contains("Idempotent-Replayed"));
        await attempt.ReadProblemAsync(403, "permission_not_held");
    }

    [Fact]
    public async Task ACallerWhoLostThePermissionGets403OnReplay()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var managerId = await admin.CreateUserIdAsync("manager@idem.example", Accounts.Password, ["manager"]);
        using var manager = await App.SignInAsAsync(Tenant, "manager@idem.example");
        var key = Guid.NewGuid().ToString();
        var body = new { email = "made@idem.example", displayName = "Made" };
        Assert.Equal(HttpStatusCode.Created, (await manager.SendAsync(Post("/api/v1/users", body, key), Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await admin.PutRolesAsync(managerId, "user")).StatusCode);
        var replay = await manager.SendAsync(Post("/api/v1/users", body, key), Ct);

        await replay.ReadProblemAsync(403, "forbidden");
        Assert.False(replay.Headers.Contains("Idempotent-Replayed"));
    }

    [Fact]
    public async Task TheSameBodyBytesReplayAndABodyDifferingInOneByteIsRefused()
    {
        // "note" is no field of a user: the handler never sees it, but it is part of what the client sent.
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = Guid.NewGuid().ToString();
        const string Body = """{"email":"bytes@idem.example","displayName":"Bytes","note":"1"}""";

        var first = await admin.SendAsync(PostText("/api/v1/users", Body, key), Ct);
        var same = await admin.SendAsync(PostText("/api/v1/users", Body, key), Ct);
        var oneByte = await admin.SendAsync(PostText("/api/v1/users", Body.Replace("\"1\"", "\"2\"", StringComparison.Ordinal), key), Ct);

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, same.StatusCode);
        Assert.True(same.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(await first.Content.ReadAsStringAsync(Ct), await same.Content.ReadAsStringAsync(Ct));
        await oneByte.ReadProblemAsync(422, "idempotency_key_reused");
    }

    [Fact]
    public async Task ABodyOverTheRoutesLimitIs413()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var tooLong = new byte[1024 * 1024 + 1];
        Array.Fill(tooLong, (byte)' ');
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/users") { Content = new StreamContent(new MemoryStream(tooLong)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        request.Headers.TransferEncodingChunked = true;

        var response = await admin.SendAsync(request, Ct);

        await response.ReadProblemAsync(413, "payload_too_large");
        Assert.Empty(await StoredRecordsAsync(App, Tenant));
    }
}

/// <summary>Idempotency records against the app's clock: the lease of a running record and the 24 h a record is kept.</summary>
public sealed class IdempotencyLeaseTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    [Fact]
    public async Task ARunningRecordBlocksRetriesWithinItsLeaseAndIsTakenOverAfterIt()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var key = Guid.NewGuid().ToString();
        var body = new { name = "crash", permissions = new[] { "apikeys.manage" } };
        var first = await (await admin.SendAsync(IdempotencyTests.Post("/api/v1/api-keys", body, key), Ct)).ReadJsonAsync(HttpStatusCode.Created);

        // As a crash between doing the work and keeping its answer leaves it: still running, started now.
        var record = Assert.Single(await IdempotencyTests.StoredRecordsAsync(App, Tenant));
        record["State"] = "running";
        record["CreatedAt"] = Clock.GetUtcNow();
        await App.Storage.TenantTable(Idempotency.TableName).For(new TenantId(Tenant.Id)).UpsertAsync(record, Ct);

        Clock.Advance(TimeSpan.FromSeconds(110));
        await (await admin.SendAsync(IdempotencyTests.Post("/api/v1/api-keys", body, key), Ct)).ReadProblemAsync(409, "idempotency_in_progress");

        // Past the lease, retries arriving together: exactly one takes the record over and runs.
        Clock.Advance(TimeSpan.FromSeconds(11));
        var retries = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => admin.SendAsync(IdempotencyTests.Post("/api/v1/api-keys", body, key), Ct)));
        var again = await admin.SendAsync(IdempotencyTests.Post("/api/v1/api-keys", body, key), Ct);

        var ran = Assert.Single(retries, r => r.StatusCode == HttpStatusCode.Created && !r.Headers.Contains("Idempotent-Replayed"));
        var ranId = (await ran.ReadJsonAsync(HttpStatusCode.Created)).Id();
        Assert.NotEqual(first.Id(), ranId);
        foreach (var other in retries.Where(r => r != ran))
        {
            if (other.StatusCode == HttpStatusCode.Conflict)
            {
                await other.ReadProblemAsync(409, "idempotency_in_progress");
            }
            else
            {
                Assert.Equal(ranId, (await other.ReadJsonAsync(HttpStatusCode.Created)).Id());
            }
        }

        Assert.True(again.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(ranId, (await again.ReadJsonAsync(HttpStatusCode.Created)).Id());
        Assert.Equal(2, (await admin.GetJsonAsync("/api/v1/api-keys")).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task ARecordIsNeverReplayedAfter24Hours()
    {
        var key = Guid.NewGuid().ToString();
        using (var admin = await App.SignedInClientAsync(Tenant))
        {
            var first = await admin.SendAsync(IdempotencyTests.Post("/api/v1/users", new { email = "day1@idem.example", displayName = "Day 1" }, key), Ct);
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        Clock.Advance(Idempotency.KeptFor + TimeSpan.FromMinutes(1));
        using var later = await App.SignedInClientAsync(Tenant);

        // Until housekeeping deletes the expired record a retry is asked to come back; it is never compared or replayed.
        var reused = await Eventually.Until(
            () => later.SendAsync(IdempotencyTests.Post("/api/v1/users", new { email = "day2@idem.example", displayName = "Day 2" }, key), Ct),
            r => r.StatusCode != HttpStatusCode.Conflict,
            "the expired record to be deleted");

        Assert.Equal(HttpStatusCode.Created, reused.StatusCode);
        Assert.False(reused.Headers.Contains("Idempotent-Replayed"));
    }
}
