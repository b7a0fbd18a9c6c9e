using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>POST /api/v1/users/bulk: up to 1000 operations, each succeeding or failing on its own.</summary>
public sealed class UserBulkTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private static object Create(string email, string? displayName = null, object? fields = null) =>
        new { op = "create", data = new { email, displayName = displayName ?? "Bulk " + email, fields } };

    private static async Task<IReadOnlyList<JsonElement>> ResultsAsync(HttpResponseMessage response)
    {
        var results = (await response.ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray().ToList();
        for (var i = 0; i < results.Count; i++)
        {
            Assert.Equal(i, results[i].GetProperty("index").GetInt32());
        }

        return results;
    }

    private static int Status(JsonElement result) => result.GetProperty("status").GetInt32();

    private static string Code(JsonElement result) => result.GetProperty("error").Str("code");

    [Fact]
    public async Task MoreThanAThousandOperationsOrNoneAreRefused()
    {
        var tooMany = await Admin.BulkAsync(Enumerable.Range(0, 1001).Select(i => Create($"many{i}@example.com")));
        var none = await Admin.BulkAsync([]);
        var missing = await Admin.PostAsync("/api/v1/users/bulk", System.Net.Http.Json.JsonContent.Create(new { }), Ct);

        Assert.Equal(["operations"], await tooMany.ValidationErrorsAsync());
        Assert.Equal(["operations"], await none.ValidationErrorsAsync());
        Assert.Equal(["operations"], await missing.ValidationErrorsAsync());
        Assert.Equal([Tenant.AdminEmail], await Admin.EmailsAsync());
    }

    [Fact]
    public async Task ThreeHundredCreatesWithAFewBadRowsSucceedPerRow()
    {
        await Admin.CreateUserAsync("taken@example.com");
        var operations = Enumerable.Range(0, 300).Select(i => Create($"row{i:D3}@example.com")).ToList();
        operations[17] = Create("not an email");
        operations[42] = Create("ROW005@Example.com");
        operations[99] = Create("taken@example.com");
        operations[150] = Create("long@example.com", new string('x', 101));
        operations[201] = Create("fields@example.com", fields: new { undeclared = 1 });
        operations[250] = new { op = "create", data = "not an object" };
        operations[299] = Create("TAKEN@example.com");

        var results = await ResultsAsync(await Admin.BulkAsync(operations));

        Assert.Equal(300, results.Count);
        var failed = new Dictionary<int, (int Status, string Code)>
        {
            [17] = (400, "validation_failed"),
            [42] = (409, "email_taken"),
            [99] = (409, "email_taken"),
            [150] = (400, "validation_failed"),
            [201] = (400, "validation_failed"),
            [250] = (400, "validation_failed"),
            [299] = (409, "email_taken"),
        };
        foreach (var (index, (status, code)) in failed)
        {
            Assert.Equal(status, Status(results[index]));
            Assert.Equal(code, Code(results[index]));
        }

        Assert.True(results[17].GetProperty("error").GetProperty("errors").TryGetProperty("email", out _));
        Assert.True(results[150].GetProperty("error").GetProperty("errors").TryGetProperty("displayName", out _));
        Assert.True(results[201].GetProperty("error").GetProperty("errors").TryGetProperty("fields.undeclared", out _));
        var succeeded = results.Where(r => !failed.ContainsKey(r.GetProperty("index").GetInt32())).ToList();
        Assert.Equal(293, succeeded.Count);
        Assert.All(succeeded, r => Assert.Equal(201, Status(r)));
        Assert.Equal(293, succeeded.Select(r => r.Id()).Distinct().Count());

        // The good rows exist - the first of two rows with one address among them - and nothing else was added.
        var emails = await Admin.EmailsAsync();
        Assert.Equal(1 + 1 + 293, emails.Count);
        Assert.Contains("row005@example.com", emails);
        Assert.DoesNotContain("ROW005@Example.com", emails);
        Assert.Equal("row123@example.com", (await Admin.GetUserAsync(results[123].Id())).Str("email"));
        Assert.Equal(["user"], (await Admin.GetUserAsync(results[123].Id())).Roles());
        var created = (await Admin.GetJsonAsync($"/api/v1/audit?action=user.created&pageSize=1000")).GetProperty("items").GetArrayLength();
        Assert.Equal(1 + 1 + 293, created);
    }

    [Fact]
    public async Task UpdateDeleteAndRestoreOperationsEachStandAlone()
    {
        var ann = await Admin.CreateUserIdAsync("ann@example.com");
        var ben = await Admin.CreateUserIdAsync("ben@example.com");
        var cat = await Admin.CreateUserIdAsync("cat@example.com");
        var dan = await Admin.CreateUserIdAsync("dan@example.com");

        var results = await ResultsAsync(await Admin.BulkAsync(
        [
            new { op = "update", id = ann, data = new { displayName = "Ann Updated", status = "locked" } },
            new { op = "update", id = ben, data = new { email = "ann@example.com" } },
            new { op = "delete", id = cat },
            new { op = "restore", id = cat },
            new { op = "delete", id = dan },
            new { op = "delete", id = "01ARZ3NDEKTSV4RRFFQ69G5FAV" },
            new { op = "explode", id = ann },
            new { op = "update", data = new { displayName = "No id" } },
            new { op = "update", id = ben, data = new { displayName = new string('x', 101) } },
            new { op = "update", id = Tenant.AdminId, data = new { roles = UserApi.Names("user") } },
            new { op = "update", id = ben, data = new { roles = UserApi.Names("manager") } },
            new { op = "update", id = ben, data = new { roles = "admin" } },
            null,
        ]));

        Assert.Equal([200, 409, 200, 200, 200, 404, 400, 400, 400, 409, 200, 400, 400], results.Select(Status));
        Assert.Equal("email_taken", Code(results[1]));
        Assert.Equal("not_found", Code(results[5]));
        Assert.Equal("invalid_operation", Code(results[6]));
        Assert.Equal("last_admin", Code(results[9]));
        Assert.Equal(ann, results[0].Id());

        var annRead = await Admin.GetUserAsync(ann);
        Assert.Equal("Ann Updated", annRead.Str("displayName"));
        Assert.Equal("locked", annRead.Str("status"));
        var benRead = await Admin.GetUserAsync(ben);
        Assert.Equal("ben@example.com", benRead.Str("email"));
        Assert.Equal(["manager"], benRead.Roles());
        Assert.Equal("active", (await Admin.GetUserAsync(cat)).Str("status"));
        Assert.Equal("deleted", (await Admin.GetUserAsync(dan)).Str("status"));
        Assert.Equal(["admin"], (await Admin.GetUserAsync(Tenant.AdminId)).Roles());
        Assert.DoesNotContain("dan@example.com", await Admin.EmailsAsync());

        var audit = (await Admin.GetJsonAsync($"/api/v1/audit?targetId={cat}&pageSize=100")).GetProperty("items").EnumerateArray().Select(e => e.Str("action")).ToList();
        Assert.Contains("user.deleted", audit);
        Assert.Contains("user.restored", audit);
    }

    [Fact]
    public async Task OperationsTheCallerMayNotRunFailOnlyThemselves()
    {
        var target = await Admin.CreateUserIdAsync("target@example.com");
        using var manager = await SignedInAsync("manager@example.com", "manager");

        var results = await ResultsAsync(await manager.BulkAsync(
        [
            Create("fresh@example.com"),
            new { op = "delete", id = target },
            new { op = "update", id = target, data = new { displayName = "Renamed by manager" } },
            new { op = "restore", id = target },
            new { op = "update", id = target, data = new { roles = UserApi.Names("manager") } },
            new { op = "create", data = new { email = "boss@example.com", displayName = "Boss", roles = UserApi.Names("admin") } },
        ]));

        Assert.Equal([201, 403, 200, 403, 403, 403], results.Select(Status));
        Assert.Equal("forbidden", Code(results[1]));
        Assert.Equal("forbidden", Code(results[3]));
        Assert.Equal("forbidden", Code(results[4]));
        Assert.Equal("permission_not_held", Code(results[5]));
        var read = await Admin.GetUserAsync(target);
        Assert.Equal("active", read.Str("status"));
        Assert.Equal("Renamed by manager", read.Str("displayName"));
        Assert.Equal(["user"], read.Roles());
        var emails = await Admin.EmailsAsync();
        Assert.Contains("fresh@example.com", emails);
        Assert.DoesNotContain("boss@example.com", emails);
    }

    [Fact]
    public async Task ACatastrophicPatternOnAThousandCreatesCostsLessThanASecondOfCpu()
    {
        // ^(a+)+$ against a run of a's ending in '!' backtracks 2^28 ways: on the backtracking engine each value took its
        // whole 50 ms timeout, so this request alone cost 50 s of CPU (and 100 such fields 80 minutes).
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "code", type = "string", pattern = "^(a+)+$" })).StatusCode);
        var evil = new string('a', 28) + "!";
        Assert.Equal(400, Status(Assert.Single(await ResultsAsync(await Admin.BulkAsync([Create("warm@example.com", fields: new { code = evil })])))));
        var operations = Enumerable.Range(0, 1000).Select(i => Create($"evil{i:D4}@example.com", fields: new { code = evil })).ToList();

        using var process = Process.GetCurrentProcess();
        var before = process.TotalProcessorTime;
        var response = await Admin.BulkAsync(operations);
        process.Refresh();
        var spent = process.TotalProcessorTime - before;
        TestContext.Current.TestOutputHelper?.WriteLine($"1000 creates against ^(a+)+$ cost {spent.TotalMilliseconds:F0} ms of CPU");

        var results = await ResultsAsync(response);
        Assert.Equal(1000, results.Count);
        Assert.All(results, r =>
        {
            Assert.Equal(400, Status(r));
            Assert.Equal("validation_failed", Code(r));
            Assert.Equal(["fields.code"], r.GetProperty("error").GetProperty("errors").EnumerateObject().Select(e => e.Name));
        });
        Assert.True(spent < TimeSpan.FromSeconds(1), $"the request cost {spent.TotalMilliseconds:F0} ms of CPU");
        Assert.Equal([Tenant.AdminEmail], await Admin.EmailsAsync());
    }
}
