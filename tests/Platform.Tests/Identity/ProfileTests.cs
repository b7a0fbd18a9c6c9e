using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class ProfileTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private HttpClient _client = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _client = await App.SignedInClientAsync(Tenant);
    }

    public override async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await base.DisposeAsync();
    }

    private static ByteArrayContent Image(byte[] bytes, string type)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new(type);
        return content;
    }

    [Fact]
    public async Task MeReadsWithAnETagAndPatchesNameAndSettings()
    {
        var read = await _client.GetAsync("/api/v1/me", Ct);
        var etag = read.Headers.ETag!.Tag;

        using var patch = new HttpRequestMessage(HttpMethod.Patch, "/api/v1/me")
        {
            Content = JsonContent.Create(new { displayName = "  Ada Lovelace ", settings = new { theme = "dark", language = "en" } }),
        };
        patch.Headers.IfMatch.ParseAdd(etag);
        var patched = await _client.SendAsync(patch, Ct);

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var body = await patched.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("Ada Lovelace", body.GetProperty("displayName").GetString());
        Assert.Equal("dark", body.GetProperty("settings").GetProperty("theme").GetString());
        Assert.NotEqual(etag, patched.Headers.ETag!.Tag);
    }

    [Fact]
    public async Task PatchWithAStaleETagIsAPreconditionFailure()
    {
        using var patch = new HttpRequestMessage(HttpMethod.Patch, "/api/v1/me") { Content = JsonContent.Create(new { displayName = "Stale" }) };
        patch.Headers.IfMatch.ParseAdd("\"0123456789abcdef01234567\"");

        var response = await _client.SendAsync(patch, Ct);

        await response.ReadProblemAsync(412, "precondition_failed");
    }

    [Theory]
    [InlineData("""{"settings":[1,2]}""", "settings")]
    [InlineData("""{"settings":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}""", "settings")]
    [InlineData("""{"displayName":""}""", "displayName")]
    public async Task InvalidProfileChangesNameTheField(string body, string field)
    {
        var response = await _client.PatchAsync("/api/v1/me", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        var problem = await response.ReadProblemAsync(400, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _));
    }

    [Fact]
    public async Task SettingsOverTheSizeLimitAreRefused()
    {
        var response = await _client.PatchAsJsonAsync("/api/v1/me", new { settings = new { blob = new string('x', 5000) } }, Ct);

        await response.ReadProblemAsync(400, "validation_failed");
    }

    [Fact]
    public async Task ChangingThePasswordNeedsTheCurrentOneAndEndsOtherSessions()
    {
        var other = await App.LoginAsync(Tenant);

        var refused = await _client.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = "wrong", newPassword = "another fine passphrase" }, Ct);
        var changed = await _client.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = Tenant.AdminPassword, newPassword = "another fine passphrase" }, Ct);

        await refused.ReadProblemAsync(403, "invalid_password");
        Assert.Equal(HttpStatusCode.NoContent, changed.StatusCode);
        using var otherClient = App.CreateClient(other.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await otherClient.GetAsync("/api/v1/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    /// <summary>
    /// The current-password check of a password change counts toward the sign-in lockout before it checks, so guesses
    /// sent at once through this route (with a stolen access token) are no way around the lockout either.
    /// </summary>
    [Fact]
    public async Task ParallelWrongCurrentPasswordsAreCheckedAtMostFiveTimesAndLockSignInToo()
    {
        var answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(i =>
            _client.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = "wrong password " + i, newPassword = "another fine passphrase" }, Ct)));

        var statuses = answers.Select(a => (int)a.StatusCode).ToList();
        Assert.All(statuses, status => Assert.True(status is 403 or 429, $"a guess answered {status}"));
        Assert.Equal(5, statuses.Count(s => s == 403));
        foreach (var answer in answers)
        {
            await answer.ReadProblemAsync((int)answer.StatusCode, answer.StatusCode == HttpStatusCode.Forbidden ? "invalid_password" : "account_locked");
        }

        var right = await _client.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = Tenant.AdminPassword, newPassword = "another fine passphrase" }, Ct);
        var wrong = await _client.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = "one more wrong", newPassword = "another fine passphrase" }, Ct);
        await LockedAnswers.AssertSameAsync(right, wrong);
        using var anonymous = App.CreateClient();
        await (await anonymous.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).ReadProblemAsync(429, "account_locked");
    }

    [Fact]
    public async Task AvatarIsStoredAndServedWithItsType()
    {
        var put = await _client.PutAsync("/api/v1/me/avatar", Image(Images.Png, "image/png"), Ct);

        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        var get = await _client.GetAsync($"/api/v1/users/{Tenant.AdminId}/avatar", Ct);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("image/png", get.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Images.Png, await get.Content.ReadAsByteArrayAsync(Ct));
        var me = await _client.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.True(me.GetProperty("hasAvatar").GetBoolean());
    }

    [Fact]
    public async Task AvatarThatIsNotTheDeclaredImageIsRefused()
    {
        await (await _client.PutAsync("/api/v1/me/avatar", Image(Images.NotAnImage, "image/png"), Ct)).ReadProblemAsync(400, "invalid_image");
        await (await _client.PutAsync("/api/v1/me/avatar", Image(Images.Jpeg, "image/png"), Ct)).ReadProblemAsync(400, "invalid_image");
        await (await _client.PutAsync("/api/v1/me/avatar", Image(Images.NotAnImage, "image/svg+xml"), Ct)).ReadProblemAsync(415, "unsupported_media_type");
    }

    [Fact]
    public async Task AvatarOverTwoMegabytesIsRefused()
    {
        var big = new byte[2 * 1024 * 1024 + 1];
        Images.Png.CopyTo(big, 0);

        var response = await _client.PutAsync("/api/v1/me/avatar", Image(big, "image/png"), Ct);

        await response.ReadProblemAsync(413, "payload_too_large");
    }

    [Fact]
    public async Task UserWithoutAvatarAnswersNotFound()
    {
        var response = await _client.GetAsync($"/api/v1/users/{Tenant.AdminId}/avatar", Ct);

        await response.ReadProblemAsync(404, "not_found");
    }
}
