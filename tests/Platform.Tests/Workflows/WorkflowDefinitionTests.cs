using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Storage;
using Platform.Functions.Workflows;
using Platform.Tests.Infrastructure;
using static Platform.Tests.Workflows.WorkflowApi;

namespace Platform.Tests.Workflows;

/// <summary>Defining workflows over HTTP: create, read, list, replace with ETags, delete; bad definitions named by step; tenancy and permissions.</summary>
public sealed class WorkflowDefinitionTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Workflows:MaxWorkflowsPerTenant"] = "3",
        ["Platform:Workflows:MaxRunsInFlightPerTenant"] = "1",
    };

    private static readonly object Approval = new { id = "approve", kind = "approval", timeout = "PT24H" };
    private static readonly object Hook = new { id = "tell", kind = "webhook", @event = "inventory.reorder", data = new { sku = "BOLT" } };

    [Fact]
    public async Task A_workflow_is_created_read_listed_replaced_and_deleted()
    {
        var created = await Admin.PutAsJsonAsync($"{WorkflowsPath}/restock", new { name = "Restock", steps = new[] { Approval, Hook } }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal($"{WorkflowsPath}/restock", created.Headers.Location?.OriginalString);
        var etag = created.Headers.ETag!.Tag;
        var body = await created.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("restock", body.GetProperty("id").GetString());
        Assert.Equal(2, body.GetProperty("steps").GetArrayLength());
        Assert.Equal("PT24H", body.GetProperty("steps")[0].GetProperty("timeout").GetString());

        var read = await Admin.GetAsync($"{WorkflowsPath}/restock", Ct);
        Assert.Equal(etag, read.Headers.ETag!.Tag);
        var shown = await read.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("Restock", shown.GetProperty("name").GetString());
        Assert.Equal("BOLT", shown.GetProperty("steps")[1].GetProperty("data").GetProperty("sku").GetString());

        // A replace against an old tag is refused; against the current one it succeeds.
        using (var stale = new HttpRequestMessage(HttpMethod.Put, $"{WorkflowsPath}/restock") { Content = JsonContent.Create(new { name = "Restock 2", steps = new[] { Hook } }) })
        {
            stale.Headers.TryAddWithoutValidation("If-Match", "\"000000000000000000000000\"");
            await (await Admin.SendAsync(stale, Ct)).ReadProblemAsync(412, "precondition_failed");
        }

        using (var replace = new HttpRequestMessage(HttpMethod.Put, $"{WorkflowsPath}/restock") { Content = JsonContent.Create(new { name = "Restock 2", steps = new[] { Hook } }) })
        {
            replace.Headers.TryAddWithoutValidation("If-Match", etag);
            var replaced = await Admin.SendAsync(replace, Ct);
            Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);
            Assert.NotEqual(etag, replaced.Headers.ETag!.Tag);
        }

        await Admin.DefineAsync("another", Hook);
        var list = await Admin.GetFromJsonAsync<JsonElement>($"{WorkflowsPath}?pageSize=1", Ct);
        Assert.Equal("another", Assert.Single(list.GetProperty("items").EnumerateArray()).GetProperty("id").GetString());
        var token = list.GetProperty("continuationToken").GetString()!;
        var next = await Admin.GetFromJsonAsync<JsonElement>($"{WorkflowsPath}?pageSize=1&continuationToken={Uri.EscapeDataString(token)}", Ct);
        var second = Assert.Single(next.GetProperty("items").EnumerateArray());
        Assert.Equal("Restock 2", second.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.Null, next.GetProperty("continuationToken").ValueKind);

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{WorkflowsPath}/restock", Ct)).StatusCode);
        await (await Admin.GetAsync($"{WorkflowsPath}/restock", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.DeleteAsync($"{WorkflowsPath}/restock", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.PostAsJsonAsync($"{WorkflowsPath}/restock/runs", new { }, Ct)).ReadProblemAsync(404, "not_found");
    }

    public static TheoryData<string, string> BadDefinitions => new()
    {
        { """[{ "id": "a", "kind": "teleport" }]""", "steps[0].kind" },
        { """[{ "id": "a", "kind": "wait", "duration": "PT1S" }, { "id": "a", "kind": "wait", "duration": "PT1S" }]""", "steps[1].id" },
        { """[{ "id": "a", "kind": "approval", "timeout": "PT1S", "onTimeout": "b" }, { "id": "b", "kind": "approval", "timeout": "PT1S", "onTimeout": "a" }]""", "steps[1].onTimeout" },
        { """[{ "id": "a", "kind": "approval", "timeout": "PT1S", "onTimeout": "a" }]""", "steps[0].onTimeout" },
        { """[{ "id": "a", "kind": "approval", "timeout": "PT1S", "onTimeout": "nowhere" }]""", "steps[0].onTimeout" },
        { """[{ "id": "a", "kind": "approval", "timeout": "tomorrow" }]""", "steps[0].timeout" },
        { """[{ "id": "a", "kind": "approval" }]""", "steps[0].timeout" },
        { """[{ "id": "a", "kind": "wait", "duration": "-PT1H" }]""", "steps[0].duration" },
        { """[{ "id": "a", "kind": "wait", "duration": "P400D" }]""", "steps[0].duration" },
        { """[{ "id": "a", "kind": "wait", "duration": "PT1S", "timout": "PT1S" }]""", "steps[0].timout" },
        { """[{ "id": "a", "kind": "job", "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } }, { "id": "b", "kind": "condition", "filter": "status eq" }]""", "steps[1].filter" },
        { """[{ "id": "a", "kind": "job", "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } }, { "id": "b", "kind": "condition", "filter": "status gt 3" }]""", "steps[1].filter" },
        { """[{ "id": "a", "kind": "approval", "timeout": "PT1S" }, { "id": "b", "kind": "condition", "filter": "lowStockCount gt 0" }]""", "steps[1].filter" },
        { """[{ "id": "b", "kind": "condition", "filter": "approved eq true" }]""", "steps[0].kind" },
        { """[{ "id": "a", "kind": "job", "job": { "type": "launch-rocket" } }]""", "steps[0].job.type" },
        { """[{ "id": "a", "kind": "job", "job": { "type": "export", "parameters": { "kind": "secrets", "format": "csv" } } }]""", "steps[0].job.parameters.kind" },
        { """[{ "id": "a", "kind": "job" }]""", "steps[0].job" },
        { """[{ "id": "a", "kind": "webhook" }]""", "steps[0].event" },
        { """[{ "id": "a", "kind": "webhook", "event": "user.created" }]""", "steps[0].event" },
        { """[{ "id": "a", "kind": "webhook", "event": "auth.login.succeeded" }]""", "steps[0].event" },
        { """[{ "id": "a", "kind": "webhook", "event": "Not An Event" }]""", "steps[0].event" },
        { """[{ "id": "a", "kind": "webhook", "event": "inventory.reorder", "data": { "x": "${steps.later.output}" } }, { "id": "later", "kind": "wait", "duration": "PT1S" }]""", "steps[0].data" },
        { """[{ "id": "a", "kind": "mail", "template": "workflow", "to": "everyone", "subject": "Hi" }]""", "steps[0].to" },
        { """[{ "id": "a", "kind": "mail", "template": "newsletter", "to": "role:manager", "subject": "Hi" }]""", "steps[0].template" },
        { """[{ "id": "p", "kind": "parallel", "steps": [{ "id": "a", "kind": "wait", "duration": "PT1S" }] }]""", "steps[0].steps" },
        { """[{ "id": "p", "kind": "parallel", "steps": [{ "id": "a", "kind": "wait", "duration": "PT1S" }, { "id": "q", "kind": "parallel", "steps": [] }] }]""", "steps[0].steps[1].kind" },
        { """[{ "id": "p", "kind": "parallel", "steps": [{ "id": "a", "kind": "wait", "duration": "PT1S" }, { "id": "b", "kind": "approval", "timeout": "PT1S", "onTimeout": "z" }] }, { "id": "z", "kind": "wait", "duration": "PT1S" }]""", "steps[0].steps[1].onTimeout" },
        { """[{ "id": "a", "kind": "approval", "timeout": "PT1S", "approvers": "managers" }]""", "steps[0].approvers" },
        { """[{ "id": "cancel", "kind": "approval", "timeout": "PT1S" }]""", "steps[0].id" },
        { """[{ "kind": "wait", "duration": "PT1S" }]""", "steps[0].id" },
        { """[]""", "steps" },
        { """{}""", "steps" },
        { """[42]""", "steps[0]" },
    };

    [Theory]
    [MemberData(nameof(BadDefinitions))]
    public async Task A_bad_definition_is_refused_naming_the_step(string steps, string field)
    {
        var body = $$"""{ "name": "Bad", "steps": {{steps}} }""";
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        var problem = await (await Admin.PutAsync($"{WorkflowsPath}/bad", content, Ct)).ReadProblemAsync(400, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"expected an error on {field}: {problem}");
        await (await Admin.GetAsync($"{WorkflowsPath}/bad", Ct)).ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task Starting_a_run_twice_with_one_idempotency_key_starts_one_run()
    {
        await Admin.DefineAsync("once", Approval);
        async Task<HttpResponseMessage> StartAsync(object input)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"{WorkflowsPath}/once/runs") { Content = JsonContent.Create(new { input }) };
            request.Headers.Add("Idempotency-Key", "start-once-1");
            return await Admin.SendAsync(request, Ct);
        }

        var first = await StartAsync(new { week = 1 });
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        var again = await StartAsync(new { week = 1 });
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        var runId = (await first.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("runId").GetString();
        Assert.Equal(runId, (await again.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("runId").GetString());
        await (await StartAsync(new { week = 2 })).ReadProblemAsync(422, "idempotency_key_reused");
        var runs = await Admin.GetFromJsonAsync<JsonElement>($"{WorkflowsPath}/once/runs", Ct);
        var run = Assert.Single(runs.GetProperty("items").EnumerateArray());
        Assert.Equal(1, run.GetProperty("input").GetProperty("week").GetInt32());
        Assert.Equal("pending", run.GetProperty("steps")[0].GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_tenant_has_at_most_its_cap_of_workflows_and_of_runs_in_flight()
    {
        await Admin.DefineAsync("one", Approval);
        await Admin.DefineAsync("two", Hook);
        await Admin.DefineAsync("three", Hook);
        await (await Admin.PutAsJsonAsync($"{WorkflowsPath}/four", new { name = "Four", steps = new[] { Hook } }, Ct)).ReadProblemAsync(409, "workflow_limit_reached");
        await Admin.DefineAsync("three", Approval);

        var runId = await Admin.StartRunAsync("one");
        await (await Admin.PostAsJsonAsync($"{WorkflowsPath}/two/runs", new { }, Ct)).ReadProblemAsync(429, "workflow_runs_limit_reached");
        (await Admin.PostAsync($"{WorkflowsPath}/one/runs/{runId}/cancel", null, Ct)).EnsureStatus(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task A_schedule_starts_runs_through_the_run_starter_once_per_derived_run_id()
    {
        await Admin.DefineAsync("scheduled", Approval);
        var starter = App.Services.GetRequiredService<IWorkflowRunStarter>();
        var caller = new Caller(new TenantId(Tenant.Id), Tenant.AdminId, SessionGuard.SessionlessPrefix + "schedule-test");
        Assert.Null(await starter.CheckAsync(caller, "scheduled", Ct));
        Assert.Equal(404, (await starter.CheckAsync(caller, "missing", Ct))?.Status);

        var occurrence = Ids.Derived(DateTimeOffset.UtcNow, "schedule-1\n2026-11-28T14:00Z");
        var input = JsonSerializer.SerializeToElement(new { week = 48 });
        Assert.Equal(occurrence, (await starter.StartAsync(caller, "scheduled", input, occurrence, Ct)).Value);
        Assert.Equal(occurrence, (await starter.StartAsync(caller, "scheduled", input, occurrence, Ct)).Value);
        Assert.Equal(404, (await starter.StartAsync(caller, "missing", input, occurrence, Ct)).Error?.Status);

        var runs = await Admin.GetFromJsonAsync<JsonElement>($"{WorkflowsPath}/scheduled/runs", Ct);
        var run = Assert.Single(runs.GetProperty("items").EnumerateArray());
        Assert.Equal(occurrence, run.GetProperty("runId").GetString());
        Assert.Equal(48, run.GetProperty("input").GetProperty("week").GetInt32());
        (await Admin.PostAsync($"{WorkflowsPath}/scheduled/runs/{occurrence}/cancel", null, Ct)).EnsureStatus(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task Limits_of_a_definition_are_enforced()
    {
        var many = Enumerable.Range(0, 26).Select(i => new { id = $"s{i}", kind = "wait", duration = "PT1S" }).ToArray();
        var tooMany = await (await Admin.PutAsJsonAsync($"{WorkflowsPath}/big", new { name = "Big", steps = many }, Ct)).ReadProblemAsync(400, "validation_failed");
        Assert.True(tooMany.GetProperty("errors").TryGetProperty("steps", out _));
        var huge = new { id = "a", kind = "webhook", @event = "inventory.reorder", data = new { text = new string('x', 40_000) } };
        await (await Admin.PutAsJsonAsync($"{WorkflowsPath}/big", new { name = "Big", steps = new[] { huge } }, Ct)).ReadProblemAsync(400, "validation_failed");
        await (await Admin.PutAsJsonAsync($"{WorkflowsPath}/bad:id", new { name = "Bad", steps = new[] { Hook } }, Ct)).ReadProblemAsync(400, "validation_failed");
        await (await Admin.PutAsJsonAsync($"{WorkflowsPath}/ok", new { name = "", steps = new[] { Hook } }, Ct)).ReadProblemAsync(400, "validation_failed");
    }

    [Fact]
    public async Task Another_tenants_workflows_and_runs_answer_404_on_every_route()
    {
        await Admin.DefineAsync("mine", Approval, Hook);
        var runId = await Admin.StartRunAsync("mine");
        var other = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(other);

        await (await them.GetAsync($"{WorkflowsPath}/mine", Ct)).ReadProblemAsync(404, "not_found");
        await (await them.DeleteAsync($"{WorkflowsPath}/mine", Ct)).ReadProblemAsync(404, "not_found");
        await (await them.PostAsJsonAsync($"{WorkflowsPath}/mine/runs", new { }, Ct)).ReadProblemAsync(404, "not_found");
        await (await them.GetAsync($"{WorkflowsPath}/mine/runs", Ct)).ReadProblemAsync(404, "not_found");
        await (await them.GetAsync($"{WorkflowsPath}/mine/runs/{runId}", Ct)).ReadProblemAsync(404, "not_found");
        await (await them.PostAsync($"{WorkflowsPath}/mine/runs/{runId}/cancel", null, Ct)).ReadProblemAsync(404, "not_found");
        await (await them.PostAsJsonAsync($"{WorkflowsPath}/mine/runs/{runId}/events/approve", new { }, Ct)).ReadProblemAsync(404, "not_found");
        Assert.Empty((await them.GetFromJsonAsync<JsonElement>(WorkflowsPath, Ct)).GetProperty("items").EnumerateArray());

        // Their own workflow of the same id is theirs: it neither reaches nor changes ours.
        await them.DefineAsync("mine", Hook);
        await (await them.GetAsync($"{WorkflowsPath}/mine/runs/{runId}", Ct)).ReadProblemAsync(404, "not_found");
        var ours = await Admin.GetFromJsonAsync<JsonElement>($"{WorkflowsPath}/mine", Ct);
        Assert.Equal(2, ours.GetProperty("steps").GetArrayLength());
        var run = await Admin.RunAsync("mine", runId);
        Assert.Equal(runId, run.GetProperty("runId").GetString());
        (await Admin.PostAsync($"{WorkflowsPath}/mine/runs/{runId}/cancel", null, Ct)).EnsureStatus(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task Reading_needs_workflows_read_and_changing_needs_workflows_manage()
    {
        await Admin.DefineAsync("guarded", Approval);
        var runId = await Admin.StartRunAsync("guarded");
        using var user = await SignedInAsync("plain@example.com");

        await (await user.GetAsync(WorkflowsPath, Ct)).ReadProblemAsync(403, "forbidden");
        await (await user.GetAsync($"{WorkflowsPath}/guarded", Ct)).ReadProblemAsync(403, "forbidden");
        await (await user.PutAsJsonAsync($"{WorkflowsPath}/guarded", new { name = "Mine now", steps = new[] { Hook } }, Ct)).ReadProblemAsync(403, "forbidden");
        await (await user.DeleteAsync($"{WorkflowsPath}/guarded", Ct)).ReadProblemAsync(403, "forbidden");
        await (await user.PostAsJsonAsync($"{WorkflowsPath}/guarded/runs", new { }, Ct)).ReadProblemAsync(403, "forbidden");
        await (await user.GetAsync($"{WorkflowsPath}/guarded/runs", Ct)).ReadProblemAsync(403, "forbidden");
        await (await user.GetAsync($"{WorkflowsPath}/guarded/runs/{runId}", Ct)).ReadProblemAsync(403, "forbidden");
        await (await user.PostAsync($"{WorkflowsPath}/guarded/runs/{runId}/cancel", null, Ct)).ReadProblemAsync(403, "forbidden");
        await (await user.PostAsJsonAsync($"{WorkflowsPath}/guarded/runs/{runId}/events/approve", new { }, Ct)).ReadProblemAsync(403, "forbidden");

        // A manager holds both.
        using var manager = await SignedInAsync("manager@example.com", "manager");
        Assert.Equal(HttpStatusCode.OK, (await manager.GetAsync($"{WorkflowsPath}/guarded/runs/{runId}", Ct)).StatusCode);
        (await manager.PostAsync($"{WorkflowsPath}/guarded/runs/{runId}/cancel", null, Ct)).EnsureStatus(HttpStatusCode.Accepted);
    }
}
