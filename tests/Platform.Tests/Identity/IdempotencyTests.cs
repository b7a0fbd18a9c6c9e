using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

/// <summary>POST routes that create things honour Idempotency-Key: a retried request never creates twice.</summary>
public sealed class IdempotencyTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool UsesFakeClock => false;

    private static HttpRequestMessage Post(string path, object body, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key);
        return request;
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
}
