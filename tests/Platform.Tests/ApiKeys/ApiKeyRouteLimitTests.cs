using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.ApiKeys;

/// <summary>
/// Routes that need only a signed-in caller act on a person's own account. An API key - even one of the admin with
/// every permission - must not end its creator's sessions, change their profile or password, or touch their MFA;
/// reading <c>/me</c> needs the key to carry <c>users.read</c>.
/// </summary>
public sealed class ApiKeyRouteLimitTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private static readonly string[] AllPermissions =
        ["users.read", "users.write", "users.delete", "roles.manage", "apikeys.manage", "inventory.read", "inventory.write",
         "jobs.read", "jobs.write", "webhooks.manage", "reports.read", "audit.read", "backups.manage", "tenant.manage"];

    [Fact]
    public async Task AKeyCannotListOrEndItsCreatorsSessionsOrLogOut()
    {
        var tokens = await App.LoginAsync(Tenant);
        using var admin = App.CreateClient(tokens.AccessToken);
        foreach (var scopes in new[] { ["inventory.read"], AllPermissions })
        {
            using var key = await KeyClientAsync(admin, scopes);

            await (await key.GetAsync("/api/v1/auth/sessions", Ct)).ReadProblemAsync(403, "api_key_not_allowed");
            await (await key.DeleteAsync($"/api/v1/auth/sessions/{tokens.SessionId}", Ct)).ReadProblemAsync(403, "api_key_not_allowed");
            await (await key.PostAsync("/api/v1/auth/logout", null, Ct)).ReadProblemAsync(403, "api_key_not_allowed");
        }

        // The session the key aimed at still stands, and the person still manages their sessions.
        var sessions = await admin.GetFromJsonAsync<JsonElement>("/api/v1/auth/sessions", Ct);
        Assert.Contains(sessions.GetProperty("items").EnumerateArray(), s => s.GetProperty("id").GetString() == tokens.SessionId);
    }

    [Fact]
    public async Task AKeyCannotTouchMfaOrEmailVerification()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        using var key = await KeyClientAsync(admin, AllPermissions);

        await (await key.PostAsync("/api/v1/auth/mfa/totp/setup", null, Ct)).ReadProblemAsync(403, "api_key_not_allowed");
        await (await key.PostAsJsonAsync("/api/v1/auth/mfa/totp/enable", new { code = "123456" }, Ct)).ReadProblemAsync(403, "api_key_not_allowed");
        await (await key.PostAsJsonAsync("/api/v1/auth/mfa/totp/disable", new { password = Tenant.AdminPassword }, Ct)).ReadProblemAsync(403, "api_key_not_allowed");
        await (await key.PostAsync("/api/v1/auth/mfa/backup-codes/regenerate", null, Ct)).ReadProblemAsync(403, "api_key_not_allowed");
        await (await key.PostAsync("/api/v1/auth/verify-email/resend", null, Ct)).ReadProblemAsync(403, "api_key_not_allowed");

        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/auth/mfa/totp/setup", null, Ct)).StatusCode);
    }

    [Fact]
    public async Task AKeyCannotChangeItsCreatorsProfilePasswordOrAvatar()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        using var key = await KeyClientAsync(admin, AllPermissions);

        using var patch = new HttpRequestMessage(HttpMethod.Patch, "/api/v1/me") { Content = JsonContent.Create(new { displayName = "Taken over" }) };
        await (await key.SendAsync(patch, Ct)).ReadProblemAsync(403, "api_key_not_allowed");
        await (await key.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = Tenant.AdminPassword, newPassword = "a brand new passphrase 42" }, Ct))
            .ReadProblemAsync(403, "api_key_not_allowed");
        using var png = new ByteArrayContent([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        png.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        await (await key.PutAsync("/api/v1/me/avatar", png, Ct)).ReadProblemAsync(403, "api_key_not_allowed");

        var me = await admin.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.NotEqual("Taken over", me.GetProperty("displayName").GetString());
        Assert.Equal(HttpStatusCode.OK, (await App.CreateClient().PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).StatusCode);
    }

    [Fact]
    public async Task ReadingMeNeedsAKeyScopedToUsersRead()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        using var inventoryKey = await KeyClientAsync(admin, ["inventory.read"]);
        using var usersKey = await KeyClientAsync(admin, ["users.read"]);

        await (await inventoryKey.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(403, "forbidden");
        await (await inventoryKey.GetAsync($"/api/v1/users/{Tenant.AdminId}/avatar", Ct)).ReadProblemAsync(403, "forbidden");
        var me = await usersKey.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.Equal(Tenant.AdminId, me.GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    private async Task<HttpClient> KeyClientAsync(HttpClient creator, string[] permissions)
    {
        var response = await creator.PostAsJsonAsync("/api/v1/api-keys", new { name = "route limits", permissions }, Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var key = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString()!;
        var client = App.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key);
        return client;
    }
}
