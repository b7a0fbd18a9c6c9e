using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class SessionTests(Azurite azurite) : IAsyncLifetime
{
    private PlatformApp _app = null!;
    private TestTenant _tenant = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _app = await new PlatformApp(azurite, settings: new Dictionary<string, string?> { ["Platform:Auth:MaxSessionsPerUser"] = "3" }).ReadyAsync();
        _tenant = await _app.SignUpAsync();
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task LogoutEndsTheSessionAndItsAccessTokenAtOnce()
    {
        var tokens = await _app.LoginAsync(_tenant);
        using var client = _app.CreateClient(tokens.AccessToken);

        var logout = await client.PostAsync("/api/v1/auth/logout", null, Ct);

        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/me", Ct)).StatusCode);
        using var anonymous = _app.CreateClient();
        await (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = tokens.RefreshToken }, Ct)).ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task SessionListShowsEachSignInAndMarksTheCurrentOne()
    {
        var first = await _app.LoginAsync(_tenant);
        var second = await _app.LoginAsync(_tenant);
        using var client = _app.CreateClient(second.AccessToken);

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
        var first = await _app.LoginAsync(_tenant);
        var second = await _app.LoginAsync(_tenant);
        using var client = _app.CreateClient(second.AccessToken);

        var revoked = await client.DeleteAsync($"/api/v1/auth/sessions/{first.SessionId}", Ct);

        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        using var firstClient = _app.CreateClient(first.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await firstClient.GetAsync("/api/v1/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    [Fact]
    public async Task CannotRevokeASessionOfAnotherUserOrTenant()
    {
        var other = await _app.SignUpAsync();
        var theirs = await _app.LoginAsync(other);
        using var client = await _app.SignedInClientAsync(_tenant);

        var response = await client.DeleteAsync($"/api/v1/auth/sessions/{theirs.SessionId}", Ct);

        await response.ReadProblemAsync(404, "not_found");
        using var theirClient = _app.CreateClient(theirs.AccessToken);
        Assert.Equal(HttpStatusCode.OK, (await theirClient.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    [Fact]
    public async Task SigningInBeyondTheSessionLimitEvictsTheOldest()
    {
        var oldest = await _app.LoginAsync(_tenant);
        await _app.LoginAsync(_tenant);
        await _app.LoginAsync(_tenant);

        var newest = await _app.LoginAsync(_tenant);

        using var client = _app.CreateClient(newest.AccessToken);
        var sessions = (await client.GetFromJsonAsync<JsonElement>("/api/v1/auth/sessions", Ct)).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(3, sessions.Count);
        Assert.DoesNotContain(sessions, s => s.GetProperty("id").GetString() == oldest.SessionId);
        using var oldClient = _app.CreateClient(oldest.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await oldClient.GetAsync("/api/v1/me", Ct)).StatusCode);
    }
}
