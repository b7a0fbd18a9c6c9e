using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using Platform.Functions.Reports;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;
using UserApi = Platform.Tests.Users.UserApi;

namespace Platform.Tests.Reports;

/// <summary>
/// The <c>inventory-status</c> report type over locations, items and movements made through HTTP on a fake clock
/// (a bolt bought 100 days before day 0, stock in on day 0, outs on day 70, the report as of day 75). The report is made
/// through <c>POST /api/v1/reports</c> in json and downloaded; its job runs in the app on the same fake clock, which sets
/// the as-of date. The assertions are what the report shows.
/// </summary>
public sealed class InventoryStatusReportTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string Type = "inventory-status";
    protected override bool SignsInAdmin => true;

    // The clock jumps months ahead, and the JobRetention timer fires with it: a retention far longer than that keeps it
    // from purging a report finished moments before.
    protected override IDictionary<string, string?>? Settings => ReportApi.RunsReports(new Dictionary<string, string?> { ["Platform:Jobs:Retention"] = "3650.00:00:00" });

    private DateTimeOffset _day0;
    private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);
    private string _aisleA = "";
    private string _aisleB = "";

    private async Task MoveAsync(string item, object body) =>
        await (await Admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{_ids[item]}/movements", body)).ReadJsonAsync(HttpStatusCode.Created);

    private async Task AdvanceToDayAsync(int day)
    {
        Clock.SetUtcNow(_day0.AddDays(day));
        await SignInAdminAgainAsync();
    }

    /// <summary>
    /// Day -100: bolt (fasteners, 0.5, no location) and 100 in. Day 0: hammer (tools, 10, aisle A, reorder at 5, reorder
    /// quantity 10), saw (tools, 20, A), glue (supplies, 1.5, B, expires day 200), milk (food, 2, no location, expires day
    /// 85) and gone (archived); 10, 2, 100, 4 and 3 in; 1 saw to B. Day 70: hammer 3 and 4 out, glue 10 out. As of day 75.
    /// </summary>
    private async Task StockUpAsync()
    {
        var start = Clock.GetUtcNow().UtcDateTime.Date.AddDays(1).AddHours(12);
        _day0 = new DateTimeOffset(start, TimeSpan.Zero).AddDays(100);
        await AdvanceToDayAsync(-100);
        _ids["bolt"] = (await Admin.CreateItemAsync("B-1", "Bolt", new { category = "fasteners", unitCost = 0.5 })).Id();
        await MoveAsync("bolt", new { type = "in", quantity = 100 });

        await AdvanceToDayAsync(0);
        _aisleA = (await Admin.CreateLocationAsync("Aisle A", code: "A1")).Id();
        _aisleB = await Admin.CreateLocationIdAsync("Aisle B");
        _ids["hammer"] = (await Admin.CreateItemAsync("H-1", "Hammer", new { category = "tools", unitCost = 10.0, locationId = _aisleA, reorderPoint = 5, reorderQuantity = 10, supplier = "Acme" })).Id();
        _ids["saw"] = (await Admin.CreateItemAsync("S-1", "Saw", new { category = "tools", unitCost = 20.0, locationId = _aisleA })).Id();
        _ids["glue"] = (await Admin.CreateItemAsync("G-1", "Glue", new { category = "supplies", unitCost = 1.5, locationId = _aisleB, expiresAt = _day0.AddDays(200) })).Id();
        _ids["milk"] = (await Admin.CreateItemAsync("M-1", "Milk", new { category = "food", unitCost = 2.0, expiresAt = _day0.AddDays(85) })).Id();
        _ids["gone"] = (await Admin.CreateItemAsync("X-1", "Gone", new { category = "tools", unitCost = 100.0 })).Id();
        await MoveAsync("hammer", new { type = "in", quantity = 10 });
        await MoveAsync("saw", new { type = "in", quantity = 2 });
        await MoveAsync("glue", new { type = "in", quantity = 100 });
        await MoveAsync("milk", new { type = "in", quantity = 4 });
        await MoveAsync("gone", new { type = "in", quantity = 3 });
        await MoveAsync("saw", new { type = "transfer", quantity = 1, toLocationId = _aisleB });
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.SendAsync(HttpMethod.Delete, $"{InventoryApi.Items}/{_ids["gone"]}")).StatusCode);

        await AdvanceToDayAsync(70);
        await MoveAsync("hammer", new { type = "out", quantity = 3 });
        await MoveAsync("hammer", new { type = "out", quantity = 4 });
        await MoveAsync("glue", new { type = "out", quantity = 10 });
        await AdvanceToDayAsync(75);
    }

    [Fact]
    public async Task ReportShowsValueLowStockExpiryTurnoverDeadStockAndMovements()
    {
        await StockUpAsync();

        var report = await Admin.ReportDocumentAsync(Type, _day0, _day0.AddDays(75));

        // Bolt 50, hammer 3 x 10, saw 2 x 20, glue 90 x 1.5, milk 4 x 2; the archived item is not considered.
        Assert.Equal(5, report.Figures["itemCount"]);
        Assert.Equal(263, report.Figures["stockValue"]);
        Assert.Equal(1, report.Figures["lowStockCount"]);
        Assert.Equal(1, report.Figures["expiringSoonCount"]);
        Assert.Equal(0, report.Figures["expiredCount"]);
        Assert.Equal(1, report.Figures["deadStockCount"]);
        Assert.Equal(50, report.Figures["deadStockValue"]);
        Assert.Equal(8, report.Figures["movementCount"]);
        Assert.Equal(17, report.Figures["unitsOut"]);
        Assert.Equal(Math.Round(85 / 263.0, 4), report.Figures["turnover"]); // value out 7 x 10 + 10 x 1.5

        var categories = report.Table("value-by-category").Records();
        Assert.Equal(
            [("supplies", 1.0, 90.0, 135.0), ("tools", 2.0, 5.0, 70.0), ("fasteners", 1.0, 100.0, 50.0), ("food", 1.0, 4.0, 8.0)],
            categories.Select(c => ((string)c["category"]!, c.Number("items")!.Value, c.Number("quantity")!.Value, c.Number("value")!.Value)));
        Assert.Equal(["supplies", "tools", "fasteners", "food"], report.Chart("value-by-category").Categories);

        // The saw is in both aisles; milk and the bolt have no location.
        var locations = report.Table("value-by-location").Records();
        Assert.Equal(
            [("Aisle B", 2.0, 91.0, 155.0), ("(no location)", 2.0, 104.0, 58.0), ("Aisle A (A1)", 2.0, 4.0, 50.0)],
            locations.Select(c => ((string)c["location"]!, c.Number("items")!.Value, c.Number("quantity")!.Value, c.Number("value")!.Value)));

        // 7 out in the last 30 days: 0.2333 a day; 5 + 30 days of it - 3 on hand = 9, less than the reorder quantity 10.
        var low = Assert.Single(report.Table("low-stock").Records());
        Assert.Equal((_ids["hammer"], "H-1", "Hammer", "Acme"), ((string)low["itemId"]!, (string)low["sku"]!, (string)low["name"]!, (string)low["supplier"]!));
        Assert.Equal((3.0, 5.0, 10.0, 12.9, 100.0),
            (low.Number("onHand")!.Value, low.Number("reorderPoint")!.Value, low.Number("suggestedQuantity")!.Value, low.Number("daysOfStockLeft")!.Value, low.Number("estimatedCost")!.Value));
        // The same suggestion the reorder-suggestions route makes now (day 75 is now).
        var suggested = Assert.Single(await Admin.ListAsync("/api/v1/inventory/reorder-suggestions"));
        Assert.Equal((suggested.Str("itemId"), suggested.Num("suggestedQuantity")), ((string?)low["itemId"], low.Number("suggestedQuantity")!.Value));

        var expiring = Assert.Single(report.Table("expiring-soon").Records());
        Assert.Equal((_ids["milk"], 4.0, 10.0, 8.0), ((string)expiring["itemId"]!, expiring.Number("quantity")!.Value, expiring.Number("daysLeft")!.Value, expiring.Number("value")!.Value));
        Assert.Equal(_day0.AddDays(85), expiring["expiresAt"]);

        var turnover = report.Table("turnover").Records();
        Assert.Equal(
            [("G-1", 10.0, 90.0, 0.11, 675.0), ("H-1", 7.0, 3.0, 2.33, 32.1)],
            turnover.Select(t => ((string)t["sku"]!, t.Number("unitsOut")!.Value, t.Number("onHand")!.Value, t.Number("turnover")!.Value, t.Number("daysOfCover")!.Value)));

        var dead = Assert.Single(report.Table("dead-stock").Records());
        Assert.Equal(("B-1", 100.0, 50.0), ((string)dead["sku"]!, dead.Number("quantity")!.Value, dead.Number("value")!.Value));
        Assert.Null(dead["lastOutAt"]);

        // Day 0: four in and the transfer (the archived item's in is not counted); day 70: three out.
        var movements = report.Table("movements-per-day");
        Assert.Equal(76, movements.Rows.Count); // 12:00 on day 0 to 12:00 on day 75: 76 UTC days
        var first = movements.Record(new DateTimeOffset(_day0.UtcDateTime.Date, TimeSpan.Zero));
        Assert.Equal([4.0, 0, 1, 0, 116, 0], first.Numbers("in", "out", "transfer", "adjust", "unitsIn", "unitsOut"));
        var seventieth = movements.Record(new DateTimeOffset(_day0.UtcDateTime.Date.AddDays(70), TimeSpan.Zero));
        Assert.Equal([0.0, 3, 0, 0, 0, 17], seventieth.Numbers("in", "out", "transfer", "adjust", "unitsIn", "unitsOut"));
        var chart = report.Chart("movements-per-day");
        Assert.Equal(ReportChartKind.StackedBar, chart.Kind);
        Assert.Equal(["in", "out", "transfer", "adjust"], chart.Series.Select(s => s.Name));
        Assert.Equal(3, chart.Series[1].Values[70]);
        Assert.Equal(_day0.AddDays(70).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), chart.Categories[70]);
    }

    [Fact]
    public async Task FilterSelectsTheItemsConsideredAndTheirMovements()
    {
        await StockUpAsync();

        var report = await Admin.ReportDocumentAsync(Type, _day0, _day0.AddDays(75), "category eq 'tools'");

        Assert.Equal(2, report.Figures["itemCount"]);
        Assert.Equal(70, report.Figures["stockValue"]);
        Assert.Equal(1, report.Figures["lowStockCount"]);
        Assert.Equal(0, report.Figures["expiringSoonCount"]);
        Assert.Equal(0, report.Figures["deadStockCount"]);
        Assert.Equal(5, report.Figures["movementCount"]); // hammer in, saw in, saw transfer, two hammer outs
        Assert.Equal(["tools"], report.Table("value-by-category").Records().Select(c => (string)c["category"]!));
        Assert.Equal(["H-1"], report.Table("turnover").Records().Select(t => (string)t["sku"]!));

        // The longest period a report may cover, 366 days, is counted per calendar month (over a quarter, days would be
        // unreadable), with the tools' five movements in it; a longer one is refused before a job starts.
        var longer = await Admin.ReportDocumentAsync(Type, _day0.AddDays(-200), _day0.AddDays(166), "category eq 'tools'");
        var perMonth = longer.Table("movements-per-month").Records();
        Assert.InRange(perMonth.Count, 12, 13);
        Assert.Equal(5, perMonth.Sum(m => m.Number("in") + m.Number("out") + m.Number("transfer")));
        var first = _day0.AddDays(-200).UtcDateTime;
        Assert.Equal(new DateTimeOffset(first.Year, first.Month, 1, 0, 0, 0, TimeSpan.Zero), perMonth[0]["date"]);
        var tooLong = await (await Admin.PostAsJsonAsync("/api/v1/reports", ReportTypeTesting.Request(Type, _day0.AddDays(-200), _day0.AddDays(300), "category eq 'tools'"), Ct))
            .ReadProblemAsync(400, "validation_failed");
        Assert.True(tooLong.GetProperty("errors").TryGetProperty("to", out _), $"to in {tooLong}");
    }

    [Fact]
    public async Task BadFiltersAreRefusedAtTheRouteWithTheParsersMessage()
    {
        List<string> accepted = [];

        accepted.Add(await Admin.AcceptedFilterAsync(Type, null));
        accepted.Add(await Admin.AcceptedFilterAsync(Type, "quantity le 5 and tags has 'x' and fields.colour eq 'red'"));
        Assert.Contains("Unknown field 'colour'", await Admin.RefusedFilterAsync(Type, "colour eq 'red'"));
        Assert.Contains("Type mismatch", await Admin.RefusedFilterAsync(Type, "quantity gt 'many'"));
        Assert.Contains("position", await Admin.RefusedFilterAsync(Type, "(sku eq 'x'"));

        // The type needs inventory.read besides reports.read.
        (await UserApi.PutRoleAsync(Admin, "report-reader", "reports.read")).EnsureSuccessStatusCode();
        (await UserApi.PutRoleAsync(Admin, "stock-reader", "reports.read", "inventory.read")).EnsureSuccessStatusCode();
        using var reportReader = await SignedInAsync("reports@example.com", "report-reader");
        using var stockReader = await SignedInAsync("stock@example.com", "stock-reader");
        var forbidden = await (await reportReader.PostAsJsonAsync("/api/v1/reports", new { type = Type, format = "json" }, Ct)).ReadProblemAsync(403, "forbidden");
        Assert.Contains("inventory.read", forbidden.GetProperty("detail").GetString(), StringComparison.Ordinal);
        accepted.Add(await stockReader.AcceptedFilterAsync(Type, null));

        // The accepted filters hold when the job builds the report; the refused ones started nothing.
        foreach (var id in accepted)
        {
            var job = await Admin.FinishedJobAsync(id);
            Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the report job ended {job}");
        }

        Assert.Equal(accepted.Order(StringComparer.Ordinal), (await Admin.ListReportsAsync()).Select(r => r.GetProperty("id").GetString()!).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task AnotherTenantsItemsAreNotInTheReport()
    {
        var theirs = await App.SignUpAsync();
        using var them = await App.SignedInClientAsync(theirs);
        var item = (await them.CreateItemAsync("THEIRS-1", extra: new { unitCost = 5.0, reorderPoint = 10 })).Id();
        await (await them.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{item}/movements", new { type = "in", quantity = 4 })).ReadJsonAsync(HttpStatusCode.Created);

        var mine = await Admin.ReportDocumentAsync(Type, Clock.GetUtcNow().AddDays(-1), Clock.GetUtcNow().AddMinutes(1));
        var their = await them.ReportDocumentAsync(Type, Clock.GetUtcNow().AddDays(-1), Clock.GetUtcNow().AddMinutes(1));

        Assert.Equal((0.0, 0.0, 0.0, 0.0), (mine.Figures["itemCount"], mine.Figures["stockValue"], mine.Figures["lowStockCount"], mine.Figures["movementCount"]));
        Assert.Equal((1.0, 20.0, 1.0, 1.0), (their.Figures["itemCount"], their.Figures["stockValue"], their.Figures["lowStockCount"], their.Figures["movementCount"]));
    }
}
