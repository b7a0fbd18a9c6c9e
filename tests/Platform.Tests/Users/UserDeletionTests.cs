using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>Soft delete and restore, purge (erasure for good) and export (data portability).</summary>
public sealed class UserDeletionTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private HttpClient KeyClient(string key)
    {
        var client = App.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key);
        return client;
    }

    [Fact]
    public async Task SoftDeletedUserCannotSignInAndTheirTokenAndKeyStopWorkingUntilRestored()
    {
        var eve = await Admin.CreateUserIdAsync("eve@example.com", Accounts.Password, ["admin"]);
        using var anonymous = App.CreateClient();
        var eveTokens = await Accounts.ReadTokensAsync(await anonymous.PostLoginAsync(Tenant.Slug, "eve@example.com", Accounts.Password));
        using var eveClient = App.CreateClient(eveTokens.AccessToken);
        var key = await (await eveClient.PostAsJsonAsync("/api/v1/api-keys", new { name = "eve's script", permissions = UserApi.Names("users.read") }, Ct))
            .ReadJsonAsync(HttpStatusCode.Created);
        using var eveKey = KeyClient(key.Str("key"));
        Assert.Equal(HttpStatusCode.OK, (await eveClient.GetAsync("/api/v1/users", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await eveKey.GetAsync("/api/v1/users", Ct)).StatusCode);
        await (await Admin.SendJsonAsync(HttpMethod.Delete, $"/api/v1/users/{eve}", null, "\"0123456789abcdef01234567\"")).ReadProblemAsync(412, "precondition_failed");

        var deleted = await Admin.DeleteAsync($"/api/v1/users/{eve}", Ct);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await (await eveClient.GetAsync("/api/v1/users", Ct)).ReadProblemAsync(401, "unauthorized");
        await (await eveClient.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        await (await eveKey.GetAsync("/api/v1/users", Ct)).ReadProblemAsync(401, "unauthorized");
        await (await anonymous.PostLoginAsync(Tenant.Slug, "eve@example.com", Accounts.Password)).ReadProblemAsync(401, "invalid_credentials");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = eveTokens.RefreshToken }, Ct)).StatusCode);

        // Gone from lists, but shown with includeDeleted and readable by id, marked deleted.
        Assert.DoesNotContain("eve@example.com", await Admin.EmailsAsync());
        var listed = Assert.Single(await Admin.ListAsync("includeDeleted=true"), u => u.Id() == eve);
        Assert.Equal("deleted", listed.Str("status"));
        var read = await Admin.GetUserAsync(eve);
        Assert.Equal("deleted", read.Str("status"));
        Assert.Equal(Clock.GetUtcNow().UtcDateTime, read.GetProperty("deletedAt").GetDateTimeOffset().UtcDateTime, TimeSpan.FromSeconds(1));
        Assert.Equal(["admin"], read.Roles());

        // A deleted user cannot be changed or deleted again, and keeps their address until purged.
        await (await Admin.PatchUserAsync(eve, new { displayName = "Zombie" })).ReadProblemAsync(404, "not_found");
        await (await Admin.DeleteAsync($"/api/v1/users/{eve}", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.PostUserAsync(new { email = "eve@example.com", displayName = "Impostor" })).ReadProblemAsync(409, "email_taken");

        var restored = await (await Admin.PostAsync($"/api/v1/users/{eve}/restore", null, Ct)).ReadJsonAsync(HttpStatusCode.OK);

        Assert.Equal("active", restored.Str("status"));
        Assert.Equal(["admin"], restored.Roles());
        Assert.Equal(JsonValueKind.Null, restored.GetProperty("deletedAt").ValueKind);
        Assert.Contains("eve@example.com", await Admin.EmailsAsync());
        using var eveAgain = await App.SignInAsAsync(Tenant, "eve@example.com");
        Assert.Equal(HttpStatusCode.OK, (await eveAgain.GetAsync("/api/v1/users", Ct)).StatusCode);

        // What the deletion revoked stays revoked.
        await (await eveClient.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        await (await eveKey.GetAsync("/api/v1/users", Ct)).ReadProblemAsync(401, "unauthorized");

        // Restoring an active user changes nothing.
        Assert.Equal("active", (await (await Admin.PostAsync($"/api/v1/users/{eve}/restore", null, Ct)).ReadJsonAsync(HttpStatusCode.OK)).Str("status"));
    }

    [Fact]
    public async Task LockedUserCannotSignInAndTheirSessionsEnd()
    {
        var id = await Admin.CreateUserIdAsync("locked@example.com", Accounts.Password);
        using var user = await App.SignInAsAsync(Tenant, "locked@example.com");

        var locked = await (await Admin.PatchUserAsync(id, new { status = "locked" })).ReadJsonAsync(HttpStatusCode.OK);

        Assert.Equal("locked", locked.Str("status"));
        await (await user.GetAsync("/api/v1/me", Ct)).ReadProblemAsync(401, "unauthorized");
        using var anonymous = App.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostLoginAsync(Tenant.Slug, "locked@example.com", Accounts.Password)).StatusCode);
        Assert.Equal("active", (await (await Admin.PatchUserAsync(id, new { status = "active" })).ReadJsonAsync(HttpStatusCode.OK)).Str("status"));
        Assert.Equal(HttpStatusCode.OK, (await anonymous.PostLoginAsync(Tenant.Slug, "locked@example.com", Accounts.Password)).StatusCode);
    }

    [Fact]
    public async Task PurgeErasesTheUserForGoodAndLeavesAnAnonymousTrace()
    {
        var pat = await Admin.CreateUserIdAsync("pat@example.com", Accounts.Password);
        using (var anonymous = App.CreateClient())
        {
            anonymous.DefaultRequestHeaders.UserAgent.ParseAdd("PatsBrowser/1.0");
            Assert.Equal(HttpStatusCode.OK, (await anonymous.PostLoginAsync(Tenant.Slug, "pat@example.com", Accounts.Password)).StatusCode);
        }

        Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(pat, new { displayName = "Patricia Q. Private", email = "patricia@example.com" })).StatusCode);
        Clock.Advance(TimeSpan.FromSeconds(1));

        var purged = await Admin.DeleteAsync($"/api/v1/users/{pat}?purge=true", Ct);

        Assert.Equal(HttpStatusCode.NoContent, purged.StatusCode);
        await (await Admin.GetAsync($"/api/v1/users/{pat}", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.GetAsync($"/api/v1/users/{pat}/export", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.PostAsync($"/api/v1/users/{pat}/restore", null, Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.PatchUserAsync(pat, new { displayName = "Back" })).ReadProblemAsync(404, "not_found");
        await (await Admin.DeleteAsync($"/api/v1/users/{pat}", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.DeleteAsync($"/api/v1/users/{pat}?purge=true", Ct)).ReadProblemAsync(404, "not_found");
        Assert.DoesNotContain(await Admin.ListAsync("includeDeleted=true"), u => u.Id() == pat);
        Assert.Empty(await Admin.ListAsync("includeDeleted=true&q=patricia"));
        using (var anonymous = App.CreateClient())
        {
            await (await anonymous.PostLoginAsync(Tenant.Slug, "patricia@example.com", Accounts.Password)).ReadProblemAsync(401, "invalid_credentials");
        }

        // The address is free for someone new, who is someone else.
        var newcomer = await Admin.CreateUserAsync("patricia@example.com", "Someone Else");
        Assert.NotEqual(pat, newcomer.Id());

        // The audit trail keeps what happened to the id, but no personal data.
        var trail = (await Admin.GetJsonAsync($"/api/v1/audit?targetId={pat}&pageSize=1000")).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["user.created", "user.updated", "user.purged"], trail.Select(e => e.Str("action")));
        Assert.All(trail, entry =>
        {
            Assert.Equal(JsonValueKind.Null, entry.GetProperty("changes").ValueKind);
            Assert.Equal(JsonValueKind.Null, entry.GetProperty("ip").ValueKind);
        });
        var asActor = (await Admin.GetJsonAsync($"/api/v1/audit?actorId={pat}&pageSize=1000")).GetProperty("items").EnumerateArray().ToList();
        Assert.Contains(asActor, e => e.Str("action") == "auth.login.succeeded");
        Assert.All(asActor, entry => Assert.Equal(JsonValueKind.Null, entry.GetProperty("changes").ValueKind));
        var everything = (await Admin.GetAsync("/api/v1/audit?pageSize=1000", Ct));
        var text = await everything.Content.ReadAsStringAsync(Ct);
        Assert.DoesNotContain("pat@example.com", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Patricia Q. Private", text, StringComparison.Ordinal);

        // Stored: the user row is a tombstone without personal data, and no session row (user agent, IP) is left.
        var row = (await App.StoredUserAsync(Tenant, pat))!;
        Assert.Equal("purged", row.GetString("Status"));
        Assert.All(UserApi.Names("Email", "DisplayName", "PasswordHash", "Fields", "Settings"), name => Assert.True(
            string.IsNullOrEmpty(row.GetString(name)) || row.GetString(name) == "{}", $"{name} is still stored: {row.GetString(name)}"));
        var sessions = new List<TableEntity>();
        await foreach (var session in App.Storage.TenantTable(Sessions.TableName).For(new TenantId(Tenant.Id)).QueryAsync<TableEntity>(pat + ":", cancellationToken: Ct))
        {
            sessions.Add(session);
        }

        var leftovers = sessions.Where(s => s.GetString("UserAgent") is not null || s.GetString("Ip") is not null)
            .Select(s => $"{s.RowKey} (userAgent {s.GetString("UserAgent")}, ip {s.GetString("Ip")})").ToList();
        Assert.True(leftovers.Count == 0, "session rows with personal data survive the purge: " + string.Join("; ", leftovers));
    }

    [Fact]
    public async Task PurgeHonoursIfMatchLikeEveryDelete()
    {
        var id = await Admin.CreateUserIdAsync("careful@example.com");
        var etag = (await Admin.GetAsync($"/api/v1/users/{id}", Ct)).Headers.ETag!.Tag;
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(id, new { displayName = "Changed meanwhile" })).StatusCode);

        var stale = await Admin.SendJsonAsync(HttpMethod.Delete, $"/api/v1/users/{id}?purge=true", null, etag);

        await stale.ReadProblemAsync(412, "precondition_failed");
        Assert.Equal("Changed meanwhile", (await Admin.GetUserAsync(id)).Str("displayName"));
        var current = (await Admin.GetAsync($"/api/v1/users/{id}", Ct)).Headers.ETag!.Tag;
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.SendJsonAsync(HttpMethod.Delete, $"/api/v1/users/{id}?purge=true", null, current)).StatusCode);
    }

    [Fact]
    public async Task ExportHoldsTheUserTheirPermissionsSessionsAndAuditEntries()
    {
        var max = await Admin.CreateUserIdAsync("max@example.com", Accounts.Password, ["manager"]);
        using var anonymous = App.CreateClient();
        var session = await Accounts.ReadTokensAsync(await anonymous.PostLoginAsync(Tenant.Slug, "max@example.com", Accounts.Password));
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(max, new { displayName = "Max Mustermann" })).StatusCode);

        var response = await Admin.GetAsync($"/api/v1/users/{max}/export", Ct);

        var export = await response.ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var user = export.GetProperty("user");
        Assert.Equal(max, user.Id());
        Assert.Equal("max@example.com", user.Str("email"));
        Assert.Equal("Max Mustermann", user.Str("displayName"));
        Assert.Equal(["manager"], user.Roles());
        Assert.Equal(["audit.read", "inventory.read", "inventory.write", "jobs.read", "jobs.write", "reports.read", "users.read", "users.write", "workflows.manage", "workflows.read"],
            export.GetProperty("permissions").Strings());
        var exported = Assert.Single(export.GetProperty("sessions").EnumerateArray());
        Assert.Equal(session.SessionId, exported.Id());
        var actions = export.GetProperty("auditEntries").EnumerateArray().Select(e => e.Str("action")).ToList();
        Assert.Contains("user.created", actions);
        Assert.Contains("user.updated", actions);
        Assert.Contains("auth.login.succeeded", actions);
        Assert.All(export.GetProperty("auditEntries").EnumerateArray(), e => Assert.True(e.Str("targetId") == max || e.Str("actorId") == max));
        var text = export.GetRawText();
        Assert.DoesNotContain("argon2", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("refresh", text, StringComparison.OrdinalIgnoreCase);

        // A soft-deleted user can still be exported; an unknown id cannot.
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{max}", Ct)).StatusCode);
        Assert.Equal("deleted", (await Admin.GetJsonAsync($"/api/v1/users/{max}/export")).GetProperty("user").Str("status"));
        await (await Admin.GetAsync("/api/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/export", Ct)).ReadProblemAsync(404, "not_found");
    }
}
