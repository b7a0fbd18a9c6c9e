using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Platform.Functions.Reports;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Reports;

/// <summary>
/// The <c>user-insights</c> report type over users made, signed in and deleted through HTTP, on a fake clock that
/// walks 75 days. The report is made as a reader makes it: <c>POST /api/v1/reports</c> in json, the job run by the app's
/// durable worker on the same fake clock (which sets the report's as-of date), the file downloaded; the assertions are
/// the tables, rows and figures in it.
/// </summary>
public sealed class UserInsightsReportTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string Type = "user-insights";
    private static readonly string[] DeptValues = ["sales", "ops"];
    private static readonly string[] ReaderPermissions = ["reports.read", "users.read", "jobs.read"];
    protected override bool SignsInAdmin => true;

    // The clock jumps months ahead, and the JobRetention timer fires with it: a retention far longer than that keeps it
    // from purging a report finished moments before.
    protected override IDictionary<string, string?>? Settings => ReportApi.RunsReports(new Dictionary<string, string?> { ["Platform:Jobs:Retention"] = "3650.00:00:00" });

    /// <summary>
    /// Reads reports without signing in: a sign-in of the admin on day 75 would be one more in the report (and the
    /// admin's access token from day 45 has long expired by then). jobs.read to follow the report's job.
    /// </summary>
    private HttpClient? _reader;

    private HttpClient Reader => _reader ?? throw new InvalidOperationException("The story makes the reader's API key.");

    public override async ValueTask DisposeAsync()
    {
        _reader?.Dispose();
        await base.DisposeAsync();
    }

    /// <summary>The 1st of the month after the test started, 12:00 UTC: day 0 of the story.</summary>
    private DateTimeOffset _day0;

    private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);

    private void AdvanceToDay(int day) => Clock.SetUtcNow(_day0.AddDays(day));

    private async Task SignInAsync(string name)
    {
        using var signedIn = await App.SignInAsAsync(Tenant, $"{name}@insights.example");
    }

    /// <summary>
    /// Day 0: alice, bob, carol and dave sign up (dave is deleted on day 45); the admin signed up the month before.
    /// Sign-ins - admin: sign-up day, days 0 and 45; alice: days 0, 70, 70; bob: 40, 72; carol: 25; dave: 0, 40.
    /// The report is built as of day 75.
    /// </summary>
    private async Task TellTheStoryAsync()
    {
        var start = Clock.GetUtcNow().UtcDateTime;
        _day0 = new DateTimeOffset(start.Year, start.Month, 1, 12, 0, 0, TimeSpan.Zero).AddMonths(1);
        AdvanceToDay(0);
        await SignInAdminAgainAsync();
        var created = await Admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "report reader", permissions = ReaderPermissions }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        _reader = App.CreateClient();
        _reader.DefaultRequestHeaders.Add("X-Api-Key", (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString());
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(
            new { name = "dept", type = "enum", values = DeptValues },
            new { name = "remote", type = "boolean" },
            new { name = "level", type = "number" })).StatusCode);
        foreach (var (name, fields) in new (string, object)[]
        {
            ("alice", new { dept = "sales", remote = true, level = 3 }),
            ("bob", new { dept = "sales" }),
            ("carol", new { dept = "ops", remote = false }),
            ("dave", new { dept = "sales" }),
        })
        {
            _ids[name] = (await Admin.CreateUserAsync($"{name}@insights.example", password: Accounts.Password, fields: fields)).GetProperty("id").GetString()!;
        }

        await SignInAsync("alice");
        await SignInAsync("dave");
        AdvanceToDay(25);
        await SignInAsync("carol");
        AdvanceToDay(40);
        await SignInAsync("bob");
        await SignInAsync("dave");
        AdvanceToDay(45);
        await SignInAdminAgainAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{UserApi.Users}/{_ids["dave"]}", Ct)).StatusCode);
        AdvanceToDay(70);
        await SignInAsync("alice");
        await SignInAsync("alice");
        AdvanceToDay(72);
        await SignInAsync("bob");
        AdvanceToDay(75);
    }

    private static string Month(DateTimeOffset at) => at.ToString("yyyy-MM", CultureInfo.InvariantCulture);

    [Fact]
    public async Task ReportShowsSignupsActivityFrequencyChurnCohortsAndSegments()
    {
        await TellTheStoryAsync();

        var report = await Reader.ReportDocumentAsync(Type, _day0, _day0.AddDays(75));

        Assert.Equal((Type, _day0, _day0.AddDays(75)), (report.Type, report.From, report.To));
        Assert.Equal(4, report.Figures["userCount"]);
        Assert.Equal(2, report.Figures["active7"]);
        Assert.Equal(2, report.Figures["active30"]);
        Assert.Equal(2, report.Figures["inactive"]);
        Assert.Equal(0, report.Figures["neverSignedIn"]);
        Assert.Equal(4, report.Figures["signupsInPeriod"]);
        Assert.Equal(9, report.Figures["signIns"]); // admin 3, alice 3, bob 2, carol 1 (dave deleted)

        // Days 16-45 saw the admin, bob, carol and dave; of them only bob came back in days 46-75 (dave was deleted).
        Assert.Equal(3, report.Figures["churned"]);
        Assert.Equal(0.75, report.Figures["churnRate"]);
        var churn = report.Table("churn");
        Assert.Equal([4.0, 3.0, 0.75], churn.Records().Select(r => r.Number("value")!.Value));

        var signups = report.Table("signups-per-day");
        Assert.Equal(76, signups.Rows.Count); // 12:00 on day 0 to 12:00 on day 75: 76 UTC days
        Assert.Equal(4L, signups.Record(new DateTimeOffset(_day0.UtcDateTime.Date, TimeSpan.Zero))["signups"]);
        Assert.Equal(4, signups.Records().Sum(r => r.Number("signups")));
        var signupChart = report.Chart("signups-per-day");
        Assert.Equal(_day0.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), signupChart.Categories[0]);
        Assert.Equal(4, Assert.Single(signupChart.Series).Values[0]);

        var active = report.Table("active-users");
        Assert.Equal((4.0, 1.0), (active.Record("users").Number("users"), active.Record("users").Number("share")));
        Assert.Equal((2.0, 0.5), (active.Record("active in the last 7 days").Number("users"), active.Record("active in the last 7 days").Number("share")));
        Assert.Equal(2.0, active.Record("inactive (no sign-in in 30 days)").Number("users"));

        // The admin last signed in 30 days before, carol 50.
        var inactive = report.Table("inactive-users");
        Assert.Equal(2.0, inactive.Record("30-89 days ago").Number("users"));
        Assert.Equal(0.0, inactive.Record("never").Number("users"));

        // Alice signed in twice on day 70: one day.
        var frequency = report.Table("sign-in-frequency");
        Assert.Equal(2.0, frequency.Record("0 days").Number("users"));
        Assert.Equal(2.0, frequency.Record("1 day").Number("users"));
        Assert.Equal(0.0, frequency.Record("2-3 days").Number("users"));
        Assert.Equal([2.0, 2.0, 0, 0, 0, 0], report.Chart("sign-in-frequency").Series[0].Values);

        // Cohort of month A (alice, bob, carol, dave): month 0 alice, carol, dave; month 1 bob, dave; month 2 alice, bob.
        var cohorts = report.Table("cohort-retention");
        Assert.Equal(UserInsightsReport.CohortMonths, cohorts.Rows.Count);
        var cohortA = cohorts.Record(Month(_day0));
        Assert.Equal([4.0, 0.75, 0.5, 0.5, null], cohortA.Numbers("users", "month0", "month1", "month2", "month3"));
        var cohortBefore = cohorts.Record(Month(_day0.AddMonths(-1)));
        Assert.Equal([1.0, 1.0, 1.0, 1.0, 0.0, null], cohortBefore.Numbers("users", "month0", "month1", "month2", "month3", "month4"));
        Assert.Equal(Month(_day0.AddMonths(2)), cohorts.Records()[^1]["cohort"]);

        var segments = report.Table("segments").Records();
        Assert.Equal(
            [("dept", "sales", 2.0, 0.5, 2.0, 1.0), ("dept", "ops", 1.0, 0.25, 0.0, 0.0), ("remote", "false", 1.0, 0.25, 0.0, 0.0), ("remote", "true", 1.0, 0.25, 1.0, 1.0)],
            segments.Select(s => ((string)s["field"]!, (string)s["value"]!, s.Number("users")!.Value, s.Number("share")!.Value, s.Number("active30")!.Value, s.Number("activeShare")!.Value)));
        Assert.Equal(["dept=sales", "dept=ops", "remote=false", "remote=true"], report.Chart("segments").Categories);
    }

    [Fact]
    public async Task APeriodLongerThanAQuarterCountsSignUpsPerMonth()
    {
        await TellTheStoryAsync();

        var report = await Reader.ReportDocumentAsync(Type, _day0.AddDays(-100), _day0.AddDays(100));

        var signups = report.Table("signups-per-month");
        Assert.DoesNotContain(report.Sections.SelectMany(s => s.Tables), t => t.Name == "signups-per-day");
        Assert.InRange(signups.Rows.Count, 7, 8); // 200 days span seven or eight calendar months
        Assert.All(signups.Records(), r => Assert.Equal(1, ((DateTimeOffset)r["date"]!).Day));
        Assert.Equal(report.Figures["signupsInPeriod"], signups.Records().Sum(r => r.Number("signups")));
        Assert.Equal(signups.Rows.Count, report.Chart("signups-per-month").Categories.Count);
    }

    [Fact]
    public async Task FilterSelectsTheUsersConsidered()
    {
        await TellTheStoryAsync();

        var report = await Reader.ReportDocumentAsync(Type, _day0, _day0.AddDays(75), "fields.dept eq 'sales'");

        // Alice and bob (dave, deleted, still signed up and churned).
        Assert.Equal(2, report.Figures["userCount"]);
        Assert.Equal(2, report.Figures["active30"]);
        Assert.Equal(0, report.Figures["inactive"]);
        Assert.Equal(3, report.Figures["signupsInPeriod"]);
        Assert.Equal(0.5, report.Figures["churnRate"]);
        Assert.Equal([("dept", "sales")], report.Table("segments").Records().Select(s => ((string)s["field"]!, (string)s["value"]!)).Take(1));
        Assert.DoesNotContain(report.Table("segments").Records(), s => Equals(s["value"], "ops"));
    }

    [Fact]
    public async Task BadFiltersAreRefusedAtTheRouteWithTheParsersMessage()
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(new { name = "dept", type = "enum", values = DeptValues })).StatusCode);
        List<string> accepted = [];

        accepted.Add(await Admin.AcceptedFilterAsync(Type, null));
        accepted.Add(await Admin.AcceptedFilterAsync(Type, "status eq 'active' and lastLoginAt ge 2026-01-01"));
        Assert.Contains("Unknown field 'nosuch'", await Admin.RefusedFilterAsync(Type, "nosuch eq 'x'"));
        Assert.Contains("position", await Admin.RefusedFilterAsync(Type, "status eq"));
        Assert.Contains("Type mismatch", await Admin.RefusedFilterAsync(Type, "emailVerified eq 'yes'"));

        // The tenant's user schema decides the custom fields: dept is an enum, level is not in it.
        accepted.Add(await Admin.AcceptedFilterAsync(Type, "fields.dept eq 'ops'"));
        Assert.Contains("Unknown field 'fields.level'", await Admin.RefusedFilterAsync(Type, "fields.level gt 3"));
        Assert.Contains("Type mismatch", await Admin.RefusedFilterAsync(Type, "fields.dept eq 3"));

        // Once the schema has them they are taken, one type per field.
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutSchemaAsync(
            new { name = "dept", type = "enum", values = DeptValues },
            new { name = "remote", type = "boolean" },
            new { name = "level", type = "number" })).StatusCode);
        accepted.Add(await Admin.AcceptedFilterAsync(Type, "fields.level gt 3 and fields.dept eq 'sales' and fields.remote eq true"));
        await Admin.RefusedFilterAsync(Type, "fields.level gt 3 and fields.level eq 'x'");

        // The accepted filters hold when the job builds the report; the refused ones started nothing.
        foreach (var id in accepted)
        {
            var job = await Admin.FinishedJobAsync(id);
            Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the report job ended {job}");
        }

        Assert.Equal(accepted.Order(StringComparer.Ordinal), (await Admin.ListReportsAsync()).Select(r => r.GetProperty("id").GetString()!).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task AnotherTenantsUsersAreNotInTheReport()
    {
        var theirs = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(theirs);
        await them.CreateUserAsync("someone@theirs.example", password: Accounts.Password);
        using var someone = await App.SignInAsAsync(theirs, "someone@theirs.example");
        var (from, to) = (Clock.GetUtcNow().AddDays(-1), Clock.GetUtcNow().AddMinutes(1));

        var mine = await Admin.ReportDocumentAsync(Type, from, to);
        var their = await them.ReportDocumentAsync(Type, from, to);

        Assert.Equal((1.0, 1.0, 1.0), (mine.Figures["userCount"], mine.Figures["signupsInPeriod"], mine.Figures["signIns"]));
        Assert.Equal((2.0, 2.0, 2.0), (their.Figures["userCount"], their.Figures["signupsInPeriod"], their.Figures["signIns"]));
    }

    [Fact]
    public async Task SignInKeepsItsHistoryOnTheUserRowAndTheTypeIsRegistered()
    {
        var id = await Admin.CreateUserIdAsync("erin@insights.example", Accounts.Password);
        await SignInAsync("erin");
        Clock.Advance(TimeSpan.FromDays(3));
        await SignInAsync("erin");

        var row = (await App.StoredUserAsync(Tenant, id))!;
        Assert.Equal(2L, row.GetInt64("LoginCount"));
        Assert.Equal(0b1001L, row.GetInt64("LoginDays")); // today and 3 days before
        Assert.Equal(Clock.GetUtcNow(), row.GetDateTimeOffset("LastLoginAt")!.Value, TimeSpan.FromMilliseconds(1));

        Assert.Equal("users.read", App.ReportType(Type).Permission);
        Assert.Contains(Type, App.Services.GetRequiredService<IOptions<ReportTypeCatalog>>().Value.Types);
    }
}
