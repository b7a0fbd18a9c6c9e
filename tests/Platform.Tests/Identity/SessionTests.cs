using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class SessionTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    // Eviction takes the oldest session: that needs a clock that moves between sign-ins.
    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Platform:Auth:MaxSessionsPerUser"] = "3" };

    [Fact]
    public async Task LogoutEndsTheSessionAndItsAccessTokenAtOnce()
    {
        var tokens = await App.LoginAsync(Tenant);
        using var client = App.CreateClient(tokens.AccessToken);

        var logout = await client.PostAsync("/api/v1/auth/logout", null, Ct);

        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/me", Ct)).StatusCode);
        using var anonymous = App.CreateClient();
        await (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = tokens.RefreshToken }, Ct)).ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task SessionListShowsEachSignInAndMarksTheCurrentOne()
    {
        var first = await App.LoginAsync(Tenant);
        var second = await App.LoginAsync(Tenant);
        using var client = App.CreateClient(second.AccessToken);

        var page = await client.GetFromJsonAsync<JsonElement>("/api/v1/auth/sessions", Ct);

        var sessions = page.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(JsonValueKind.Null, page.GetProperty("continuationToken").ValueKind);
        Assert.Contains(sessions, s => s.GetProperty("id").GetString() == first.SessionId && !s.GetProperty("current").GetBoolean());
        Assert.Contains(sessions, s => s.GetProperty("id").GetString() == second.SessionId && s.GetProperty("current").GetBoolean());
        Assert.All(sessions, s => Assert.True(s.TryGetProperty("lastSeenAt", out _) && s.TryGetProperty("userAgent", out _) && s.TryGetProperty("ip", out _)));
    }

    [Fact]
    public async Task RevokingOneSessionEndsItsTokensOnly()
    {
        var first = await App.LoginAsync(Tenant);
        var second = await App.LoginAsync(Tenant);
        using var client = App.CreateClient(second.AccessToken);

        var revoked = await client.DeleteAsync($"/api/v1/auth/sessions/{first.SessionId}", Ct);

        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        using var firstClient = App.CreateClient(first.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await firstClient.GetAsync("/api/v1/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    [Fact]
    public async Task CannotRevokeASessionOfAnotherUserOrTenant()
    {
        var other = await App.SignUpAsync();
        var theirs = await App.LoginAsync(other);
        using var client = await App.SignedInClientAsync(Tenant);

        var response = await client.DeleteAsync($"/api/v1/auth/sessions/{theirs.SessionId}", Ct);

        await response.ReadProblemAsync(404, "not_found");
        using var theirClient = App.CreateClient(theirs.AccessToken);
        Assert.Equal(HttpStatusCode.OK, (await theirClient.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    [Fact]
    public async Task SigningInBeyondTheSessionLimitEvictsTheOldest()
    {
        var oldest = await App.LoginAsync(Tenant);
        await App.LoginAsync(Tenant);
        await App.LoginAsync(Tenant);

        var newest = await App.LoginAsync(Tenant);

        using var client = App.CreateClient(newest.AccessToken);
        var sessions = (await client.GetFromJsonAsync<JsonElement>("/api/v1/auth/sessions", Ct)).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(3, sessions.Count);
        Assert.DoesNotContain(sessions, s => s.GetProperty("id").GetString() == oldest.SessionId);
        using var oldClient = App.CreateClient(oldest.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await oldClient.GetAsync("/api/v1/me", Ct)).StatusCode);
    }
}
