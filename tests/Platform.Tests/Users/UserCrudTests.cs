using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

public sealed class UserCrudTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    [Fact]
    public async Task CreateAnswers201WithLocationETagAndTheUserRoleByDefault()
    {
        var response = await Admin.PostUserAsync(new { email = " Ada@Example.com ", displayName = "  Ada Lovelace ", password = Accounts.Password });

        var created = await response.ReadJsonAsync(HttpStatusCode.Created);
        var id = created.Id();
        Assert.Matches("^[0-9A-Za-z]{10,64}$", id);
        Assert.Equal($"/api/v1/users/{id}", response.Headers.Location?.OriginalString);
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal("Ada@Example.com", created.Str("email"));
        Assert.Equal("Ada Lovelace", created.Str("displayName"));
        Assert.Equal("active", created.Str("status"));
        Assert.Equal(["user"], created.Roles());
        Assert.False(created.GetProperty("emailVerified").GetBoolean());
        Assert.False(created.GetProperty("mfaEnabled").GetBoolean());
        Assert.Equal(JsonValueKind.Object, created.GetProperty("fields").ValueKind);
        Assert.Equal(JsonValueKind.Null, created.GetProperty("deletedAt").ValueKind);
        Assert.Equal(Clock.GetUtcNow().UtcDateTime, created.GetProperty("createdAt").GetDateTimeOffset().UtcDateTime, TimeSpan.FromSeconds(1));
        var text = created.GetRawText();
        Assert.DoesNotContain("password", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("argon2", text, StringComparison.OrdinalIgnoreCase);

        var read = await Admin.GetAsync($"/api/v1/users/{id}", Ct);
        var body = await read.ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal(response.Headers.ETag!.Tag, read.Headers.ETag?.Tag);
        Assert.Equal(id, body.Id());
        Assert.Equal("Ada Lovelace", body.Str("displayName"));

        // The new user can sign in with the password they were given.
        using var ada = await App.SignInAsAsync(Tenant, "ada@example.com");
        Assert.Equal(id, (await ada.GetJsonAsync("/api/v1/me")).Id());
    }

    [Fact]
    public async Task PatchWithTheCurrentETagChangesTheUserAndAStaleOneIsRefused()
    {
        var id = await Admin.CreateUserIdAsync("grace@example.com");
        var etag = (await Admin.GetAsync($"/api/v1/users/{id}", Ct)).Headers.ETag!.Tag;

        var patched = await Admin.PatchUserAsync(id, new { displayName = "Grace Hopper" }, etag);
        var stale = await Admin.PatchUserAsync(id, new { displayName = "Rear Admiral Hopper" }, etag);

        var body = await patched.ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal("Grace Hopper", body.Str("displayName"));
        Assert.NotNull(patched.Headers.ETag);
        Assert.NotEqual(etag, patched.Headers.ETag!.Tag);
        await stale.ReadProblemAsync(412, "precondition_failed");
        var read = await Admin.GetAsync($"/api/v1/users/{id}", Ct);
        Assert.Equal("Grace Hopper", (await read.ReadJsonAsync(HttpStatusCode.OK)).Str("displayName"));
        Assert.Equal(patched.Headers.ETag.Tag, read.Headers.ETag?.Tag);

        // The new tag works; '*' always does.
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(id, new { displayName = "G. Hopper" }, read.Headers.ETag!.Tag)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(id, new { displayName = "Grace" }, "*")).StatusCode);
    }

    [Fact]
    public async Task TwoConcurrentPatchesWithOneETagLetExactlyOneThrough()
    {
        var id = await Admin.CreateUserIdAsync("race@example.com");
        for (var round = 0; round < 3; round++)
        {
            var etag = (await Admin.GetAsync($"/api/v1/users/{id}", Ct)).Headers.ETag!.Tag;

            var first = Admin.PatchUserAsync(id, new { displayName = $"first {round}" }, etag);
            var second = Admin.PatchUserAsync(id, new { displayName = $"second {round}" }, etag);
            var responses = await Task.WhenAll(first, second);

            Assert.Equal([200, 412], responses.Select(r => (int)r.StatusCode).Order());
            var winner = responses.Single(r => r.StatusCode == HttpStatusCode.OK);
            await responses.Single(r => r.StatusCode != HttpStatusCode.OK).ReadProblemAsync(412, "precondition_failed");
            var stored = await Admin.GetUserAsync(id);
            Assert.Equal((await winner.ReadJsonAsync(HttpStatusCode.OK)).Str("displayName"), stored.Str("displayName"));
        }
    }

    [Fact]
    public async Task EmailIsUniqueWithinTheTenantAndFreedWhenChanged()
    {
        var ada = await Admin.CreateUserIdAsync("ada@example.com");
        var bob = await Admin.CreateUserIdAsync("bob@example.com");

        await (await Admin.PostUserAsync(new { email = "ADA@example.COM", displayName = "Other Ada" })).ReadProblemAsync(409, "email_taken");
        await (await Admin.PostUserAsync(new { email = Tenant.AdminEmail, displayName = "Not the admin" })).ReadProblemAsync(409, "email_taken");
        await (await Admin.PatchUserAsync(bob, new { email = "Ada@Example.com" })).ReadProblemAsync(409, "email_taken");
        Assert.Equal("bob@example.com", (await Admin.GetUserAsync(bob)).Str("email"));

        // Ada moves to a new address: the old one is free again, the new one is hers.
        var moved = await (await Admin.PatchUserAsync(ada, new { email = "ada.lovelace@example.com" })).ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal("ada.lovelace@example.com", moved.Str("email"));
        var bobMoved = await (await Admin.PatchUserAsync(bob, new { email = "ada@example.com" })).ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal("ada@example.com", bobMoved.Str("email"));
        await (await Admin.PostUserAsync(new { email = "ada.lovelace@example.com", displayName = "Copycat" })).ReadProblemAsync(409, "email_taken");
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostUserAsync(new { email = "bob@example.com", displayName = "New Bob" })).StatusCode);

        // Changing only the case of one's own address is no conflict.
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(ada, new { email = "ADA.LOVELACE@example.com" })).StatusCode);
    }

    [Fact]
    public async Task InvalidWritesAreRefusedNamingTheField()
    {
        var id = await Admin.CreateUserIdAsync("valid@example.com");
        var longName = new string('x', 101);

        Assert.Equal(["email"], await (await Admin.PostUserAsync(new { email = "not-an-email", displayName = "X" })).ValidationErrorsAsync());
        Assert.Equal(["email"], await (await Admin.PostUserAsync(new { email = "a@b@example.com", displayName = "X" })).ValidationErrorsAsync());
        Assert.Equal(["email"], await (await Admin.PostUserAsync(new { displayName = "No Email" })).ValidationErrorsAsync());
        Assert.Equal(["displayName"], await (await Admin.PostUserAsync(new { email = "long@example.com", displayName = longName })).ValidationErrorsAsync());
        Assert.Equal(["displayName"], await (await Admin.PostUserAsync(new { email = "blank@example.com", displayName = "   " })).ValidationErrorsAsync());
        Assert.Equal(["password"], await (await Admin.PostUserAsync(new { email = "weak@example.com", displayName = "Weak", password = "short" })).ValidationErrorsAsync());
        Assert.Equal(["roles"], await (await Admin.PostUserAsync(new { email = "role@example.com", displayName = "R", roles = UserApi.Names("wizard") })).ValidationErrorsAsync());
        var both = await (await Admin.PostUserAsync(new { email = "nope", displayName = longName })).ValidationErrorsAsync();
        Assert.Equal(["displayName", "email"], both.Order());

        Assert.Equal(["email"], await (await Admin.PatchUserAsync(id, new { email = "nope" })).ValidationErrorsAsync());
        Assert.Equal(["displayName"], await (await Admin.PatchUserAsync(id, new { displayName = longName })).ValidationErrorsAsync());
        Assert.Equal(["status"], await (await Admin.PatchUserAsync(id, new { status = "deleted" })).ValidationErrorsAsync());

        // Nothing was written.
        Assert.Equal(["valid@example.com"], (await Admin.EmailsAsync()).Where(e => e != Tenant.AdminEmail));
        var stored = await Admin.GetUserAsync(id);
        Assert.Equal("valid@example.com", stored.Str("email"));
        Assert.Equal("active", stored.Str("status"));
    }

    [Fact]
    public async Task FieldsTheCallerMayNotSetAreIgnored()
    {
        var created = await (await Admin.PostUserAsync(new
        {
            email = "mallory@example.com",
            displayName = "Mallory",
            password = Accounts.Password,
            id = "01AAAAAAAAAAAAAAAAAAAAAAAA",
            tenantId = "some-other-tenant",
            passwordHash = "$argon2id$v=19$forged",
            emailVerified = true,
            mfaEnabled = true,
            status = "locked",
            createdAt = "2000-01-01T00:00:00Z",
        })).ReadJsonAsync(HttpStatusCode.Created);
        var id = created.Id();
        Assert.NotEqual("01AAAAAAAAAAAAAAAAAAAAAAAA", id);
        Assert.Equal("active", created.Str("status"));
        Assert.False(created.GetProperty("emailVerified").GetBoolean());
        Assert.False(created.GetProperty("mfaEnabled").GetBoolean());
        Assert.NotEqual(2000, created.GetProperty("createdAt").GetDateTimeOffset().Year);
        var before = (await App.StoredUserAsync(Tenant, id))!;

        var patched = await (await Admin.PatchUserAsync(id, new
        {
            displayName = "Mallory M.",
            tenantId = "some-other-tenant",
            partitionKey = "some-other-tenant",
            passwordHash = "$argon2id$v=19$forged",
            password = "a password set by patch",
            emailVerified = true,
            mfaEnabled = true,
            totpSecret = "JBSWY3DPEHPK3PXP",
            deletedAt = "2000-01-01T00:00:00Z",
            id = "01AAAAAAAAAAAAAAAAAAAAAAAA",
        })).ReadJsonAsync(HttpStatusCode.OK);

        Assert.Equal(id, patched.Id());
        Assert.Equal("Mallory M.", patched.Str("displayName"));
        Assert.False(patched.GetProperty("emailVerified").GetBoolean());
        Assert.False(patched.GetProperty("mfaEnabled").GetBoolean());
        Assert.Equal(JsonValueKind.Null, patched.GetProperty("deletedAt").ValueKind);
        var after = (await App.StoredUserAsync(Tenant, id))!;
        Assert.Equal(Tenant.Id, after.PartitionKey);
        Assert.Equal(before.GetString("PasswordHash"), after.GetString("PasswordHash"));
        Assert.Null(after.GetString("TotpSecret"));
        Assert.True(after.GetBoolean("MfaEnabled") is false);

        // The password given at creation still signs in; the one in the PATCH does not.
        using var anonymous = App.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.PostLoginAsync(Tenant.Slug, "mallory@example.com", Accounts.Password)).StatusCode);
        await (await anonymous.PostLoginAsync(Tenant.Slug, "mallory@example.com", "a password set by patch")).ReadProblemAsync(401, "invalid_credentials");
    }

    [Fact]
    public async Task ChangingRolesNeedsRolesManage()
    {
        Assert.Equal(HttpStatusCode.Created, (await Admin.PutRoleAsync("editor", "users.read", "users.write")).StatusCode);
        var editorId = await Admin.CreateUserIdAsync("editor@example.com", Accounts.Password, ["editor"]);
        var otherId = await Admin.CreateUserIdAsync("other@example.com");
        using var editor = await App.SignInAsAsync(Tenant, "editor@example.com");

        // users.write lets the editor change a user's profile ...
        Assert.Equal(HttpStatusCode.OK, (await editor.PatchUserAsync(otherId, new { displayName = "Edited" })).StatusCode);

        // ... but not anyone's roles, their own included, by either route.
        await (await editor.PatchUserAsync(otherId, new { roles = UserApi.Names("editor") })).ReadProblemAsync(403, "forbidden");
        await (await editor.PatchUserAsync(editorId, new { roles = UserApi.Names("editor", "admin") })).ReadProblemAsync(403, "forbidden");
        await (await editor.PatchUserAsync(editorId, new { displayName = "Sneaky", roles = UserApi.Names("admin") })).ReadProblemAsync(403, "forbidden");
        await (await editor.PutRolesAsync(otherId, "editor")).ReadProblemAsync(403, "forbidden");
        await (await editor.PutRoleAsync("editor", "users.read", "users.write", "roles.manage")).ReadProblemAsync(403, "forbidden");

        Assert.Equal(["editor"], (await Admin.GetUserAsync(editorId)).Roles());
        Assert.Equal("editor", (await Admin.GetUserAsync(editorId)).Str("displayName"));
        Assert.Equal(["user"], (await Admin.GetUserAsync(otherId)).Roles());
    }

    [Fact]
    public async Task UnknownOrMalformedUserIdsAreNotFound()
    {
        foreach (var id in new[] { "01ARZ3NDEKTSV4RRFFQ69G5FAV", "x", "..%2F..%2Fu%3Aadmin", new string('A', 65) })
        {
            await (await Admin.GetAsync($"/api/v1/users/{id}", Ct)).ReadProblemAsync(404, "not_found");
            await (await Admin.PatchUserAsync(id, new { displayName = "X" })).ReadProblemAsync(404, "not_found");
        }
    }
}
