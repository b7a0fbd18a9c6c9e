using System.Net;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>Another tenant's users, roles, schema, tokens and audit trail are out of reach - and look exactly like missing ones.</summary>
public sealed class UserTenancyTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string MissingId = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

    private HttpClient _admin = null!;
    private TestTenant _other = null!;
    private HttpClient _otherAdmin = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _admin = await App.SignedInClientAsync(Tenant);
        _other = await App.SignUpAsync();
        _otherAdmin = await App.SignedInClientAsync(_other);
    }

    public override async ValueTask DisposeAsync()
    {
        _admin.Dispose();
        _otherAdmin.Dispose();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task AnotherTenantsUserAnswersLikeAMissingOneOnEveryRoute()
    {
        var theirs = (await _otherAdmin.CreateUserAsync("shared@example.com", "Their User")).Id();
        var theirDeleted = await _otherAdmin.CreateUserIdAsync("gone@example.com");
        Assert.Equal(HttpStatusCode.NoContent, (await _otherAdmin.DeleteAsync($"/api/v1/users/{theirDeleted}", Ct)).StatusCode);

        foreach (var id in new[] { theirs, theirDeleted, _other.AdminId, MissingId })
        {
            var answers = new[]
            {
                await _admin.GetAsync($"/api/v1/users/{id}", Ct),
                await _admin.PatchUserAsync(id, new { displayName = "Hijacked", email = "mine@example.com" }),
                await _admin.PatchUserAsync(id, new { displayName = "Hijacked" }, "*"),
                await _admin.PutRolesAsync(id, "user"),
                await _admin.PostAsync($"/api/v1/users/{id}/restore", null, Ct),
                await _admin.GetAsync($"/api/v1/users/{id}/export", Ct),
                await _admin.DeleteAsync($"/api/v1/users/{id}", Ct),
                await _admin.DeleteAsync($"/api/v1/users/{id}?purge=true", Ct),
            };
            var details = new List<string>();
            foreach (var answer in answers)
            {
                details.Add((await answer.ReadProblemAsync(404, "not_found")).Str("detail"));
            }

            Assert.Single(details.Distinct());
            var bulk = (await (await _admin.BulkAsync(
                [
                    new { op = "update", id, data = (object)new { displayName = "Hijacked" } },
                    new { op = "delete", id, data = (object)new { } },
                    new { op = "restore", id, data = (object)new { } },
                ])).ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray().ToList();
            Assert.All(bulk, r => Assert.Equal(404, r.GetProperty("status").GetInt32()));
        }

        // Their users are untouched, and none of them shows in this tenant's lists, searches or audit trail.
        var stillTheirs = await _otherAdmin.GetUserAsync(theirs);
        Assert.Equal("Their User", stillTheirs.Str("displayName"));
        Assert.Equal("active", stillTheirs.Str("status"));
        Assert.Equal("deleted", (await _otherAdmin.GetUserAsync(theirDeleted)).Str("status"));
        Assert.Equal("active", (await _otherAdmin.GetUserAsync(_other.AdminId)).Str("status"));
        Assert.Equal([Tenant.AdminEmail], await _admin.EmailsAsync("includeDeleted=true"));
        Assert.Empty(await _admin.ListAsync("q=shared"));
        Assert.Empty(await _admin.ListAsync("filter=" + Uri.EscapeDataString($"id eq '{theirs}'")));
        Assert.Empty((await _admin.GetJsonAsync($"/api/v1/audit?targetId={theirs}")).GetProperty("items").EnumerateArray());
        Assert.Empty((await _admin.GetJsonAsync($"/api/v1/audit?actorId={_other.AdminId}")).GetProperty("items").EnumerateArray());
        Assert.DoesNotContain(_other.Id, await (await _admin.GetAsync("/api/v1/audit?pageSize=1000", Ct)).Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        // Emails are unique per tenant only.
        var mine = await _admin.CreateUserAsync("shared@example.com", "My User");
        Assert.NotEqual(theirs, mine.Id());
        Assert.Equal("Their User", (await _otherAdmin.GetUserAsync(theirs)).Str("displayName"));
    }

    [Fact]
    public async Task AnotherTenantsContinuationTokenIsRefused()
    {
        await _otherAdmin.CreateUserIdAsync("one@example.com");
        await _otherAdmin.CreateUserIdAsync("two@example.com");
        await _admin.CreateUserIdAsync("three@example.com");
        var theirUsers = (await _otherAdmin.GetJsonAsync("/api/v1/users?pageSize=1")).Str("continuationToken");
        var theirAudit = (await _otherAdmin.GetJsonAsync("/api/v1/audit?pageSize=1")).Str("continuationToken");

        await (await _admin.GetAsync($"/api/v1/users?pageSize=1&continuationToken={Uri.EscapeDataString(theirUsers)}", Ct)).ReadProblemAsync(400, "invalid_continuation_token");
        await (await _admin.GetAsync($"/api/v1/audit?pageSize=1&continuationToken={Uri.EscapeDataString(theirAudit)}", Ct)).ReadProblemAsync(400, "invalid_continuation_token");

        // The same tokens still work for their own tenant.
        Assert.Single((await _otherAdmin.GetJsonAsync($"/api/v1/users?pageSize=1&continuationToken={Uri.EscapeDataString(theirUsers)}")).GetProperty("items").EnumerateArray());
        Assert.Single((await _otherAdmin.GetJsonAsync($"/api/v1/audit?pageSize=1&continuationToken={Uri.EscapeDataString(theirAudit)}")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task AnotherTenantsRolesAndSchemaAreInvisible()
    {
        Assert.Equal(HttpStatusCode.Created, (await _otherAdmin.PutRoleAsync("ops", "users.read", "tenant.manage")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _otherAdmin.PutSchemaAsync(new { name = "secret", type = "string" })).StatusCode);
        var mine = await _admin.CreateUserIdAsync("mine@example.com");

        var roles = (await _admin.GetJsonAsync("/api/v1/roles")).GetProperty("items").EnumerateArray().Select(r => r.Str("name")).ToList();
        Assert.Equal(["admin", "manager", "user"], roles);
        Assert.Equal(["roles"], await (await _admin.PutRolesAsync(mine, "ops")).ValidationErrorsAsync());
        Assert.Equal(["roles"], await (await _admin.PostUserAsync(new { email = "ops@example.com", displayName = "Ops", roles = UserApi.Names("ops") })).ValidationErrorsAsync());
        await (await _admin.DeleteAsync("/api/v1/roles/ops", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Empty((await _admin.GetJsonAsync("/api/v1/schema/users")).GetProperty("fields").EnumerateArray());
        Assert.Equal(["fields.secret"], await (await _admin.PatchUserAsync(mine, new { fields = new { secret = "x" } })).ValidationErrorsAsync());
        await (await _admin.GetAsync("/api/v1/users?filter=" + Uri.EscapeDataString("fields.secret eq 'x'"), Ct)).ReadProblemAsync(400, "invalid_filter");

        // A role of the same name here is a new, separate role.
        var own = await _admin.PutRoleAsync("ops", "users.read");
        Assert.Equal(HttpStatusCode.Created, own.StatusCode);
        var theirs = (await _otherAdmin.GetJsonAsync("/api/v1/roles")).GetProperty("items").EnumerateArray().Single(r => r.Str("name") == "ops");
        Assert.Equal(["tenant.manage", "users.read"], theirs.GetProperty("permissions").Strings());
        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync("/api/v1/roles/ops", Ct)).StatusCode);
        Assert.Equal(JsonValueKind.Object, (await _otherAdmin.GetJsonAsync("/api/v1/roles")).GetProperty("items").EnumerateArray().Single(r => r.Str("name") == "ops").ValueKind);
    }
}
