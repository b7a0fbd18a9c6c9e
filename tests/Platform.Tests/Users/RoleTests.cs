using System.Net;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>/api/v1/roles and /api/v1/permissions.</summary>
public sealed class RoleTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private static readonly string[] AllPermissions =
    [
        "apikeys.manage", "audit.read", "backups.manage", "inventory.read", "inventory.write", "jobs.read", "jobs.write",
        "reports.read", "roles.manage", "tenant.manage", "usage.read", "users.delete", "users.read", "users.write", "webhooks.manage", "webhooks.read",
        "workflows.manage", "workflows.read",
    ];

    protected override bool SignsInAdmin => true;

    private async Task<Dictionary<string, (IReadOnlyList<string> Permissions, bool BuiltIn)>> RolesAsync() =>
        (await Admin.GetJsonAsync("/api/v1/roles")).GetProperty("items").EnumerateArray()
            .ToDictionary(r => r.Str("name"), r => (r.GetProperty("permissions").Strings(), r.GetProperty("builtIn").GetBoolean()));

    [Fact]
    public async Task RolesListTheBuiltInOnesAndTheTenantsOwn()
    {
        var created = await Admin.PutRoleAsync("auditor", "users.read", "audit.read", "audit.read");

        var body = await created.ReadJsonAsync(HttpStatusCode.Created);
        Assert.Equal("/api/v1/roles/auditor", created.Headers.Location?.OriginalString);
        Assert.Equal("auditor", body.Str("name"));
        Assert.Equal(["audit.read", "users.read"], body.GetProperty("permissions").Strings());
        Assert.False(body.GetProperty("builtIn").GetBoolean());

        var list = await Admin.GetJsonAsync("/api/v1/roles");
        Assert.Equal(["admin", "manager", "user", "auditor"], list.GetProperty("items").EnumerateArray().Select(r => r.Str("name")));
        var roles = await RolesAsync();
        Assert.Equal(AllPermissions, roles["admin"].Permissions);
        Assert.True(roles["admin"].BuiltIn);
        Assert.Equal(["audit.read", "inventory.read", "inventory.write", "jobs.read", "jobs.write", "reports.read", "users.read", "users.write", "workflows.manage", "workflows.read"], roles["manager"].Permissions);
        Assert.Equal(["inventory.read", "jobs.read", "reports.read"], roles["user"].Permissions);
        Assert.True(roles["manager"].BuiltIn && roles["user"].BuiltIn);
        Assert.False(roles["auditor"].BuiltIn);

        // PUT again replaces the permissions, and the holders get exactly them.
        using var auditor = await SignedInAsync("auditor@example.com", "auditor");
        Assert.Equal(HttpStatusCode.OK, (await auditor.GetAsync("/api/v1/audit", Ct)).StatusCode);
        var replaced = await (await Admin.PutRoleAsync("auditor", "users.read")).ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal(["users.read"], replaced.GetProperty("permissions").Strings());
        Assert.Equal(["users.read"], (await RolesAsync())["auditor"].Permissions);
        await (await auditor.GetAsync("/api/v1/audit", Ct)).ReadProblemAsync(403, "forbidden");
        Assert.Equal(HttpStatusCode.OK, (await auditor.GetAsync("/api/v1/users", Ct)).StatusCode);
    }

    [Fact]
    public async Task BuiltInRolesCannotBeChangedOrDeleted()
    {
        foreach (var name in UserApi.Names("admin", "manager", "user"))
        {
            await (await Admin.PutRoleAsync(name, "users.read")).ReadProblemAsync(409, "built_in_role");
            await (await Admin.DeleteAsync($"/api/v1/roles/{name}", Ct)).ReadProblemAsync(409, "built_in_role");
        }

        var roles = await RolesAsync();
        Assert.Equal(AllPermissions, roles["admin"].Permissions);
        Assert.Equal(3, roles["user"].Permissions.Count);
    }

    [Fact]
    public async Task RoleInUseCannotBeDeletedUntilNobodyHoldsIt()
    {
        Assert.Equal(HttpStatusCode.Created, (await Admin.PutRoleAsync("support", "users.read")).StatusCode);
        var holder = await Admin.CreateUserIdAsync("holder@example.com", roles: ["support", "user"]);

        var problem = await (await Admin.DeleteAsync("/api/v1/roles/support", Ct)).ReadProblemAsync(409, "role_in_use");
        Assert.Contains("1", problem.Str("detail"), StringComparison.Ordinal);
        Assert.True((await RolesAsync()).ContainsKey("support"));

        Assert.Equal(HttpStatusCode.OK, (await Admin.PutRolesAsync(holder, "user")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync("/api/v1/roles/support", Ct)).StatusCode);

        Assert.False((await RolesAsync()).ContainsKey("support"));
        await (await Admin.DeleteAsync("/api/v1/roles/support", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Equal(["roles"], await (await Admin.PutRolesAsync(holder, "support")).ValidationErrorsAsync());
        Assert.Equal(["roles"], await (await Admin.PostUserAsync(new { email = "x@example.com", displayName = "X", roles = UserApi.Names("support") })).ValidationErrorsAsync());
    }

    [Fact]
    public async Task ARoleHeldOnlyByADeletedUserIsStillInUse()
    {
        // The attack: delete the holder, delete the role, re-create a wider role of the same name, restore the holder -
        // who would come back holding the wider role nobody ever granted them.
        Assert.Equal(HttpStatusCode.Created, (await Admin.PutRoleAsync("support", "users.read")).StatusCode);
        var holder = await Admin.CreateUserIdAsync("holder@example.com", roles: ["support"]);
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{holder}", Ct)).StatusCode);

        var problem = await (await Admin.DeleteAsync("/api/v1/roles/support", Ct)).ReadProblemAsync(409, "role_in_use");
        Assert.Contains("1", problem.Str("detail"), StringComparison.Ordinal);
        Assert.Equal(["users.read"], (await RolesAsync())["support"].Permissions);

        // Once the deleted holder is purged for good, nobody can come back with it, and the role can go.
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{holder}?purge=true", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync("/api/v1/roles/support", Ct)).StatusCode);
        Assert.False((await RolesAsync()).ContainsKey("support"));
    }

    [Fact]
    public async Task InvalidRoleDefinitionsAreRefusedNamingTheField()
    {
        Assert.Equal(["permissions"], await (await Admin.PutRoleAsync("ops", "users.read", "users.fly")).ValidationErrorsAsync());
        Assert.Equal(["permissions"], await (await Admin.PutAsync("/api/v1/roles/ops", System.Net.Http.Json.JsonContent.Create(new { }), Ct)).ValidationErrorsAsync());
        Assert.Equal(["name"], await (await Admin.PutRoleAsync("Ops", "users.read")).ValidationErrorsAsync());
        Assert.Equal(["name"], await (await Admin.PutRoleAsync("o", "users.read")).ValidationErrorsAsync());
        Assert.Equal(["name"], await (await Admin.PutRoleAsync(new string('o', 41), "users.read")).ValidationErrorsAsync());
        Assert.Equal(["name"], await (await Admin.PutRoleAsync("ops%21", "users.read")).ValidationErrorsAsync());
        Assert.Equal(["admin", "manager", "user"], (await RolesAsync()).Keys);
        await (await Admin.DeleteAsync("/api/v1/roles/never-made", Ct)).ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task SettingRolesWithoutARolesListIsRefusedRatherThanWipingThem()
    {
        var id = await Admin.CreateUserIdAsync("kept@example.com", roles: ["manager"]);

        var missing = await Admin.PutAsync($"/api/v1/users/{id}/roles", System.Net.Http.Json.JsonContent.Create(new { role = "user" }), Ct);

        Assert.Equal(["roles"], await missing.ValidationErrorsAsync());
        Assert.Equal(["manager"], (await Admin.GetUserAsync(id)).Roles());
        // An explicit empty list is a deliberate choice, and allowed.
        Assert.Empty((await (await Admin.PutRolesAsync(id)).ReadJsonAsync(HttpStatusCode.OK)).Roles());
    }

    [Fact]
    public async Task PermissionsListsAllFifteenWithDescriptions()
    {
        var items = (await Admin.GetJsonAsync("/api/v1/permissions")).GetProperty("items").EnumerateArray().ToList();

        Assert.Equal(AllPermissions, items.Select(p => p.Str("name")));
        Assert.All(items, p => Assert.False(string.IsNullOrWhiteSpace(p.Str("description"))));
    }
}
