using System.Net;
using System.Text.Json;
using Platform.Functions.Auth;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Query;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;
using static Platform.Tests.Users.JobKinds;

namespace Platform.Tests.Users;

/// <summary>
/// The <c>users</c> export kind: the tenant's users in the list's filter language, read from storage a page at a
/// time, with what the API shows of a user and nothing more.
/// </summary>
public sealed class UserExportTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private Task<Caller> CallerAsync() => App.CallerAsync(Tenant);

    private IReadOnlyList<string?> Column(IReadOnlyList<IReadOnlyList<string?>> rows, string column) => rows.Column(App.ExportKind(UserExport.Kind), column);

    [Fact]
    public async Task RowsHoldWhatTheApiShowsAndNoSecrets()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "age", type = "number" })).StatusCode);
        var ada = await Admin.CreateUserAsync("ada@example.com", "Ada", Accounts.Password, ["user", "manager"], new { age = 36 });
        using (await App.SignInAsAsync(Tenant, "ada@example.com"))
        {
        }

        var rows = await App.ExportAsync(UserExport.Kind, await CallerAsync(), "email eq 'ada@example.com'");

        var row = Assert.Single(rows);
        var user = await Admin.GetUserAsync(ada.Id());
        var kind = App.ExportKind(UserExport.Kind);
        string? Cell(string column) => row[kind.Columns.ToList().IndexOf(column)];
        Assert.Equal(["id", "email", "displayName", "status", "roles", "emailVerified", "createdAt", "updatedAt", "lastLoginAt", "deletedAt", "fields"], kind.Columns);
        Assert.Equal(ada.Id(), Cell("id"));
        Assert.Equal("Ada", Cell("displayName"));
        Assert.Equal("active", Cell("status"));
        Assert.Equal("user;manager", Cell("roles"));
        Assert.Equal("false", Cell("emailVerified"));
        Assert.Equal(user.GetProperty("createdAt").GetDateTimeOffset(), DateTimeOffset.Parse(Cell("createdAt")!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.EndsWith("Z", Cell("createdAt"));
        Assert.NotNull(Cell("lastLoginAt"));
        Assert.Null(Cell("deletedAt"));
        Assert.Equal(36, JsonDocument.Parse(Cell("fields")!).RootElement.GetProperty("age").GetDouble());

        var stored = await App.StoredUserAsync(Tenant, ada.Id());
        var hash = stored!.GetString("PasswordHash");
        Assert.False(string.IsNullOrEmpty(hash));
        Assert.All(row, cell => Assert.DoesNotContain(hash, cell ?? "", StringComparison.Ordinal));
        Assert.All(row, cell => Assert.DoesNotContain("$argon2", cell ?? "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheFilterSelectsAsTheListDoesAndDeletedUsersOnlyWhenItAsks()
    {
        var ann = await Admin.CreateUserIdAsync("ann@example.com");
        await Admin.CreateUserIdAsync("ben@example.com", roles: ["manager"]);
        var gone = await Admin.CreateUserIdAsync("gone@example.com");
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{UserApi.Users}/{gone}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(ann, new { status = "locked" })).StatusCode);
        var caller = await CallerAsync();

        async Task<IReadOnlyList<string?>> EmailsAsync(string? filter) =>
            [.. Column(await App.ExportAsync(UserExport.Kind, caller, filter), "email").Order()];

        Assert.Equal(new[] { "ann@example.com", "ben@example.com", Tenant.AdminEmail }.Order(), await EmailsAsync(null));
        Assert.Equal(["ben@example.com"], await EmailsAsync("roles has 'manager'"));
        var filter = "startswith(email, 'a') or status eq 'locked'";
        Assert.Equal((await Admin.EmailsAsync("filter=" + Uri.EscapeDataString(filter))).Order(), await EmailsAsync(filter));
        Assert.Equal(["gone@example.com"], await EmailsAsync("status eq 'deleted'"));
        Assert.Equal(["gone@example.com"], await EmailsAsync("deletedAt ne null"));
        Assert.Equal(new[] { "ann@example.com", "ben@example.com", "gone@example.com", Tenant.AdminEmail }.Order(), await EmailsAsync("status ne 'purged'"));
    }

    [Fact]
    public async Task AllUsersAreStreamedAcrossStoragePagesAndNoOtherTenantsUser()
    {
        var caller = await CallerAsync();
        var count = UserExport.PageSize + 150;
        var outcomes = await App.ImportAsync(UserImport.Kind, caller, Ids.New(), ImportMode.Create,
            [.. Enumerable.Range(0, count).Select(i => Row(i + 2, ("email", $"u{i:D5}@example.com"), ("displayName", $"User {i}")))]);
        Assert.All(outcomes, o => Assert.True(o.Succeeded, o.Message));
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        await otherAdmin.CreateUserAsync("theirs@example.com");

        var emails = Column(await App.ExportAsync(UserExport.Kind, caller), "email");

        Assert.Equal(count + 1, emails.Count);
        Assert.Equal(count + 1, emails.Distinct().Count());
        Assert.DoesNotContain("theirs@example.com", emails);
        Assert.DoesNotContain(other.AdminEmail, emails);
    }

    [Fact]
    public async Task ABadFilterIsRefusedWithTheListRoutesMessage()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "age", type = "number" }, new { name = "vip", type = "boolean" })).StatusCode);
        var kind = App.ExportKind(UserExport.Kind);

        foreach (var bad in new[] { "status eq", "nosuch eq 1", "roles eq 'admin'", "createdAt gt 'yesterday'", "(email eq 'a'" })
        {
            var problem = await (await Admin.GetAsync($"{UserApi.Users}?filter={Uri.EscapeDataString(bad)}", Ct)).ReadProblemAsync(400, "invalid_filter");
            Assert.Equal(problem.GetProperty("detail").GetString(), kind.CheckFilter(bad));
        }

        Assert.Null(kind.CheckFilter(null));
        Assert.Null(kind.CheckFilter(" "));
        Assert.Null(kind.CheckFilter("fields.age gt 30 and fields.vip eq true and status eq 'active'"));

        // The tenant's schema is known only once the job runs: a custom field it lacks fails there, with the list's message.
        var listProblem = await (await Admin.GetAsync($"{UserApi.Users}?filter={Uri.EscapeDataString("fields.shoe eq 42")}", Ct)).ReadProblemAsync(400, "invalid_filter");
        Assert.Null(kind.CheckFilter("fields.shoe eq 42"));
        var caller = await CallerAsync();
        var refused = await Assert.ThrowsAsync<FilterException>(() => App.ExportAsync(UserExport.Kind, caller, "fields.shoe eq 42"));
        Assert.Equal(listProblem.GetProperty("detail").GetString(), refused.Message);
    }

    [Fact]
    public async Task ACallerWithoutUsersReadExportsNothing()
    {
        Assert.Equal(HttpStatusCode.Created, (await Admin.PutRoleAsync("auditor", "audit.read")).StatusCode);
        var auditorId = await Admin.CreateUserIdAsync("auditor@example.com", Accounts.Password, ["auditor"]);
        var auditor = await App.CallerAsync(Tenant, "auditor@example.com", auditorId);

        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => App.ExportAsync(UserExport.Kind, auditor));
    }
}
