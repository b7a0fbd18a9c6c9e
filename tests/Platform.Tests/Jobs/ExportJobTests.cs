using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Functions.Jobs.Files;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>Exports through <c>POST /api/v1/jobs/exports</c>, downloaded through the job's authenticated result route.</summary>
public sealed class ExportJobTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs();

    private async Task<JsonElement> ExportAsync(object request)
    {
        var response = await Admin.PostAsJsonAsync("/api/v1/jobs/exports", request, Ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
        return await Eventually.Until(() => Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}", Ct),
            job => job.GetProperty("status").GetString() is not ("queued" or "running"), $"export {id} to finish", TimeSpan.FromSeconds(90));
    }

    private async Task<List<IReadOnlyDictionary<string, string?>>> DownloadAsync(JsonElement job, TabularFormat format)
    {
        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        var response = await Admin.GetAsync(job.GetProperty("resultUrl").GetString(), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var rows = new List<IReadOnlyDictionary<string, string?>>();
        await foreach (var row in TabularReader.ReadAsync(new MemoryStream(await response.Content.ReadAsByteArrayAsync(Ct)), format, new TabularLimits(), Ct))
        {
            rows.Add(row.Values);
        }

        return rows;
    }

    private async Task CreateItemAsync(string sku, string name) =>
        (await Admin.PostAsJsonAsync("/api/v1/inventory/items", new { sku, name }, Ct)).EnsureSuccessStatusCode();

    [Theory]
    [InlineData("csv", TabularFormat.Csv)]
    [InlineData("json", TabularFormat.Json)]
    [InlineData("xlsx", TabularFormat.Xlsx)]
    public async Task Items_export_to_every_format_and_read_back(string format, TabularFormat tabular)
    {
        await CreateItemAsync("E-1", "Bolt");
        await CreateItemAsync("E-2", "Nut");

        var job = await ExportAsync(new { kind = "inventory-items", format });

        var rows = await DownloadAsync(job, tabular);
        Assert.Equal(["E-1", "E-2"], rows.Select(r => r["sku"]).Order().ToList());
        Assert.Equal(2, job.GetProperty("progress").GetProperty("succeeded").GetInt64());
    }

    [Fact]
    public async Task A_filtered_export_holds_only_the_matching_rows()
    {
        await CreateItemAsync("F-1", "Bolt");
        await CreateItemAsync("F-2", "Nut");

        var job = await ExportAsync(new { kind = "inventory-items", format = "csv", filter = "sku eq 'F-2'" });

        Assert.Equal(["F-2"], (await DownloadAsync(job, TabularFormat.Csv)).Select(r => r["sku"]).ToList());
    }

    [Fact]
    public async Task Cells_that_would_run_as_spreadsheet_formulas_are_neutralised()
    {
        (await Admin.PostAsJsonAsync("/api/v1/inventory/items", new { sku = "F-1", name = "=1+2", category = "@SUM(A1:A9)" }, Ct)).EnsureSuccessStatusCode();

        var csv = await ExportAsync(new { kind = "inventory-items", format = "csv" });
        var xlsx = await ExportAsync(new { kind = "inventory-items", format = "xlsx" });

        foreach (var row in (await DownloadAsync(csv, TabularFormat.Csv)).Concat(await DownloadAsync(xlsx, TabularFormat.Xlsx)))
        {
            Assert.Equal("'=1+2", row["name"]);
            Assert.Equal("'@SUM(A1:A9)", row["category"]);
            Assert.Equal("F-1", row["sku"]);
        }
    }

    [Fact]
    public async Task A_users_export_never_holds_secrets()
    {
        var job = await ExportAsync(new { kind = "users", format = "json" });

        var response = await Admin.GetAsync(job.GetProperty("resultUrl").GetString(), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Contains(Tenant.AdminEmail, text, StringComparison.Ordinal);
        Assert.DoesNotContain("password", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("$argon2", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_filter_or_kind_or_format_is_refused_before_a_job_starts()
    {
        await (await Admin.PostAsJsonAsync("/api/v1/jobs/exports", new { kind = "inventory-items", filter = "sku eq" }, Ct)).ReadProblemAsync(400, "invalid_filter");
        await (await Admin.PostAsJsonAsync("/api/v1/jobs/exports", new { kind = "spaceships" }, Ct)).ReadProblemAsync(400, "validation_failed");
        await (await Admin.PostAsJsonAsync("/api/v1/jobs/exports", new { kind = "users", format = "pdf" }, Ct)).ReadProblemAsync(400, "validation_failed");
        await (await Admin.PostAsJsonAsync("/api/v1/jobs/exports", new { kind = "users", filter = new string('x', 3000) }, Ct)).ReadProblemAsync(400, "validation_failed");
    }

    [Fact]
    public async Task Downloading_a_users_export_needs_users_read_not_just_jobs_read()
    {
        var job = await ExportAsync(new { kind = "users", format = "csv" });
        using var user = await SignedInAsync("reader@example.com");

        Assert.Equal(HttpStatusCode.OK, (await user.GetAsync($"/api/v1/jobs/{job.GetProperty("id").GetString()}", Ct)).StatusCode);
        await (await user.GetAsync(job.GetProperty("resultUrl").GetString(), Ct)).ReadProblemAsync(403, "forbidden");
    }

    [Fact]
    public async Task Another_tenant_cannot_download_the_result()
    {
        var job = await ExportAsync(new { kind = "users", format = "csv" });
        var other = await App.SignUpAsync();
        using var stranger = await App.SignedInClientAsync(other);

        await (await stranger.GetAsync(job.GetProperty("resultUrl").GetString(), Ct)).ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task The_audit_trail_exports_with_the_changes_it_recorded()
    {
        await CreateItemAsync("A-1", "Audited");

        var job = await ExportAsync(new { kind = "audit", format = "csv" });

        var rows = await DownloadAsync(job, TabularFormat.Csv);
        Assert.Contains(rows, r => r["action"] == "inventory.item.created");
    }
}
