using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>The tenant's custom fields of users: declared with PUT /schema/users, checked on every write.</summary>
public sealed class UserSchemaTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private static readonly object[] Fields =
    [
        new { name = "employeeId", type = "string", pattern = "^E[0-9]+$", maxLength = 5 },
        new { name = "level", type = "number", min = 1, max = 10 },
        new { name = "remote", type = "boolean" },
        new { name = "joined", type = "date" },
        new { name = "team", type = "enum", values = UserApi.Names("red", "blue") },
    ];

    private static readonly int[] NotAnObject = [1, 2];

    protected override bool SignsInAdmin => true;

    private Task<HttpResponseMessage> CreateWithFields(string email, object fields) =>
        Admin.PostUserAsync(new { email, displayName = email.Split('@')[0], fields });

    [Fact]
    public async Task SchemaIsStoredAndReadBack()
    {
        Assert.Empty((await Admin.GetJsonAsync("/api/v1/schema/users")).GetProperty("fields").EnumerateArray());

        var put = await (await Admin.PutSchemaAsync(Fields)).ReadJsonAsync(HttpStatusCode.OK);

        var read = await Admin.GetJsonAsync("/api/v1/schema/users");
        Assert.Equal(["employeeId", "level", "remote", "joined", "team"], read.GetProperty("fields").EnumerateArray().Select(f => f.Str("name")));
        var level = read.GetProperty("fields")[1];
        Assert.Equal("number", level.Str("type"));
        Assert.Equal(1, level.GetProperty("min").GetDouble());
        Assert.Equal(10, level.GetProperty("max").GetDouble());
        Assert.Equal("^E[0-9]+$", read.GetProperty("fields")[0].Str("pattern"));
        Assert.Equal(5, read.GetProperty("fields")[0].GetProperty("maxLength").GetInt32());
        Assert.Equal(["red", "blue"], read.GetProperty("fields")[4].GetProperty("values").Strings());
        Assert.Equal(put.GetProperty("fields").GetArrayLength(), read.GetProperty("fields").GetArrayLength());
    }

    [Fact]
    public async Task ValuesAreCheckedAgainstTheSchemaNamingTheField()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(Fields)).StatusCode);

        var created = await (await CreateWithFields("ok@example.com", new { employeeId = "E1234", level = 3, remote = true, joined = "2026-03-04", team = "red" }))
            .ReadJsonAsync(HttpStatusCode.Created);
        var fields = created.GetProperty("fields");
        Assert.Equal("E1234", fields.Str("employeeId"));
        Assert.Equal(3, fields.GetProperty("level").GetDouble());
        Assert.True(fields.GetProperty("remote").GetBoolean());
        Assert.Equal("2026-03-04", fields.Str("joined"));
        Assert.Equal("red", fields.Str("team"));

        var allBad = await CreateWithFields("bad@example.com", new { employeeId = "X1", level = 11, remote = "yes", joined = "not a date", team = "green" });
        Assert.Equal(["fields.employeeId", "fields.joined", "fields.level", "fields.remote", "fields.team"], (await allBad.ValidationErrorsAsync()).Order());
        Assert.Equal(["fields.employeeId"], await (await CreateWithFields("long@example.com", new { employeeId = "E12345" })).ValidationErrorsAsync());
        Assert.Equal(["fields.employeeId"], await (await CreateWithFields("num@example.com", new { employeeId = 1234 })).ValidationErrorsAsync());
        Assert.Equal(["fields.level"], await (await CreateWithFields("low@example.com", new { level = 0 })).ValidationErrorsAsync());
        Assert.Equal(["fields.level"], await (await CreateWithFields("text@example.com", new { level = "3" })).ValidationErrorsAsync());
        Assert.Equal(["fields.joined"], await (await CreateWithFields("date@example.com", new { joined = "2026-13-45" })).ValidationErrorsAsync());
        Assert.Equal(["fields.team"], await (await CreateWithFields("case@example.com", new { team = "RED" })).ValidationErrorsAsync());
        Assert.Equal(["fields.shoeSize"], await (await CreateWithFields("shoe@example.com", new { shoeSize = 44 })).ValidationErrorsAsync());
        Assert.Equal(["fields"], await (await CreateWithFields("array@example.com", NotAnObject)).ValidationErrorsAsync());

        // Updates are checked the same way, merge into what is stored, and null removes a value.
        var id = created.Id();
        Assert.Equal(["fields.level"], await (await Admin.PatchUserAsync(id, new { fields = new { level = 10.5 } })).ValidationErrorsAsync());
        Assert.Equal(["fields.unknown"], await (await Admin.PatchUserAsync(id, new { fields = new { unknown = "x" } })).ValidationErrorsAsync());
        var patched = await (await Admin.PatchUserAsync(id, new { fields = new { level = 10, team = (string?)null } })).ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal(10, patched.GetProperty("fields").GetProperty("level").GetDouble());
        Assert.Equal("E1234", patched.GetProperty("fields").Str("employeeId"));
        Assert.False(patched.GetProperty("fields").TryGetProperty("team", out _));

        // Nothing invalid was stored.
        Assert.Equal(["ok@example.com"], (await Admin.EmailsAsync()).Where(e => e != Tenant.AdminEmail));
    }

    [Fact]
    public async Task DateFieldsTakeOnlyIsoDates()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "joined", type = "date" })).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await CreateWithFields("day@example.com", new { joined = "2026-03-04" })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await CreateWithFields("time@example.com", new { joined = "2026-03-04T10:00:00Z" })).StatusCode);

        // What the filter language cannot read as a date must not be stored as one.
        Assert.Equal(["fields.joined"], await (await CreateWithFields("us@example.com", new { joined = "03/04/2026" })).ValidationErrorsAsync());
        Assert.Equal(["fields.joined"], await (await CreateWithFields("words@example.com", new { joined = "March 4, 2026" })).ValidationErrorsAsync());
    }

    [Fact]
    public async Task HostilePatternFailsTheValueInBoundedTime()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "code", type = "string", pattern = "^(a+)+$" })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await CreateWithFields("fine@example.com", new { code = "aaaa" })).StatusCode);

        var watch = Stopwatch.StartNew();
        var create = await CreateWithFields("evil@example.com", new { code = new string('a', 30) + "!" });
        var bulk = await Admin.BulkAsync(Enumerable.Range(0, 20).Select(i => new { op = "create", data = new { email = $"evil{i}@example.com", displayName = "Evil", fields = new { code = new string('a', 30) + "!" } } }));
        watch.Stop();

        Assert.Equal(["fields.code"], await create.ValidationErrorsAsync());
        var results = (await bulk.ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray().ToList();
        Assert.All(results, r => Assert.Equal(400, r.GetProperty("status").GetInt32()));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task InvalidSchemasAreRefusedNamingTheField()
    {
        var response = await Admin.PutSchemaAsync(
            new { name = "broken", type = "string", pattern = "([a-z" },
            new { name = "kind", type = "colour" },
            new { name = "1st", type = "string" },
            new { name = "dup", type = "string" },
            new { name = "DUP", type = "string" },
            new { name = "choice", type = "enum" },
            new { name = "range", type = "number", min = 10, max = 1 },
            new { name = "digits", type = "number", pattern = "^[0-9]+$" },
            new { name = "huge", type = "string", maxLength = 1_000_000 },
            new { name = "flag", type = "boolean", min = 1 });

        var errors = await response.ValidationErrorsAsync();
        Assert.Equal(
            ["fields[0].pattern", "fields[1].type", "fields[2].name", "fields[4].name", "fields[5].values", "fields[6].min", "fields[7].pattern", "fields[8].maxLength", "fields[9].min"],
            errors.Order(StringComparer.Ordinal));
        Assert.Equal(["fields"], await (await Admin.PutSchemaAsync(Enumerable.Range(0, 101).Select(i => (object)new { name = $"f{i}", type = "string" }).ToArray())).ValidationErrorsAsync());
        Assert.Empty((await Admin.GetJsonAsync("/api/v1/schema/users")).GetProperty("fields").EnumerateArray());
    }

    [Fact]
    public async Task PatternsThatNeedBacktrackingAreRefusedAtSaveNamingTheField()
    {
        // Only the backtracking engine runs the first three, and its time can explode; the last compiles to an automaton
        // so large that even linear time is seconds per value.
        var response = await Admin.PutSchemaAsync(
            new { name = "fine", type = "string", pattern = "^(a+)+$" },
            new { name = "twice", type = "string", pattern = @"^(\w+) \1$" },
            new { name = "ahead", type = "string", pattern = @"^(?=.*\d).+$" },
            new { name = "atomic", type = "string", pattern = "^(?>a+)b$" },
            new { name = "nested", type = "string", pattern = "^((((.{1,5}){1,5}){1,5}){1,5})!$" });

        var problem = await response.ReadProblemAsync(400, "validation_failed");
        var errors = problem.GetProperty("errors");
        Assert.Equal(["fields[1].pattern", "fields[2].pattern", "fields[3].pattern", "fields[4].pattern"], errors.EnumerateObject().Select(e => e.Name).Order(StringComparer.Ordinal));
        Assert.Contains("backreference", errors.GetProperty("fields[1].pattern")[0].GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Empty((await Admin.GetJsonAsync("/api/v1/schema/users")).GetProperty("fields").EnumerateArray());
    }

    [Fact]
    public async Task RequiredFieldsApplyToNewWritesAndRemovedFieldsStayReadable()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "dept", type = "string" })).StatusCode);
        var early = (await Admin.CreateUserAsync("early@example.com", fields: new { dept = "R&D" })).Id();

        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "dept", type = "string" }, new { name = "badge", type = "string", required = true })).StatusCode);

        Assert.Equal(["fields.badge"], await (await Admin.PostUserAsync(new { email = "late@example.com", displayName = "Late" })).ValidationErrorsAsync());
        Assert.Equal(HttpStatusCode.Created, (await CreateWithFields("late@example.com", new { badge = "B-7" })).StatusCode);
        // The existing user is not invalidated: a change that leaves fields alone still works.
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(early, new { displayName = "Early Bird" })).StatusCode);

        // dept leaves the schema: stored values stay readable but can no longer be filtered on or written.
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "badge", type = "string", required = true })).StatusCode);
        var read = await Admin.GetUserAsync(early);
        Assert.Equal("R&D", read.GetProperty("fields").Str("dept"));
        Assert.Equal("Early Bird", read.Str("displayName"));
        Assert.Equal(JsonValueKind.String, Assert.Single(await Admin.ListAsync("q=early")).GetProperty("fields").GetProperty("dept").ValueKind);
        await (await Admin.GetAsync("/api/v1/users?filter=" + Uri.EscapeDataString("fields.dept eq 'R&D'"), Ct)).ReadProblemAsync(400, "invalid_filter");
        Assert.Equal(["fields.dept"], await (await CreateWithFields("later@example.com", new { dept = "Ops", badge = "B-8" })).ValidationErrorsAsync());
    }
}
