using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Platform.Functions.Workflows;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;
using static Platform.Tests.Schedules.ScheduleApi;

namespace Platform.Tests.Schedules;

/// <summary>Managing schedules through <c>/api/v1/schedules</c>: the resource, its validation, limits, tenancy and permissions.</summary>
public sealed class ScheduleTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Schedules:MaxSchedulesPerTenant"] = "3",
    };

    private static readonly string[] SchedulerPermissions = ["jobs.read", "jobs.write"];
    private static readonly string[] NoPermissions = ["inventory.read"];

    [Fact]
    public async Task A_schedule_is_created_read_listed_changed_and_deleted()
    {
        var response = await Admin.PostAsJsonAsync(SchedulesPath, new { name = "Nightly users", cron = "0 2 * * *", timeZone = "Europe/Berlin", target = ExportUsers }, Ct);
        var created = await response.ReadJsonAsync(HttpStatusCode.Created);
        var id = created.Id();
        Assert.Equal($"{SchedulesPath}/{id}", response.Headers.Location?.OriginalString);
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal("Nightly users", created.Str("name"));
        Assert.Equal("0 2 * * *", created.Str("cron"));
        Assert.Equal("Europe/Berlin", created.Str("timeZone"));
        Assert.True(created.GetProperty("enabled").GetBoolean());
        Assert.Equal("export", created.GetProperty("target").GetProperty("job").Str("type"));
        Assert.Equal("users", created.GetProperty("target").GetProperty("job").GetProperty("parameters").Str("kind"));
        Assert.False(created.GetProperty("target").TryGetProperty("workflow", out _));
        Assert.Equal(Tenant.AdminId, created.Str("runsAs"));

        // 02:00 in Berlin is 00:00 or 01:00 UTC, within the next day.
        var next = created.Time("nextRunAt");
        Assert.InRange(next, Clock.GetUtcNow(), Clock.GetUtcNow().AddDays(1));
        Assert.Equal(0, next.Minute);
        Assert.True(next.Hour is 0 or 1, $"02:00 in Berlin at {next}");

        var read = await Admin.GetAsync($"{SchedulesPath}/{id}", Ct);
        Assert.Equal(response.Headers.ETag, read.Headers.ETag);
        Assert.Equal(next, (await read.ReadJsonAsync(HttpStatusCode.OK)).Time("nextRunAt"));
        Assert.Equal([id], (await Admin.GetJsonAsync(SchedulesPath)).GetProperty("items").EnumerateArray().Select(s => s.Id()).ToList());

        // A stale If-Match is refused; a current one applies.
        await (await Admin.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { enabled = false }, "\"stale\"")).ReadProblemAsync(412, "precondition_failed");
        var disabled = await (await Admin.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { enabled = false }, read.Headers.ETag!.Tag)).ReadJsonAsync(HttpStatusCode.OK);
        Assert.False(disabled.GetProperty("enabled").GetBoolean());
        Assert.Equal(JsonValueKind.Null, disabled.GetProperty("nextRunAt").ValueKind);

        var changed = await (await Admin.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { enabled = true, cron = "15 6 * * *", timeZone = "UTC", name = "Mornings" })).ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal("Mornings", changed.Str("name"));
        Assert.Equal("15 6 * * *", changed.Str("cron"));
        var morning = changed.Time("nextRunAt");
        Assert.Equal((6, 15, 0), (morning.UtcDateTime.Hour, morning.Minute, morning.Second));
        Assert.InRange(morning, Clock.GetUtcNow(), Clock.GetUtcNow().AddDays(1));

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{SchedulesPath}/{id}", Ct)).StatusCode);
        await (await Admin.GetAsync($"{SchedulesPath}/{id}", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.GetAsync($"{SchedulesPath}/{id}/runs", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Empty((await Admin.GetJsonAsync(SchedulesPath)).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task NextRunAt_skips_the_spring_forward_gap_and_takes_the_first_0230_on_the_fall_back_day()
    {
        // Next year's daylight-saving days in Berlin (the fake clock only moves forward).
        Clock.SetUtcNow(DateTimeOffset.Parse("2027-03-27T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await SignInAdminAgainAsync();
        var spring = await Admin.CreateScheduleAsync(new { name = "spring", cron = "30 2 * * *", timeZone = "Europe/Berlin", target = ExportUsers });
        // 02:30 does not exist on 2027-03-28: the run is at 03:00 CEST, once.
        Assert.Equal(DateTimeOffset.Parse("2027-03-28T01:00:00Z", System.Globalization.CultureInfo.InvariantCulture), spring.Time("nextRunAt"));

        Clock.SetUtcNow(DateTimeOffset.Parse("2027-10-30T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await SignInAdminAgainAsync();
        var autumn = await Admin.CreateScheduleAsync(new { name = "autumn", cron = "30 2 * * *", timeZone = "Europe/Berlin", target = ExportUsers });
        // 02:30 happens twice on 2027-10-31 (00:30Z in summer time, 01:30Z in winter time): the first one only.
        Assert.Equal(DateTimeOffset.Parse("2027-10-31T00:30:00Z", System.Globalization.CultureInfo.InvariantCulture), autumn.Time("nextRunAt"));
    }

    [Fact]
    public async Task The_older_job_form_and_a_one_off_are_accepted()
    {
        var older = await Admin.CreateScheduleAsync(new { name = "older", cron = "0 3 * * *", timeZone = "UTC", job = new { type = "export", parameters = new { kind = "inventory-items", format = "json" } } });
        Assert.Equal("inventory-items", older.GetProperty("target").GetProperty("job").GetProperty("parameters").Str("kind"));

        var at = Clock.GetUtcNow().AddHours(2);
        var once = await Admin.OneOffAsync(at);
        Assert.Equal(JsonValueKind.Null, once.GetProperty("cron").ValueKind);
        Assert.Equal(Iso(at), Iso(once.Time("runAt")));
        Assert.Equal(Iso(at), Iso(once.Time("nextRunAt")));
    }

    [Theory]
    [InlineData("""{ "name": "x", "cron": "61 * * * *", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "cron")]
    [InlineData("""{ "name": "x", "cron": "* * * *", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "cron")]
    [InlineData("""{ "name": "x", "cron": "*/10 * * * * *", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "cron")]
    [InlineData("""{ "name": "x", "cron": "0 0 30 2 *", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "cron")]
    [InlineData("""{ "name": "x", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "cron")]
    [InlineData("""{ "name": "x", "cron": 5, "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "cron")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "timeZone": "Mars/Olympus_Mons", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "timeZone")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "timeZone": "Central European Standard Time", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "timeZone")]
    [InlineData("""{ "name": "x", "runAt": "2001-01-01T00:00:00Z", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "runAt")]
    [InlineData("""{ "name": "x", "runAt": "tomorrow", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "runAt")]
    [InlineData("""{ "name": "x", "runAt": "2999-01-01T00:00:00Z", "cron": "0 2 * * *", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "runAt")]
    [InlineData("""{ "name": "", "cron": "0 2 * * *", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "csv" } } } }""", "name")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *" }""", "target")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "target": "export" }""", "target")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "target": { } }""", "target")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "target": { "job": { "type": "export" }, "workflow": { "id": "w" } } }""", "target")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "target": { "job": { "type": "mine-bitcoin" } } }""", "target.job.type")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "target": { "job": { "type": "export", "parameters": { "kind": "users", "format": "pdf" } } } }""", "target.job.parameters.format")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "target": { "job": { "type": "export", "parameters": { "kind": "secrets", "format": "csv" } } } }""", "target.job.parameters.kind")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "job": { "type": "nope" } }""", "job.type")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "target": { "workflow": { "id": "no-such-workflow" } } }""", "target.workflow.id")]
    [InlineData("""{ "name": "x", "cron": "0 2 * * *", "target": { "workflow": { } } }""", "target.workflow.id")]
    [InlineData("""[1, 2]""", "body")]
    public async Task Bad_input_is_refused_with_400_naming_the_field(string body, string field)
    {
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        var response = await Admin.PostAsync(SchedulesPath, content, Ct);

        Assert.Contains(field, await response.ValidationErrorsAsync());
        Assert.Empty((await Admin.GetJsonAsync(SchedulesPath)).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Bad_patches_are_refused_naming_the_field()
    {
        var id = (await Admin.CreateScheduleAsync(new { name = "n", cron = "0 2 * * *", target = ExportUsers })).Id();

        foreach (var (body, field) in new (object, string)[]
        {
            (new { cron = "banana" }, "cron"),
            (new { timeZone = "Atlantis/Capital" }, "timeZone"),
            (new { cron = "*/30 * * * * *" }, "cron"),
            (new { enabled = "yes" }, "enabled"),
            (new { name = new string('n', 101) }, "name"),
            (new { runAt = "2001-01-01T00:00:00Z" }, "runAt"),
            (new { target = new { job = new { type = "export", parameters = new { kind = "users", format = "doc" } } } }, "target.job.parameters.format"),
        })
        {
            Assert.Contains(field, await (await Admin.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", body)).ValidationErrorsAsync());
        }

        var unchanged = await Admin.GetJsonAsync($"{SchedulesPath}/{id}");
        Assert.Equal("0 2 * * *", unchanged.Str("cron"));
        Assert.Equal("n", unchanged.Str("name"));
    }

    [Fact]
    public async Task A_tenant_has_at_most_its_cap_of_schedules()
    {
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await Admin.CreateScheduleAsync(new { name = $"s{i}", cron = "0 2 * * *", target = ExportUsers })).Id());
        }

        await (await Admin.PostAsJsonAsync(SchedulesPath, new { name = "one more", cron = "0 2 * * *", target = ExportUsers }, Ct)).ReadProblemAsync(409, "schedule_limit_reached");
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{SchedulesPath}/{ids[0]}", Ct)).StatusCode);
        await Admin.CreateScheduleAsync(new { name = "in its place", cron = "0 2 * * *", target = ExportUsers });

        // Pages of the list.
        var pages = await Admin.PagesAsync($"{SchedulesPath}?pageSize=2");
        Assert.Equal([2, 1], pages.Select(p => p.Count).ToList());
    }

    [Fact]
    public async Task Another_tenants_schedule_is_404_on_every_route()
    {
        var id = (await Admin.CreateScheduleAsync(new { name = "mine", cron = "0 2 * * *", target = ExportUsers })).Id();
        var other = await App.SignUpAsync();
        using var stranger = await App.SignedInClientAsync(other);

        await (await stranger.GetAsync($"{SchedulesPath}/{id}", Ct)).ReadProblemAsync(404, "not_found");
        await (await stranger.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { enabled = false })).ReadProblemAsync(404, "not_found");
        await (await stranger.DeleteAsync($"{SchedulesPath}/{id}", Ct)).ReadProblemAsync(404, "not_found");
        await (await stranger.GetAsync($"{SchedulesPath}/{id}/runs", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Empty((await stranger.GetJsonAsync(SchedulesPath)).GetProperty("items").EnumerateArray());

        // Untouched for its own tenant.
        Assert.True((await Admin.GetJsonAsync($"{SchedulesPath}/{id}")).GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public async Task Managing_needs_jobs_write_and_whatever_the_target_needs()
    {
        var id = (await Admin.CreateScheduleAsync(new { name = "mine", cron = "0 2 * * *", target = ExportUsers })).Id();

        // The default role reads schedules but manages none.
        using var reader = await SignedInAsync("reader@example.com");
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"{SchedulesPath}/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"{SchedulesPath}/{id}/runs", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsJsonAsync(SchedulesPath, new { name = "x", cron = "0 2 * * *", target = ExportUsers }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { enabled = false })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.DeleteAsync($"{SchedulesPath}/{id}", Ct)).StatusCode);

        // Without jobs.read nothing is visible.
        Assert.True((await Admin.PutRoleAsync("stock", NoPermissions)).IsSuccessStatusCode);
        using var stock = await SignedInAsync("stock@example.com", "stock");
        Assert.Equal(HttpStatusCode.Forbidden, (await stock.GetAsync(SchedulesPath, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await stock.GetAsync($"{SchedulesPath}/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await stock.GetAsync($"{SchedulesPath}/{id}/runs", Ct)).StatusCode);

        // jobs.write alone does not let anyone schedule an export of users, now or by a patch.
        Assert.True((await Admin.PutRoleAsync("scheduler", SchedulerPermissions)).IsSuccessStatusCode);
        using var scheduler = await SignedInAsync("scheduler@example.com", "scheduler");
        await (await scheduler.PostAsJsonAsync(SchedulesPath, new { name = "x", cron = "0 2 * * *", target = ExportUsers }, Ct)).ReadProblemAsync(403, "permission_not_held");
        await (await scheduler.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { target = ExportUsers })).ReadProblemAsync(403, "permission_not_held");
        Assert.Equal(Tenant.AdminId, (await Admin.GetJsonAsync($"{SchedulesPath}/{id}")).Str("runsAs"));
    }

    [Fact]
    public async Task Whoever_turns_a_schedule_back_on_or_changes_when_it_runs_takes_it_over_and_needs_what_it_does()
    {
        var id = (await Admin.CreateScheduleAsync(new { name = "admins", cron = "0 2 * * *", target = ExportUsers })).Id();
        Assert.Equal(HttpStatusCode.OK, (await Admin.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { enabled = false })).StatusCode);

        // The attack: jobs.write without users.read, turning the admin's users export back on or running it hourly, so
        // it would export users with the admin's rights at times the admin never chose.
        Assert.True((await Admin.PutRoleAsync("scheduler", SchedulerPermissions)).IsSuccessStatusCode);
        using var scheduler = await SignedInAsync("scheduler@example.com", "scheduler");
        await (await scheduler.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { enabled = true })).ReadProblemAsync(403, "permission_not_held");
        await (await scheduler.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { cron = "0 * * * *" })).ReadProblemAsync(403, "permission_not_held");
        var untouched = await Admin.GetJsonAsync($"{SchedulesPath}/{id}");
        Assert.False(untouched.GetProperty("enabled").GetBoolean());
        Assert.Equal("0 2 * * *", untouched.Str("cron"));
        Assert.Equal(Tenant.AdminId, untouched.Str("runsAs"));

        // Renaming is not deciding what runs when: the owner stays.
        Assert.Equal(HttpStatusCode.OK, (await scheduler.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { name = "renamed" })).StatusCode);
        Assert.Equal(Tenant.AdminId, (await Admin.GetJsonAsync($"{SchedulesPath}/{id}")).Str("runsAs"));

        // Someone who holds what the target needs may turn it on, and from then on it runs as them.
        Assert.True((await Admin.PutRoleAsync("exporter", ["jobs.read", "jobs.write", "users.read"])).IsSuccessStatusCode);
        using var exporter = await SignedInAsync("exporter@example.com", "exporter");
        var exporterId = (await exporter.GetJsonAsync("/api/v1/me")).Str("id");
        var enabled = await (await exporter.SendJsonAsync(HttpMethod.Patch, $"{SchedulesPath}/{id}", new { enabled = true })).ReadJsonAsync(HttpStatusCode.OK);
        Assert.True(enabled.GetProperty("enabled").GetBoolean());
        Assert.Equal(exporterId, enabled.Str("runsAs"));
    }

    [Fact]
    public async Task Odd_ids_are_404_not_500()
    {
        foreach (var id in new[] { "nope", "a%2Fb", "x%23y", new string('Z', 200) })
        {
            await (await Admin.GetAsync($"{SchedulesPath}/{id}", Ct)).ReadProblemAsync(404, "not_found");
            await (await Admin.GetAsync($"{SchedulesPath}/{id}/runs", Ct)).ReadProblemAsync(404, "not_found");
        }
    }
}

/// <summary>A deployment without the workflows capability (no <see cref="IWorkflowRunStarter"/>): workflow targets are refused.</summary>
public sealed class ScheduleWithoutWorkflowsTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override void ConfigureServices(IServiceCollection services) => services.RemoveAll<IWorkflowRunStarter>();

    [Fact]
    public async Task A_workflow_target_is_refused_while_no_workflows_are_available()
    {
        var response = await Admin.PostAsJsonAsync(SchedulesPath, new { name = "restock", cron = "0 6 * * MON", target = new { workflow = new { id = "weekly-restock", input = new { } } } }, Ct);

        var problem = await response.ReadProblemAsync(400, "validation_failed");
        Assert.Equal("workflows are not available", problem.GetProperty("errors").GetProperty("target.workflow")[0].GetString());
    }
}
