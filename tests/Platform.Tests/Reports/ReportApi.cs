using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Reports;

/// <summary>Starting reports and waiting for them through the API, as a client would.</summary>
public static class ReportApi
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// An app that runs report jobs. Its engine messages stay invisible for a minute instead of the tests' usual ten
    /// seconds: on a loaded two-core run, rendering a pdf alongside three other test classes outlasted ten seconds and
    /// the redelivered messages had the job declared poisoned. No test here kills an instance, so nothing waits on it.
    /// </summary>
    public static IDictionary<string, string?> RunsReports(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?> { ["Platform:Jobs:MessageVisibilityTimeout"] = "00:01:00" };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return PlatformApp.RunsJobs(settings);
    }

    /// <summary>Starts a report and waits for its job to finish; the finished job.</summary>
    public static async Task<JsonElement> ReportAsync(this HttpClient client, object request)
    {
        var response = await client.PostAsJsonAsync("/api/v1/reports", request, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"POST /api/v1/reports: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        var job = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal($"/api/v1/jobs/{job.GetProperty("id").GetString()}", response.Headers.Location?.OriginalString);
        var finished = await client.FinishedJobAsync(job.GetProperty("id").GetString()!);
        Assert.True(finished.GetProperty("status").GetString() == "succeeded", $"the report job ended {finished}");
        return finished;
    }

    /// <summary>Runs a few exports, so the tenant has jobs for a jobs-summary report to count.</summary>
    public static async Task RunExportsAsync(this HttpClient client, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var response = await client.PostAsJsonAsync("/api/v1/jobs/exports", new { kind = "users", format = "csv" }, Ct);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            await client.FinishedJobAsync((await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!);
        }
    }

    public static async Task<List<JsonElement>> ListReportsAsync(this HttpClient client, string query = "")
    {
        var response = await client.GetAsync("/api/v1/reports" + query, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("items").EnumerateArray()];
    }

    public static async Task<(byte[] Body, HttpResponseMessage Response)> DownloadReportAsync(this HttpClient client, string id)
    {
        var response = await client.GetAsync($"/api/v1/reports/{id}/download", Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"download: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return (await response.Content.ReadAsByteArrayAsync(Ct), response);
    }
}
