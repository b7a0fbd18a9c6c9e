using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Storage;
using Platform.Functions.Jobs;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Reports;

/// <summary>The reports routes: list and download, what a bad request says, tenancy, permissions, the event and the mail.</summary>
public sealed class ReportTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => ReportApi.RunsReports(new Dictionary<string, string?>
    {
        ["Platform:PublicBaseUrl"] = "https://platform.example.com",
    });

    private static readonly string[] ManagerRole = ["role:manager"];
    private static readonly string[] Nobody = ["nobody"];

    [Fact]
    public async Task The_list_shows_finished_reports_newest_first_with_their_download()
    {
        var first = await Admin.ReportAsync(new { type = "jobs-summary", format = "html" });
        var second = await Admin.ReportAsync(new { type = "jobs-summary", format = "csv", from = "2026-01-01", to = "2026-02-01" });

        var items = await Admin.ListReportsAsync();

        Assert.Equal([second.GetProperty("id").GetString(), first.GetProperty("id").GetString()], items.Select(i => i.GetProperty("id").GetString()));
        var csv = items[0];
        Assert.Equal("jobs-summary", csv.GetProperty("type").GetString());
        Assert.Equal("csv", csv.GetProperty("format").GetString());
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), csv.GetProperty("from").GetDateTimeOffset());
        Assert.Equal(new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero), csv.GetProperty("to").GetDateTimeOffset());
        Assert.Equal($"/api/v1/reports/{csv.GetProperty("id").GetString()}/download", csv.GetProperty("downloadUrl").GetString());
        // Without from and to, a report covers the 30 days before it started.
        var html = items[1];
        Assert.Equal(TimeSpan.FromDays(30), html.GetProperty("to").GetDateTimeOffset() - html.GetProperty("from").GetDateTimeOffset());

        var (body, response) = await Admin.DownloadReportAsync(csv.GetProperty("id").GetString()!);
        Assert.Equal(csv.GetProperty("bytes").GetInt64(), body.LongLength);
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition?.DispositionType);
        Assert.Matches(@"^jobs-summary-20260101-20260201-[0-9A-Z]+\.zip$", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));

        Assert.Single(await Admin.ListReportsAsync("?pageSize=1"));
    }

    [Fact]
    public async Task Bad_requests_are_refused_naming_the_field_before_a_job_starts()
    {
        async Task<JsonElement> Refused(object body, string field)
        {
            var problem = await (await Admin.PostAsJsonAsync("/api/v1/reports", body, Ct)).ReadProblemAsync(400, "validation_failed");
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"{field} in {problem}");
            return problem;
        }

        await Refused(new { type = "spaceships", format = "pdf" }, "type");
        await Refused(new { format = "pdf" }, "type");
        await Refused(new { type = "jobs-summary", format = "docx" }, "format");
        await Refused(new { type = "jobs-summary", from = "2026-03-01", to = "2026-02-01" }, "from");
        await Refused(new { type = "jobs-summary", from = "2025-01-01", to = "2026-02-01" }, "to");
        await Refused(new { type = "jobs-summary", from = "last tuesday" }, "from");
        await Refused(new { type = "jobs-summary", recipients = (string[])["role:manager", "ada@example.com"] }, "recipients[1]");
        await Refused(new { type = "jobs-summary", recipients = Enumerable.Range(0, 51).Select(i => "role:manager").ToArray() }, "recipients");
        await Refused(new { type = "jobs-summary", filter = new string('x', 3000) }, "filter");
        var filter = await (await Admin.PostAsJsonAsync("/api/v1/reports", new { type = "jobs-summary", filter = "colour eq 'red'" }, Ct)).ReadProblemAsync(400, "invalid_filter");
        Assert.Contains("colour", filter.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await (await Admin.PostAsync("/api/v1/reports", JsonContent.Create(new { type = 5 }), Ct)).ReadProblemAsync(400, "invalid_json");

        Assert.Empty(await Admin.ListReportsAsync());
    }

    [Fact]
    public async Task A_schedule_or_workflow_step_is_checked_by_the_same_rules()
    {
        using var scope = App.Services.CreateScope();
        var types = scope.ServiceProvider.GetRequiredService<JobTypes>();
        Assert.Contains("report", types.Names);

        var valid = new Validation();
        Assert.Equal("jobs.read", types.Check("report", JsonSerializer.SerializeToElement(new { type = "jobs-summary", format = "pdf", recipients = ManagerRole }), "target.job", valid));
        Assert.True(valid.IsValid);

        var invalid = new Validation();
        Assert.Null(types.Check("report", JsonSerializer.SerializeToElement(new { type = "jobs-summary", format = "gif", recipients = Nobody }), "target.job", invalid));
        Assert.Equal(["target.job.parameters.format", "target.job.parameters.recipients[0]"], invalid.Errors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_scheduled_start_of_one_occurrence_makes_one_report()
    {
        var tokens = await App.LoginAsync(Tenant);
        var caller = new Caller(new TenantId(Tenant.Id), Tenant.AdminId, tokens.SessionId);
        var parameters = JsonSerializer.SerializeToElement(new { type = "jobs-summary", format = "csv", recipients = ManagerRole });
        var jobId = Ids.Derived(DateTimeOffset.UtcNow, "schedule-occurrence");

        Outcome<JobView> first, second;
        await using (var scope = App.Services.CreateAsyncScope())
        {
            var types = scope.ServiceProvider.GetRequiredService<JobTypes>();
            first = await types.StartAsync(caller, "report", parameters, jobId, Ct);
            second = await types.StartAsync(caller, "report", parameters, jobId, Ct);
        }

        Assert.True(first.Succeeded && second.Succeeded);
        Assert.Equal(jobId, second.Value.Id);
        var job = await Admin.FinishedJobAsync(jobId);
        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        var report = Assert.Single(await Admin.ListReportsAsync());
        Assert.Equal(jobId, report.GetProperty("id").GetString());
        Assert.Equal(TimeSpan.FromDays(30), report.GetProperty("to").GetDateTimeOffset() - report.GetProperty("from").GetDateTimeOffset());
    }

    [Fact]
    public async Task Another_tenants_reports_are_not_listed_and_not_found()
    {
        var job = await Admin.ReportAsync(new { type = "jobs-summary", format = "json" });
        var id = job.GetProperty("id").GetString()!;
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);

        Assert.Empty(await otherAdmin.ListReportsAsync());
        await (await otherAdmin.GetAsync($"/api/v1/reports/{id}/download", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.GetAsync("/api/v1/reports/NOSUCHREPORT000000000000000/download", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.GetAsync("/api/v1/reports/..%2F..%2Fetc/download", Ct)).ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task Reports_need_reports_read_and_what_their_type_needs()
    {
        var job = await Admin.ReportAsync(new { type = "jobs-summary", format = "json" });
        var id = job.GetProperty("id").GetString()!;
        (await Admin.PutRoleAsync("report-reader", "reports.read")).EnsureSuccessStatusCode();
        (await Admin.PutRoleAsync("job-watcher", "jobs.read")).EnsureSuccessStatusCode();
        using var reportReader = await SignedInAsync("reports@example.com", "report-reader");
        using var jobWatcher = await SignedInAsync("jobs@example.com", "job-watcher");

        // reports.read alone: not a report over jobs, which needs jobs.read too; such reports are not even listed.
        await (await reportReader.PostAsJsonAsync("/api/v1/reports", new { type = "jobs-summary" }, Ct)).ReadProblemAsync(403, "forbidden");
        await (await reportReader.GetAsync($"/api/v1/reports/{id}/download", Ct)).ReadProblemAsync(403, "forbidden");
        Assert.Empty(await reportReader.ListReportsAsync());

        // jobs.read without reports.read: no reports routes at all.
        await (await jobWatcher.PostAsJsonAsync("/api/v1/reports", new { type = "jobs-summary" }, Ct)).ReadProblemAsync(403, "forbidden");
        await (await jobWatcher.GetAsync("/api/v1/reports", Ct)).ReadProblemAsync(403, "forbidden");
        await (await jobWatcher.GetAsync($"/api/v1/reports/{id}/download", Ct)).ReadProblemAsync(403, "forbidden");

        // Nor through the jobs routes: a report job has no result there, whatever jobs permissions the caller has.
        (await Admin.PutRoleAsync("job-runner", "jobs.read", "jobs.write")).EnsureSuccessStatusCode();
        using var jobRunner = await SignedInAsync("runner@example.com", "job-runner");
        Assert.Equal(HttpStatusCode.OK, (await jobRunner.GetAsync($"/api/v1/jobs/{id}", Ct)).StatusCode);
        await (await jobRunner.GetAsync($"/api/v1/jobs/{id}/result", Ct)).ReadProblemAsync(404, "not_found");

        // The built-in user role has both.
        using var user = await SignedInAsync("user@example.com");
        Assert.Single(await user.ListReportsAsync());
        await user.DownloadReportAsync(id);
    }

    [Fact]
    public async Task A_finished_report_is_announced_and_mailed_to_its_recipients()
    {
        var managerId = await Admin.CreateUserIdAsync("manager@example.com", Accounts.Password, ["manager"]);
        var userId = await Admin.CreateUserIdAsync("user@example.com", Accounts.Password, ["user"]);
        (await Admin.PutRoleAsync("report-reader", "reports.read")).EnsureSuccessStatusCode();
        var readerId = await Admin.CreateUserIdAsync("reader@example.com", Accounts.Password, ["report-reader"]);

        var job = await Admin.ReportAsync(new { type = "jobs-summary", format = "pdf", recipients = new[] { "role:manager", managerId, userId, readerId, "role:nosuchrole" } });

        var id = job.GetProperty("id").GetString()!;
        Assert.Equal($"The report is at /api/v1/reports/{id}/download. 2 recipients were mailed a link.", job.GetProperty("note").GetString());
        var link = $"https://platform.example.com/api/v1/reports/{id}/download";
        foreach (var address in new[] { "manager@example.com", "user@example.com" })
        {
            var mail = Assert.Single(App.MailTo(address), m => m.Headers["X-Platform-Mail-Kind"] == "ReportReady");
            Assert.Equal("ReportReady", mail.Headers["X-Platform-Mail-Kind"]);
            Assert.Contains("Jobs summary", mail.Subject, StringComparison.Ordinal);
            Assert.Contains(link, mail.TextBody, StringComparison.Ordinal);
            Assert.Contains(link, mail.HtmlBody, StringComparison.Ordinal);
        }

        // A recipient who could not open the report (no jobs.read) gets no link to it.
        Assert.DoesNotContain(App.MailTo("reader@example.com"), m => m.Headers["X-Platform-Mail-Kind"] == "ReportReady");
        // Nor does anyone not named, or named twice (a user id and a role) is mailed once.
        Assert.DoesNotContain(App.MailTo(Tenant.AdminEmail), m => m.Headers["X-Platform-Mail-Kind"] == "ReportReady");

        var audit = await Eventually.Until(() => Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=report.ready", Ct),
            a => a.GetProperty("items").EnumerateArray().Any(e => e.GetProperty("targetId").GetString() == id), "the report.ready audit entry");
        var entry = audit.GetProperty("items").EnumerateArray().Single(e => e.GetProperty("targetId").GetString() == id);
        Assert.Equal(Tenant.AdminId, entry.GetProperty("actorId").GetString());
    }

    [Fact]
    public async Task A_report_goes_with_its_job_when_retention_purges_it()
    {
        var job = await Admin.ReportAsync(new { type = "jobs-summary", format = "xlsx" });
        var id = job.GetProperty("id").GetString()!;
        Assert.Single(await Admin.ListReportsAsync());

        await using (var scope = App.Services.CreateAsyncScope())
        {
            Assert.True(await scope.ServiceProvider.GetRequiredService<JobRetention>().PurgeAsync(DateTimeOffset.UtcNow.AddMinutes(1), Ct) >= 1);
        }

        Assert.Empty(await Admin.ListReportsAsync());
        await (await Admin.GetAsync($"/api/v1/reports/{id}/download", Ct)).ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task A_repeated_start_with_the_same_idempotency_key_starts_one_report()
    {
        HttpRequestMessage Request()
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/reports") { Content = JsonContent.Create(new { type = "jobs-summary", format = "csv" }) };
            request.Headers.Add("Idempotency-Key", "report-once");
            return request;
        }

        var first = await (await Admin.SendAsync(Request(), Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var second = await Admin.SendAsync(Request(), Ct);

        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        Assert.Equal(first.GetProperty("id").GetString(), (await second.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString());
    }
}
