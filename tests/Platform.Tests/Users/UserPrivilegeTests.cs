using System.Net;
using System.Net.Http.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>Who may do what to users and roles: no way to more permissions than one holds, and never a tenant without an admin.</summary>
public sealed class UserPrivilegeTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    [Fact]
    public async Task RoleManagerCannotGrantPermissionsTheyDoNotHold()
    {
        Assert.Equal(HttpStatusCode.Created, (await Admin.PutRoleAsync("people-ops", "users.read", "users.write", "roles.manage")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Admin.PutRoleAsync("settings", "users.read", "tenant.manage")).StatusCode);
        var opsId = await Admin.CreateUserIdAsync("ops@example.com", Accounts.Password, ["people-ops"]);
        var victim = await Admin.CreateUserIdAsync("victim@example.com");
        using var ops = await App.SignInAsAsync(Tenant, "ops@example.com");

        // No role that carries tenant.manage (or anything else ops lacks), to others or to themselves, by any route.
        await (await ops.PutRolesAsync(victim, "admin")).ReadProblemAsync(403, "permission_not_held");
        await (await ops.PutRolesAsync(victim, "settings")).ReadProblemAsync(403, "permission_not_held");
        await (await ops.PutRolesAsync(victim, "user", "settings")).ReadProblemAsync(403, "permission_not_held");
        await (await ops.PutRolesAsync(victim, "manager")).ReadProblemAsync(403, "permission_not_held");
        await (await ops.PutRolesAsync(opsId, "people-ops", "admin")).ReadProblemAsync(403, "permission_not_held");
        await (await ops.PatchUserAsync(victim, new { roles = UserApi.Names("settings") })).ReadProblemAsync(403, "permission_not_held");
        await (await ops.PostUserAsync(new { email = "sock@example.com", displayName = "Sock puppet", password = Accounts.Password, roles = UserApi.Names("admin") }))
            .ReadProblemAsync(403, "permission_not_held");
        var bulk = await (await ops.BulkAsync([new { op = "create", data = new { email = "sock2@example.com", displayName = "Sock", roles = UserApi.Names("settings") } }]))
            .ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal(403, bulk.GetProperty("results")[0].GetProperty("status").GetInt32());
        Assert.Equal("permission_not_held", bulk.GetProperty("results")[0].GetProperty("error").Str("code"));

        // Nor a role definition that holds more than they do - new, or their own role widened.
        await (await ops.PutRoleAsync("escalate", "tenant.manage")).ReadProblemAsync(403, "permission_not_held");
        await (await ops.PutRoleAsync("people-ops", "users.read", "users.write", "roles.manage", "users.delete")).ReadProblemAsync(403, "permission_not_held");
        await (await ops.PutRoleAsync("settings", "users.read", "tenant.manage", "roles.manage")).ReadProblemAsync(403, "permission_not_held");

        Assert.Equal(["user"], (await Admin.GetUserAsync(victim)).Roles());
        Assert.Equal(["people-ops"], (await Admin.GetUserAsync(opsId)).Roles());
        Assert.DoesNotContain("sock@example.com", await Admin.EmailsAsync());
        var roles = (await Admin.GetJsonAsync("/api/v1/roles")).GetProperty("items").EnumerateArray().ToDictionary(r => r.Str("name"), r => r.GetProperty("permissions").Strings());
        Assert.False(roles.ContainsKey("escalate"));
        Assert.Equal(["roles.manage", "users.read", "users.write"], roles["people-ops"]);

        // Within what they hold, they may - for a user who holds nothing beyond it either.
        Assert.Equal(HttpStatusCode.Created, (await ops.PutRoleAsync("reader", "users.read")).StatusCode);
        var plain = await Admin.CreateUserIdAsync("plain@example.com", roles: []);
        Assert.Equal(["reader"], (await (await ops.PutRolesAsync(plain, "reader")).ReadJsonAsync(HttpStatusCode.OK)).Roles());
    }

    [Fact]
    public async Task CreatingAUserWithRolesNeedsRolesManageLikeChangingThem()
    {
        // A manager holds users.write but not roles.manage: they may add people, not decide what those people hold -
        // not even a role within their own permissions (a second manager account they control).
        await Admin.CreateUserIdAsync("mgr@example.com", Accounts.Password, ["manager"]);
        using var manager = await App.SignInAsAsync(Tenant, "mgr@example.com");

        await (await manager.PostUserAsync(new { email = "sock@example.com", displayName = "Sock", password = Accounts.Password, roles = UserApi.Names("manager") }))
            .ReadProblemAsync(403, "forbidden");
        await (await manager.PostUserAsync(new { email = "sock2@example.com", displayName = "Sock", roles = UserApi.Names("user") }))
            .ReadProblemAsync(403, "forbidden");
        var bulk = await (await manager.BulkAsync(
        [
            new { op = "create", data = new { email = "sock3@example.com", displayName = "Sock", roles = UserApi.Names("manager") } },
            new { op = "create", data = new { email = "plain@example.com", displayName = "Plain" } },
        ])).ReadJsonAsync(HttpStatusCode.OK);
        var results = bulk.GetProperty("results");
        Assert.Equal(403, results[0].GetProperty("status").GetInt32());
        Assert.Equal("forbidden", results[0].GetProperty("error").Str("code"));
        Assert.Equal(201, results[1].GetProperty("status").GetInt32());

        // Leaving roles out still works and gives the default role.
        var created = await (await manager.PostUserAsync(new { email = "new@example.com", displayName = "New" })).ReadJsonAsync(HttpStatusCode.Created);
        Assert.Equal(["user"], created.Roles());
        Assert.Equal(["user"], (await Admin.GetUserAsync(results[1].Str("id"))).Roles());
        var emails = await Admin.EmailsAsync();
        Assert.DoesNotContain("sock@example.com", emails);
        Assert.DoesNotContain("sock2@example.com", emails);
        Assert.DoesNotContain("sock3@example.com", emails);
    }

    [Fact]
    public async Task TheOnlyAdminCannotBeDemotedDeletedOrLocked()
    {
        await (await Admin.PutRolesAsync(Tenant.AdminId, "user")).ReadProblemAsync(409, "last_admin");
        await (await Admin.PutRolesAsync(Tenant.AdminId, "manager")).ReadProblemAsync(409, "last_admin");
        await (await Admin.PatchUserAsync(Tenant.AdminId, new { roles = Array.Empty<string>() })).ReadProblemAsync(409, "last_admin");
        await (await Admin.PatchUserAsync(Tenant.AdminId, new { status = "locked" })).ReadProblemAsync(409, "last_admin");
        await (await Admin.DeleteAsync($"/api/v1/users/{Tenant.AdminId}", Ct)).ReadProblemAsync(409, "last_admin");
        var bulk = await (await Admin.BulkAsync([new { op = "delete", id = Tenant.AdminId }])).ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal(409, bulk.GetProperty("results")[0].GetProperty("status").GetInt32());

        // A second admin who is locked does not count.
        var lockedAdmin = await Admin.CreateUserIdAsync("locked-admin@example.com", roles: ["admin"]);
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(lockedAdmin, new { status = "locked" })).StatusCode);
        await (await Admin.PutRolesAsync(Tenant.AdminId, "user")).ReadProblemAsync(409, "last_admin");

        var me = await Admin.GetUserAsync(Tenant.AdminId);
        Assert.Equal(["admin"], me.Roles());
        Assert.Equal("active", me.Str("status"));
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync("/api/v1/users", Ct)).StatusCode);
    }

    [Fact]
    public async Task PurgingTheOnlyAdminIsRefusedAsLastAdmin()
    {
        var purge = await Admin.DeleteAsync($"/api/v1/users/{Tenant.AdminId}?purge=true", Ct);

        await purge.ReadProblemAsync(409, "last_admin");
        Assert.Equal("active", (await Admin.GetUserAsync(Tenant.AdminId)).Str("status"));
    }

    [Fact]
    public async Task WithASecondAdminTheFirstCanStepDown()
    {
        var second = await Admin.CreateUserIdAsync("second@example.com", Accounts.Password, ["admin"]);

        var demoted = await (await Admin.PutRolesAsync(Tenant.AdminId, "user")).ReadJsonAsync(HttpStatusCode.OK);

        Assert.Equal(["user"], demoted.Roles());
        // The change takes effect on the next request of the demoted admin.
        await (await Admin.GetAsync("/api/v1/users", Ct)).ReadProblemAsync(403, "forbidden");
        using var secondAdmin = await App.SignInAsAsync(Tenant, "second@example.com");
        await (await secondAdmin.PutRolesAsync(second, "user")).ReadProblemAsync(409, "last_admin");
        await (await secondAdmin.DeleteAsync($"/api/v1/users/{second}", Ct)).ReadProblemAsync(409, "last_admin");
        Assert.Equal(["admin"], (await (await secondAdmin.PutRolesAsync(Tenant.AdminId, "admin")).ReadJsonAsync(HttpStatusCode.OK)).Roles());
        Assert.Equal(HttpStatusCode.NoContent, (await secondAdmin.DeleteAsync($"/api/v1/users/{Tenant.AdminId}", Ct)).StatusCode);
    }

    [Fact]
    public async Task TwoAdminsDemotedAtOnceLeaveOneAdmin()
    {
        var second = await Admin.CreateUserIdAsync("second@example.com", roles: ["admin"]);

        var responses = await Task.WhenAll(Admin.PutRolesAsync(Tenant.AdminId, "user"), Admin.PutRolesAsync(second, "user"));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        var refused = responses.Single(r => r.StatusCode != HttpStatusCode.OK);
        // 409/412 when the guard row catches the race; 403 when the caller's own demotion landed first, so by the time
        // the second request is checked the caller no longer holds roles.manage.
        Assert.True(refused.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed or HttpStatusCode.Forbidden, $"{refused.StatusCode}");

        // Whichever order they ran in, exactly one active admin is left in storage.
        var stored = new[] { (await App.StoredUserAsync(Tenant, Tenant.AdminId))!, (await App.StoredUserAsync(Tenant, second))! };
        Assert.Single(stored, row => row.GetString("Roles").Contains("\"admin\"", StringComparison.Ordinal) && row.GetString("Status") == "active");
    }

    [Fact]
    public async Task ACallerWithTheUserRoleIsForbiddenAndAnAnonymousOneUnauthorized()
    {
        var id = await Admin.CreateUserIdAsync("plain@example.com", Accounts.Password);
        using var plain = await App.SignInAsAsync(Tenant, "plain@example.com");
        using var anonymous = App.CreateClient();

        foreach (var (client, status, code) in new[] { (plain, 403, "forbidden"), (anonymous, 401, "unauthorized") })
        {
            await (await client.GetAsync("/api/v1/users", Ct)).ReadProblemAsync(status, code);
            await (await client.PostUserAsync(new { email = "x@example.com", displayName = "X" })).ReadProblemAsync(status, code);
            await (await client.GetAsync($"/api/v1/users/{Tenant.AdminId}", Ct)).ReadProblemAsync(status, code);
            await (await client.PatchUserAsync(id, new { displayName = "Self-served" })).ReadProblemAsync(status, code);
            await (await client.DeleteAsync($"/api/v1/users/{Tenant.AdminId}", Ct)).ReadProblemAsync(status, code);
            await (await client.PostAsync($"/api/v1/users/{id}/restore", null, Ct)).ReadProblemAsync(status, code);
            await (await client.GetAsync($"/api/v1/users/{Tenant.AdminId}/export", Ct)).ReadProblemAsync(status, code);
            await (await client.PutRolesAsync(id, "admin")).ReadProblemAsync(status, code);
            await (await client.BulkAsync([new { op = "create", data = new { email = "y@example.com", displayName = "Y" } }])).ReadProblemAsync(status, code);
            await (await client.GetAsync("/api/v1/schema/users", Ct)).ReadProblemAsync(status, code);
            await (await client.PutSchemaAsync(new { name = "x", type = "string" })).ReadProblemAsync(status, code);
            await (await client.GetAsync("/api/v1/roles", Ct)).ReadProblemAsync(status, code);
            await (await client.PutRoleAsync("mine", "inventory.read")).ReadProblemAsync(status, code);
            await (await client.DeleteAsync("/api/v1/roles/mine", Ct)).ReadProblemAsync(status, code);
            await (await client.GetAsync("/api/v1/audit", Ct)).ReadProblemAsync(status, code);
        }

        await (await anonymous.GetAsync("/api/v1/permissions", Ct)).ReadProblemAsync(401, "unauthorized");
        Assert.Equal(HttpStatusCode.OK, (await plain.GetAsync("/api/v1/permissions", Ct)).StatusCode);
        var stored = await Admin.GetUserAsync(id);
        Assert.Equal("plain", stored.Str("displayName"));
        Assert.Equal(["user"], stored.Roles());
        Assert.Equal(2, (await Admin.ListAsync()).Count);
    }

    [Fact]
    public async Task ManagerCannotTakeOverAnAdminAccountByChangingItsEmail()
    {
        // A manager holds users.write but not the admin's other permissions. Were they allowed to point the admin's
        // account at a mailbox of theirs, a password reset would hand them the admin's account.
        using var manager = await SignedInAsync("manager@example.com", "manager");

        var takeover = await manager.PatchUserAsync(Tenant.AdminId, new { email = "manager+admin@example.com" });

        Assert.Equal(HttpStatusCode.Forbidden, takeover.StatusCode);
        Assert.Equal(Tenant.AdminEmail, (await Admin.GetUserAsync(Tenant.AdminId)).Str("email"));
        using var anonymous = App.CreateClient();
        await anonymous.PostAsJsonAsync("/api/v1/auth/forgot-password", new { tenant = Tenant.Slug, email = "manager+admin@example.com" }, Ct);
        Assert.Empty(App.MailTo("manager+admin@example.com"));
    }
}
