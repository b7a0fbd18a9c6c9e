using System.Net;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;
using static Platform.Tests.Users.JobKinds;

namespace Platform.Tests.Users;

/// <summary>
/// The <c>users</c> import kind, row by row, as the job engine calls it for one chunk: each row passes or fails as the
/// same user sent over HTTP would, a chunk run twice changes nothing the second time, a dry run writes nothing.
/// </summary>
public sealed class UserImportTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const int Cap = 8;

    protected override bool SignsInAdmin => true;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Platform:Users:MaxUsersPerTenant"] = $"{Cap}" };

    private Task<Caller> CallerAsync() => App.CallerAsync(Tenant);

    private Task<IReadOnlyList<RowOutcome>> ImportAsync(Caller caller, string jobId, IReadOnlyList<TabularRow> rows, ImportMode mode = ImportMode.Create, bool dryRun = false) =>
        App.ImportAsync(UserImport.Kind, caller, jobId, mode, rows, dryRun);

    private static TabularRow User(long number, string email, string? displayName = null, params (string Header, string? Value)[] more) =>
        Row(number, [("email", email), ("displayName", displayName ?? email.Split('@')[0]), .. more]);

    private async Task PutSchemaAsync() =>
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(
            new { name = "department", type = "string", maxLength = 20 },
            new { name = "age", type = "number", min = 0, max = 150 },
            new { name = "vip", type = "boolean" },
            new { name = "start", type = "date" },
            new { name = "level", type = "enum", values = UserApi.Names("junior", "senior") })).StatusCode);

    private async Task<int> AuditCountAsync(string action) =>
        (await Admin.GetJsonAsync($"/api/v1/audit?action={action}&pageSize=1000")).GetProperty("items").GetArrayLength();

    private async Task<Dictionary<string, string>> StoredETagsAsync()
    {
        var etags = new Dictionary<string, string>();
        await foreach (var row in App.Storage.TenantTable(UserDirectory.TableName).For(new TenantId(Tenant.Id)).QueryAsync<TableEntity>(UserEntity.KeyPrefix, cancellationToken: Ct))
        {
            etags[row.RowKey] = row.ETag.ToString();
        }

        return etags;
    }

    private static void AllSucceeded(IReadOnlyList<RowOutcome> outcomes) =>
        Assert.All(outcomes, o => Assert.True(o.Succeeded, $"row {o.Row}: {o.Column} {o.Value} {o.Message}"));

    [Fact]
    public async Task CreateModeCreatesEachRowAsThePostRouteWould()
    {
        await PutSchemaAsync();
        var caller = await CallerAsync();

        var outcomes = await ImportAsync(caller, Ids.New(), [
            User(2, "ada@example.com", "Ada Lovelace", ("password", Accounts.Password), ("roles", "user; manager"), ("fields.department", "Research"),
                ("fields.AGE", " 36 "), ("fields.vip", "TRUE"), ("fields.start", "2026-03-04"), ("fields.level", "senior")),
            User(3, "bob@example.com", "Bob", ("status", "locked"), ("roles", null), ("fields", """{"department":"Sales","age":41}"""), ("fields.age", "42")),
            User(4, "cy@example.com", "Cy", ("id", "ignored"), ("createdAt", "2020-01-01T00:00:00Z"), ("unused", null)),
        ]);

        AllSucceeded(outcomes);
        Assert.Equal([2L, 3L, 4L], outcomes.Select(o => o.Row));
        var users = (await Admin.ListAsync()).ToDictionary(u => u.Str("email"));
        var ada = users["ada@example.com"];
        Assert.Equal("Ada Lovelace", ada.Str("displayName"));
        Assert.Equal(["user", "manager"], ada.Roles());
        Assert.Equal("active", ada.Str("status"));
        var fields = ada.GetProperty("fields");
        Assert.Equal("Research", fields.Str("department"));
        Assert.Equal(36, fields.GetProperty("age").GetDouble());
        Assert.True(fields.GetProperty("vip").GetBoolean());
        Assert.Equal("2026-03-04", fields.Str("start"));
        Assert.Equal("senior", fields.Str("level"));
        using var signedIn = await App.SignInAsAsync(Tenant, "ada@example.com");

        var bob = users["bob@example.com"];
        Assert.Equal("locked", bob.Str("status"));
        Assert.Equal(["user"], bob.Roles());
        Assert.Equal("Sales", bob.GetProperty("fields").Str("department"));
        Assert.Equal(42, bob.GetProperty("fields").GetProperty("age").GetDouble());
        Assert.NotEqual("ignored", users["cy@example.com"].Id());

        // Created without a password, as POST /users allows: nobody can sign in as Cy until a password is set.
        Assert.Null((await App.StoredUserAsync(Tenant, users["cy@example.com"].Id()))!.GetString("PasswordHash"));
        Assert.Equal(3, await AuditCountAsync("user.created") - 1);
    }

    [Fact]
    public async Task EachInvalidRowNamesItsColumnValueAndTheMessageTheHttpRouteGives()
    {
        await PutSchemaAsync();
        var caller = await CallerAsync();

        // What the HTTP API answers for the same mistakes.
        async Task<string> PostMessageAsync(object body, string field) =>
            (await (await Admin.PostUserAsync(body)).ReadProblemAsync(400, "validation_failed")).GetProperty("errors").GetProperty(field)[0].GetString()!;
        var badEmail = await PostMessageAsync(new { email = "not an email", displayName = "x" }, "email");
        var longName = await PostMessageAsync(new { email = "a@example.com", displayName = new string('x', 101) }, "displayName");
        var notANumber = await PostMessageAsync(new { email = "a@example.com", displayName = "x", fields = new { age = "forty" } }, "fields.age");
        var tooOld = await PostMessageAsync(new { email = "a@example.com", displayName = "x", fields = new { age = 200 } }, "fields.age");
        var undeclared = await PostMessageAsync(new { email = "a@example.com", displayName = "x", fields = new { shoe = "42" } }, "fields.shoe");
        var notBool = await PostMessageAsync(new { email = "a@example.com", displayName = "x", fields = new { vip = "maybe" } }, "fields.vip");
        var badDate = await PostMessageAsync(new { email = "a@example.com", displayName = "x", fields = new { start = "04/03/2026" } }, "fields.start");
        var badEnum = await PostMessageAsync(new { email = "a@example.com", displayName = "x", fields = new { level = "lead" } }, "fields.level");
        var unknownRole = await PostMessageAsync(new { email = "a@example.com", displayName = "x", roles = UserApi.Names("wizard") }, "roles");
        var weakPassword = await PostMessageAsync(new { email = "a@example.com", displayName = "x", password = "qz8Lw" }, "password");
        var someone = await Admin.CreateUserIdAsync("someone@example.com");
        var badStatus = (await (await Admin.PatchUserAsync(someone, new { status = "deleted" })).ReadProblemAsync(400, "validation_failed"))
            .GetProperty("errors").GetProperty("status")[0].GetString()!;

        var outcomes = await ImportAsync(caller, Ids.New(), [
            User(2, "not an email"),
            User(3, "b@example.com", new string('x', 101)),
            User(4, "c@example.com", more: ("Fields.Age", "forty")),
            User(5, "d@example.com", more: ("fields.age", "200")),
            User(6, "e@example.com", more: ("fields.shoe", "42")),
            User(7, "f@example.com", more: ("fields.vip", "maybe")),
            User(8, "g@example.com", more: ("fields.start", "04/03/2026")),
            User(9, "h@example.com", more: ("fields.level", "lead")),
            User(10, "i@example.com", more: ("roles", "wizard")),
            User(11, "j@example.com", more: ("password", "qz8Lw")),
            User(12, "k@example.com", more: ("status", "deleted")),
            User(13, "l@example.com", more: ("fields", "[1, 2]")),
            User(14, "m@example.com", more: ("emial", "typo@example.com")),
            Row(15, ("email", "n@example.com")),
        ]);

        Assert.All(outcomes, o => Assert.False(o.Succeeded));
        Assert.Equal(
        [
            ("email", "not an email", badEmail),
            ("displayName", new string('x', 101), longName),
            ("Fields.Age", "forty", notANumber),
            ("fields.age", "200", tooOld),
            ("fields.shoe", "42", undeclared),
            ("fields.vip", "maybe", notBool),
            ("fields.start", "04/03/2026", badDate),
            ("fields.level", "lead", badEnum),
            ("roles", "wizard", unknownRole),
            // The password is named, never quoted: the error report is a stored file.
            ("password", null, weakPassword),
            ("status", "deleted", badStatus),
            ("fields", "[1, 2]", "must be a JSON object"),
            ("emial", "typo@example.com", "is not a column of the users import (email, displayName, password, roles, status, fields, fields.<name>)"),
            ("displayName", null, "is required"),
        ], outcomes.Select(o => (o.Column!, o.Value, o.Message!)));
        Assert.Equal([Tenant.AdminEmail, "someone@example.com"], (await Admin.EmailsAsync()).Order());
    }

    [Fact]
    public async Task AnExistingEmailOrOneRepeatedInTheChunkFailsOnlyItsRow()
    {
        var caller = await CallerAsync();
        await Admin.CreateUserAsync("taken@example.com");

        var outcomes = await ImportAsync(caller, Ids.New(), [
            User(2, "new@example.com"),
            User(3, "TAKEN@example.com"),
            User(4, "twice@example.com", "First"),
            User(5, " Twice@Example.com ", "Second"),
            User(6, "other@example.com"),
        ]);

        Assert.Equal([true, false, true, false, true], outcomes.Select(o => o.Succeeded));
        Assert.Equal(("email", "TAKEN@example.com", "Another user of this tenant has the email TAKEN@example.com."), (outcomes[1].Column, outcomes[1].Value, outcomes[1].Message));
        Assert.Equal(("email", "is in row 4 of the file too; a file names each user once"), (outcomes[3].Column, outcomes[3].Message));
        var users = (await Admin.ListAsync()).ToDictionary(u => u.Str("email"));
        Assert.Equal(new[] { "new@example.com", "other@example.com", "taken@example.com", "twice@example.com", Tenant.AdminEmail }.Order(), users.Keys.Order());
        Assert.Equal("First", users["twice@example.com"].Str("displayName"));
    }

    [Fact]
    public async Task AChunkRunAgainReportsTheSameOutcomesAndCreatesAndRecordsNothingTwice()
    {
        var caller = await CallerAsync();
        await Admin.CreateUserAsync("taken@example.com");
        var jobId = Ids.New();
        var rows = new List<TabularRow>
        {
            User(2, "one@example.com"),
            User(3, "taken@example.com"),
            User(4, "two@example.com", more: ("password", Accounts.Password)),
            User(5, "bad email"),
            User(6, "two@example.com"),
            User(7, "three@example.com", more: ("status", "locked")),
        };

        // A crash after the first rows were written: the engine runs the whole chunk again.
        var partial = await ImportAsync(caller, jobId, rows[..1]);
        var etags = await StoredETagsAsync();
        var first = await ImportAsync(caller, jobId, rows);
        var again = await ImportAsync(caller, jobId, rows);

        Assert.Equal(first, again);
        Assert.Equal([true, false, true, false, false, true], first.Select(o => o.Succeeded));
        Assert.Equal(partial[0], first[0]);
        var emails = await Admin.EmailsAsync();
        Assert.Equal(new[] { "one@example.com", "taken@example.com", "three@example.com", "two@example.com", Tenant.AdminEmail }.Order(), emails.Order());
        Assert.Equal(1 + 1 + 3, await AuditCountAsync("user.created"));
        var after = await StoredETagsAsync();
        Assert.All(etags, e => Assert.Equal(e.Value, after[e.Key]));

        // Another job is another import: the same rows are now existing users.
        var otherJob = await ImportAsync(caller, Ids.New(), rows);
        Assert.Equal([false, false, false, false, false, false], otherJob.Select(o => o.Succeeded));
        Assert.Equal(5, (await Admin.EmailsAsync()).Count);
    }

    [Fact]
    public async Task UpsertUpdatesWhatDiffersCreatesTheRestAndAnIdenticalFileWritesNothing()
    {
        await PutSchemaAsync();
        var caller = await CallerAsync();
        var existing = await Admin.CreateUserIdAsync("old@example.com");
        var rows = new List<TabularRow>
        {
            User(2, "OLD@example.com", "Old Renamed", ("fields.department", "Ops"), ("roles", "user;manager"), ("password", "ignored for existing users")),
            User(3, "fresh@example.com", "Fresh", ("fields.age", "30"), ("fields.vip", "false")),
        };

        var first = await ImportAsync(caller, Ids.New(), rows, ImportMode.Upsert);
        AllSucceeded(first);
        var old = await Admin.GetUserAsync(existing);
        Assert.Equal("Old Renamed", old.Str("displayName"));
        Assert.Equal("old@example.com", old.Str("email"));
        Assert.Equal("Ops", old.GetProperty("fields").Str("department"));
        Assert.Equal(["user", "manager"], old.Roles());
        Assert.Null((await App.StoredUserAsync(Tenant, existing))!.GetString("PasswordHash"));
        Assert.Contains("fresh@example.com", await Admin.EmailsAsync());
        Assert.Equal(1, await AuditCountAsync("user.updated"));

        // The same file again (another job): every row succeeds, nothing is written, nothing recorded.
        var etags = await StoredETagsAsync();
        var again = await ImportAsync(caller, Ids.New(), rows, ImportMode.Upsert);
        AllSucceeded(again);
        Assert.Equal(etags, await StoredETagsAsync());
        Assert.Equal(1, await AuditCountAsync("user.updated"));
        Assert.Equal(1 + 2, await AuditCountAsync("user.created"));

        // One changed cell changes one user, and empty cells leave values as they are.
        var changed = await ImportAsync(caller, Ids.New(), [User(3, "fresh@example.com", "Fresh", ("fields.age", "31"), ("fields.vip", null), ("roles", null))], ImportMode.Upsert);
        AllSucceeded(changed);
        var fresh = (await Admin.ListAsync()).Single(u => u.Str("email") == "fresh@example.com");
        Assert.Equal(31, fresh.GetProperty("fields").GetProperty("age").GetDouble());
        Assert.False(fresh.GetProperty("fields").GetProperty("vip").GetBoolean());
        var afterChange = await StoredETagsAsync();
        Assert.Equal(etags[UserEntity.KeyFor(existing)], afterChange[UserEntity.KeyFor(existing)]);
        Assert.NotEqual(etags[UserEntity.KeyFor(fresh.Id())], afterChange[UserEntity.KeyFor(fresh.Id())]);
        Assert.Equal(2, await AuditCountAsync("user.updated"));
    }

    [Fact]
    public async Task UpsertRowsFailAsThePatchRouteWouldAndADeletedUsersEmailIsTaken()
    {
        var caller = await CallerAsync();
        var gone = await Admin.CreateUserIdAsync("gone@example.com");
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{UserApi.Users}/{gone}", Ct)).StatusCode);
        var patchMessage = (await (await Admin.PatchUserAsync(Tenant.AdminId, new { status = "locked" })).ReadProblemAsync(409, "last_admin")).GetProperty("detail").GetString();

        var outcomes = await ImportAsync(caller, Ids.New(), [
            User(2, "gone@example.com"),
            User(3, Tenant.AdminEmail, "Admin", ("status", "locked")),
        ], ImportMode.Upsert);

        Assert.Equal(("email", "gone@example.com", "Another user of this tenant has the email gone@example.com."), (outcomes[0].Column, outcomes[0].Value, outcomes[0].Message));
        Assert.Equal(("status", "locked", patchMessage), (outcomes[1].Column, outcomes[1].Value, outcomes[1].Message));
        Assert.Equal("active", (await Admin.GetUserAsync(Tenant.AdminId)).Str("status"));
    }

    [Fact]
    public async Task ADryRunChecksEveryRowAndWritesNothing()
    {
        var caller = await CallerAsync();
        var existing = await Admin.CreateUserIdAsync("old@example.com");
        var etags = await StoredETagsAsync();
        var created = await AuditCountAsync("user.created");
        var rows = new List<TabularRow>
        {
            User(2, "new@example.com", more: ("password", Accounts.Password)),
            User(3, "old@example.com", "Renamed"),
            User(4, "bad email"),
            User(5, Tenant.AdminEmail, "Admin", ("status", "locked")),
        };

        var create = await ImportAsync(caller, Ids.New(), rows, dryRun: true);
        var upsert = await ImportAsync(caller, Ids.New(), rows, ImportMode.Upsert, dryRun: true);

        Assert.Equal([true, false, false, false], create.Select(o => o.Succeeded));
        Assert.Equal("Another user of this tenant has the email old@example.com.", create[1].Message);
        Assert.Equal([true, true, false, false], upsert.Select(o => o.Succeeded));
        Assert.Equal("This is the tenant's last active admin; make someone else admin first.", upsert[3].Message);
        Assert.Equal(etags, await StoredETagsAsync());
        Assert.Equal("old", (await Admin.GetUserAsync(existing)).Str("displayName"));
        Assert.Equal(created, await AuditCountAsync("user.created"));
        Assert.Equal(0, await AuditCountAsync("user.updated"));
    }

    [Fact]
    public async Task CreatesBeyondTheUserLimitFailOnTheirOwnAlsoWhenTheChunkRunsAgain()
    {
        var caller = await CallerAsync();
        var jobId = Ids.New();
        var rows = Enumerable.Range(0, Cap + 2).Select(i => User(i + 2, $"user{i}@example.com")).ToList();
        await Admin.CreateUserAsync("probe@example.com");

        var dryRun = await ImportAsync(caller, Ids.New(), rows, dryRun: true);
        var first = await ImportAsync(caller, jobId, rows);
        var again = await ImportAsync(caller, jobId, rows);

        // The admin and the probe hold two of the slots.
        var expected = Enumerable.Range(0, Cap + 2).Select(i => i < Cap - 2).ToList();
        Assert.Equal(expected, dryRun.Select(o => o.Succeeded));
        Assert.Equal(expected, first.Select(o => o.Succeeded));
        Assert.Equal(first, again);
        Assert.Equal($"This tenant has reached its limit of {Cap} users; delete users it no longer needs.", first[^1].Message);
        Assert.Null(first[^1].Column);
        Assert.Equal(Cap, (await Admin.EmailsAsync()).Count);
    }

    [Fact]
    public async Task ARowWithAnotherTenantsEmailCreatesAUserOfTheCallersTenantOnly()
    {
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        var theirs = await otherAdmin.CreateUserIdAsync("shared@example.com");
        var theirRow = await App.StoredUserAsync(other, theirs);
        var caller = await CallerAsync();

        AllSucceeded(await ImportAsync(caller, Ids.New(), [User(2, "shared@example.com", "Ours"), User(3, other.AdminEmail, "Not their admin", ("status", "locked"))], ImportMode.Upsert));

        var ours = (await Admin.ListAsync()).Single(u => u.Str("email") == "shared@example.com");
        Assert.NotEqual(theirs, ours.Id());
        Assert.Equal("Ours", ours.Str("displayName"));
        Assert.Equal("locked", (await Admin.ListAsync()).Single(u => u.Str("email") == other.AdminEmail).Str("status"));
        Assert.Equal(theirRow!.ETag, (await App.StoredUserAsync(other, theirs))!.ETag);
        Assert.Equal("active", (await otherAdmin.GetUserAsync(other.AdminId)).Str("status"));
        Assert.Equal(new[] { "shared@example.com", other.AdminEmail }.Order(), (await otherAdmin.EmailsAsync()).Order());
    }

    [Fact]
    public async Task ACallerWithoutUsersWriteImportsNothing()
    {
        var readerId = await Admin.CreateUserIdAsync("reader@example.com", Accounts.Password, ["user"]);
        var reader = await App.CallerAsync(Tenant, "reader@example.com", readerId);

        var outcomes = await ImportAsync(reader, Ids.New(), [User(2, "new@example.com")]);

        Assert.Equal((false, "Importing users needs the users.write permission."), (outcomes[0].Succeeded, outcomes[0].Message));
        Assert.DoesNotContain("new@example.com", await Admin.EmailsAsync());
    }

    [Fact]
    public void TheTemplateColumnsStartWithTheRequiredEmail()
    {
        var columns = App.ImportKindColumns(UserImport.Kind);
        Assert.Equal(["email", "displayName", "password", "roles", "status", "fields"], columns.Select(c => c.Name));
        Assert.True(columns[0].Required);
        Assert.Equal("", columns.Single(c => c.Name == "password").Example);
        Assert.True(JsonDocument.Parse(columns.Single(c => c.Name == "fields").Example).RootElement.ValueKind == JsonValueKind.Object);
    }
}
