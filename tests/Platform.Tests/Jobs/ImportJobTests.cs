using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Platform.Functions.Jobs.Files;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>Bulk imports through <c>POST /api/v1/jobs/imports</c>, run by the durable engine against Azurite.</summary>
public sealed class ImportJobTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs(new Dictionary<string, string?>
    {
        ["Platform:Jobs:ChunkRows"] = "10",
        ["Platform:Jobs:MaxUploadBytes"] = "65536",
    });

    private const string Csv = "text/csv";
    private const string Xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

    private async Task<HttpResponseMessage> UploadAsync(string query, byte[] file, string contentType, HttpClient? client = null)
    {
        using var content = new ByteArrayContent(file);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return await (client ?? Admin).PostAsync("/api/v1/jobs/imports?" + query, content, Ct);
    }

    private async Task<JsonElement> ImportAsync(string query, string file, string contentType = Csv) =>
        await ImportAsync(query, Encoding.UTF8.GetBytes(file), contentType);

    private async Task<JsonElement> ImportAsync(string query, byte[] file, string contentType)
    {
        var response = await UploadAsync(query, file, contentType);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal($"/api/v1/jobs/{job.GetProperty("id").GetString()}", response.Headers.Location?.OriginalString);
        Assert.Equal("queued", job.GetProperty("status").GetString());
        return await FinishedAsync(job.GetProperty("id").GetString()!);
    }

    private Task<JsonElement> FinishedAsync(string id) =>
        Eventually.Until(() => Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}", Ct),
            job => job.GetProperty("status").GetString() is not ("queued" or "running"), $"job {id} to finish", TimeSpan.FromSeconds(90));

    private static (long Total, long Processed, long Succeeded, long Failed) Progress(JsonElement job)
    {
        var p = job.GetProperty("progress");
        return (p.GetProperty("total").GetInt64(), p.GetProperty("processed").GetInt64(), p.GetProperty("succeeded").GetInt64(), p.GetProperty("failed").GetInt64());
    }

    private async Task<List<Dictionary<string, string?>>> ErrorReportAsync(JsonElement job)
    {
        var url = job.GetProperty("errorReportUrl").GetString()!;
        var response = await Admin.GetAsync(url, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        var rows = new List<Dictionary<string, string?>>();
        await foreach (var row in TabularReader.ReadAsync(stream, TabularFormat.Csv, new TabularLimits(), Ct))
        {
            rows.Add(row.Values.ToDictionary(v => v.Key, v => v.Value));
        }

        return rows;
    }

    private async Task<JsonElement?> UserByEmailAsync(string email)
    {
        var page = await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/users?filter={Uri.EscapeDataString($"email eq '{email}'")}", Ct);
        return page.GetProperty("items").EnumerateArray().Select(u => (JsonElement?)u).FirstOrDefault();
    }

    private async Task<List<JsonElement>> ItemsAsync()
    {
        var page = await Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventory/items?pageSize=1000", Ct);
        return page.GetProperty("items").EnumerateArray().ToList();
    }

    [Fact]
    public async Task A_csv_of_users_is_imported_and_a_bad_row_lands_in_the_error_report_without_stopping_the_job()
    {
        var job = await ImportAsync("kind=users", """
            email,displayName
            ada@example.com,Ada Lovelace
            not-an-email,Broken Row
            "grace@example.com","Hopper, Grace"
            """);

        Assert.Equal("completed_with_errors", job.GetProperty("status").GetString());
        Assert.Equal((3, 3, 2, 1), Progress(job));
        Assert.Equal("Hopper, Grace", (await UserByEmailAsync("grace@example.com"))!.Value.GetProperty("displayName").GetString());
        Assert.NotNull(await UserByEmailAsync("ada@example.com"));

        var error = Assert.Single(await ErrorReportAsync(job));
        Assert.Equal("3", error["row"]);
        Assert.Equal("email", error["column"]);
        Assert.Equal("not-an-email", error["value"]);
        Assert.False(string.IsNullOrEmpty(error["message"]));
        Assert.True(job.TryGetProperty("finishedAt", out var finished) && finished.ValueKind == JsonValueKind.String);
    }

    [Fact]
    public async Task Upserting_the_same_items_twice_changes_nothing_the_second_time()
    {
        var file = new StringBuilder("sku;name\n");
        for (var i = 0; i < 25; i++)
        {
            file.Append(CultureInfo($"SKU-{i:D3};Item {i}\n"));
        }

        var first = await ImportAsync("kind=inventory-items&mode=upsert", file.ToString());
        Assert.Equal("succeeded", first.GetProperty("status").GetString());
        Assert.Equal((25, 25, 25, 0), Progress(first));
        var before = (await ItemsAsync()).ToDictionary(i => i.GetProperty("sku").GetString()!, i => i.GetProperty("updatedAt").GetString());

        var second = await ImportAsync("kind=inventory-items&mode=upsert", file.ToString());

        Assert.Equal("succeeded", second.GetProperty("status").GetString());
        var after = (await ItemsAsync()).ToDictionary(i => i.GetProperty("sku").GetString()!, i => i.GetProperty("updatedAt").GetString());
        Assert.Equal(25, after.Count);
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task Creating_items_that_exist_fails_those_rows_only()
    {
        await ImportAsync("kind=inventory-items", "sku,name\nA-1,First\n");

        var job = await ImportAsync("kind=inventory-items", "sku,name\nA-1,Again\nA-2,Second\n");

        Assert.Equal("completed_with_errors", job.GetProperty("status").GetString());
        Assert.Equal((2, 2, 1, 1), Progress(job));
        var error = Assert.Single(await ErrorReportAsync(job));
        Assert.Equal("2", error["row"]);
        Assert.Equal("First", (await ItemsAsync()).Single(i => i.GetProperty("sku").GetString() == "A-1").GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_dry_run_validates_every_row_and_writes_nothing()
    {
        var job = await ImportAsync("kind=inventory-items&dryRun=true", "sku,name\nD-1,Fine\nD-2,\n");

        Assert.Equal("completed_with_errors", job.GetProperty("status").GetString());
        Assert.Equal((2, 2, 1, 1), Progress(job));
        Assert.Contains("Dry run", job.GetProperty("note").GetString(), StringComparison.Ordinal);
        Assert.Equal("name", Assert.Single(await ErrorReportAsync(job))["column"]);
        Assert.Empty(await ItemsAsync());
    }

    [Theory]
    [InlineData("application/json", """[{"sku":"J-1","name":"From an array"},{"sku":"J-2","name":"Second"}]""")]
    [InlineData("application/x-ndjson", "{\"sku\":\"J-1\",\"name\":\"From lines\"}\n{\"sku\":\"J-2\",\"name\":\"Second\"}\n")]
    public async Task Json_arrays_and_ndjson_import_alike(string contentType, string body)
    {
        var job = await ImportAsync("kind=inventory-items", body, contentType);

        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        Assert.Equal(["J-1", "J-2"], (await ItemsAsync()).Select(i => i.GetProperty("sku").GetString()).Order().ToList());
    }

    [Fact]
    public async Task An_xlsx_file_imports_from_its_first_sheet()
    {
        var file = new MemoryStream();
        await using (var writer = TabularWriter.Create(file, TabularFormat.Xlsx, ["sku", "name"]))
        {
            await writer.WriteRowAsync(["X-1", "From Excel"], Ct);
            await writer.WriteRowAsync(["X-2", "Second"], Ct);
        }

        var job = await ImportAsync("kind=inventory-items", file.ToArray(), Xlsx);

        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        Assert.Equal(2, (await ItemsAsync()).Count);
    }

    [Theory]
    [InlineData("sku,name\nB-1,\"unclosed\n", "row")]
    [InlineData("sku,sku\nB-1,B-2\n", "sku")]
    [InlineData("sku,name,colour\nB-1,Thing,red\n", "colour")]
    public async Task A_file_that_cannot_be_read_fails_the_job_with_a_clear_reason(string file, string mentioned)
    {
        var job = await ImportAsync("kind=inventory-items", file);

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains(mentioned, job.GetProperty("error").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Empty(await ItemsAsync());
    }

    [Fact]
    public async Task Bytes_that_are_not_an_xlsx_fail_the_job_instead_of_crashing_it()
    {
        var job = await ImportAsync("kind=inventory-items", Encoding.UTF8.GetBytes("sku,name\nnot,a zip\n"), Xlsx);

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.False(string.IsNullOrWhiteSpace(job.GetProperty("error").GetString()));
    }

    [Fact]
    public async Task Invalid_utf8_fails_the_job_and_names_the_row()
    {
        var bytes = Encoding.UTF8.GetBytes("sku,name\nU-1,Fine\nU-2,").Concat(new byte[] { 0xC3, 0x28, (byte)'\n' }).ToArray();

        var job = await ImportAsync("kind=inventory-items", bytes, Csv);

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("UTF-8", job.GetProperty("error").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Bad_requests_are_refused_before_a_job_starts()
    {
        await (await UploadAsync("kind=spaceships", "a\n"u8.ToArray(), Csv)).ReadProblemAsync(400, "validation_failed");
        await (await UploadAsync("kind=users&mode=merge", "a\n"u8.ToArray(), Csv)).ReadProblemAsync(400, "validation_failed");
        await (await UploadAsync("kind=users&dryRun=maybe", "a\n"u8.ToArray(), Csv)).ReadProblemAsync(400, "validation_failed");
        await (await UploadAsync("kind=users", "a\n"u8.ToArray(), "text/plain")).ReadProblemAsync(415, "unsupported_media_type");
        await (await UploadAsync("kind=users", [], Csv)).ReadProblemAsync(400, "validation_failed");
        await (await UploadAsync("kind=users", new byte[70_000], Csv)).ReadProblemAsync(413, "payload_too_large");

        var jobs = await Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs", Ct);
        Assert.Empty(jobs.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Importing_needs_the_permission_to_write_what_is_imported()
    {
        using var manager = await SignedInAsync("manager@example.com", "manager");
        using var user = await SignedInAsync("user@example.com");

        await (await UploadAsync("kind=inventory-items", "sku,name\nP-1,x\n"u8.ToArray(), Csv, user)).ReadProblemAsync(403, "forbidden");
        Assert.Equal(HttpStatusCode.Accepted, (await UploadAsync("kind=inventory-items", "sku,name\nP-1,x\n"u8.ToArray(), Csv, manager)).StatusCode);
    }

    [Fact]
    public async Task Retrying_with_the_corrected_rows_imports_them_as_a_new_job()
    {
        var job = await ImportAsync("kind=inventory-items", "sku,name\nR-1,Fine\nR-2,\n");
        Assert.Equal("completed_with_errors", job.GetProperty("status").GetString());

        using var corrected = new StringContent("sku,name\nR-2,Now named\n", Encoding.UTF8, Csv);
        var retry = await Admin.PostAsync($"/api/v1/jobs/{job.GetProperty("id").GetString()}/retry", corrected, Ct);

        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        var second = await FinishedAsync((await retry.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!);
        Assert.Equal("succeeded", second.GetProperty("status").GetString());
        Assert.Equal(["R-1", "R-2"], (await ItemsAsync()).Select(i => i.GetProperty("sku").GetString()).Order().ToList());
    }

    [Fact]
    public async Task Retrying_without_a_file_re_imports_only_the_rows_that_failed()
    {
        var job = await ImportAsync("kind=inventory-items", "sku,name\nQ-1,Fine\nQ-2,\nQ-3,Fine too\n");

        var retry = await Admin.PostAsync($"/api/v1/jobs/{job.GetProperty("id").GetString()}/retry", null, Ct);

        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        var second = await FinishedAsync((await retry.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!);
        Assert.Equal((1, 1, 0, 1), Progress(second));
        Assert.Equal("3", Assert.Single(await ErrorReportAsync(second))["row"]);
    }

    [Theory]
    [InlineData("users")]
    [InlineData("inventory-items")]
    [InlineData("inventory-locations")]
    [InlineData("inventory-movements")]
    public async Task Every_kind_has_a_csv_and_an_xlsx_template_with_its_header_and_an_example(string kind)
    {
        var csv = await Admin.GetAsync($"/api/v1/jobs/imports/templates/{kind}.csv", Ct);
        var xlsx = await Admin.GetAsync($"/api/v1/jobs/imports/templates/{kind}.xlsx", Ct);

        Assert.Equal(HttpStatusCode.OK, csv.StatusCode);
        Assert.Equal(HttpStatusCode.OK, xlsx.StatusCode);
        Assert.Equal(Xlsx, xlsx.Content.Headers.ContentType?.MediaType);
        var fromCsv = await ReadAllAsync(await csv.Content.ReadAsStreamAsync(Ct), TabularFormat.Csv);
        var fromXlsx = await ReadAllAsync(new MemoryStream(await xlsx.Content.ReadAsByteArrayAsync(Ct)), TabularFormat.Xlsx);
        Assert.Single(fromCsv);
        Assert.Equal(fromCsv[0].Keys.Order(), fromXlsx[0].Keys.Order());
        await (await Admin.GetAsync("/api/v1/jobs/imports/templates/spaceships.csv", Ct)).ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task The_error_report_of_another_tenants_import_is_not_found()
    {
        var job = await ImportAsync("kind=inventory-items", "sku,name\nT-1,\n");
        var other = await App.SignUpAsync();
        using var stranger = await App.SignedInClientAsync(other);

        await (await stranger.GetAsync(job.GetProperty("errorReportUrl").GetString(), Ct)).ReadProblemAsync(404, "not_found");
    }

    private static async Task<List<IReadOnlyDictionary<string, string?>>> ReadAllAsync(Stream stream, TabularFormat format)
    {
        var rows = new List<IReadOnlyDictionary<string, string?>>();
        await foreach (var row in TabularReader.ReadAsync(stream, format, new TabularLimits(), Ct))
        {
            rows.Add(row.Values);
        }

        return rows;
    }

    private static string CultureInfo(FormattableString text) => FormattableString.Invariant(text);
}
