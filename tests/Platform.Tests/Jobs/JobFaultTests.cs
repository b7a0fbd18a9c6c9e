using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>
/// The durable engine under faults, with app instances sharing one storage prefix (one task hub) the way scaled-out
/// instances do: an instance stopped mid-import, two instances running jobs at once, a message that keeps coming back.
/// </summary>
public sealed class JobFaultTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Takeover = TimeSpan.FromMinutes(3);

    private static Dictionary<string, string?> SmallChunks(int parallelism = 2) => new()
    {
        ["Platform:Jobs:ChunkRows"] = "10",
        ["Platform:Jobs:ChunkParallelism"] = parallelism.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Platform:Jobs:StopTimeout"] = "00:00:01",
    };

    private static byte[] Items(int count, string prefix)
    {
        var csv = new StringBuilder("sku,name\n");
        for (var i = 0; i < count; i++)
        {
            csv.Append(FormattableString.Invariant($"{prefix}-{i:D5},Item {i}\n"));
        }

        return Encoding.UTF8.GetBytes(csv.ToString());
    }

    private static async Task<string> StartImportAsync(HttpClient client, byte[] csv)
    {
        using var content = new ByteArrayContent(csv);
        content.Headers.ContentType = new("text/csv");
        var response = await client.PostAsync("/api/v1/jobs/imports?kind=inventory-items", content, Ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
    }

    private static Task<JsonElement> FinishedAsync(HttpClient client, string id) => client.FinishedJobAsync(id, Takeover);

    private static async Task<List<string>> SkusAsync(HttpClient client)
    {
        var skus = new List<string>();
        string? token = null;
        do
        {
            var page = await client.GetFromJsonAsync<JsonElement>(
                "/api/v1/inventory/items?pageSize=1000" + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token)), Ct);
            skus.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("sku").GetString()!));
            token = page.GetProperty("continuationToken").GetString();
        }
        while (token is not null);

        return skus;
    }

    [Fact]
    public async Task An_import_cut_off_mid_way_is_finished_by_another_instance_with_every_row_applied_exactly_once()
    {
        var prefix = PlatformApp.NewPrefix();
        const int rows = 300;
        string jobId;
        string token;
        TestTenant tenant;
        await using (var first = await new PlatformApp(azurite, prefix, PlatformApp.RunsJobs(SmallChunks(parallelism: 1))).ReadyAsync())
        {
            tenant = await first.SignUpAsync();
            token = (await first.LoginAsync(tenant)).AccessToken;
            using var client = first.CreateClient(token);
            jobId = await StartImportAsync(client, Items(rows, "K"));
            await Eventually.Until(() => client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{jobId}", Ct),
                job => job.GetProperty("progress").GetProperty("processed").GetInt64() >= 30, "a few chunks to be applied", Takeover);

            // The instance goes away with chunks in flight: its stop gives them 1 s, then abandons them.
        }

        await using var second = await new PlatformApp(azurite, prefix, PlatformApp.RunsJobs(SmallChunks())).ReadyAsync();
        using var resumed = second.CreateClient(token);
        var job = await FinishedAsync(resumed, jobId);

        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        var progress = job.GetProperty("progress");
        Assert.Equal(rows, progress.GetProperty("total").GetInt64());
        Assert.Equal(rows, progress.GetProperty("succeeded").GetInt64());
        Assert.Equal(0, progress.GetProperty("failed").GetInt64());
        var skus = await SkusAsync(resumed);
        Assert.Equal(rows, skus.Count);
        Assert.Equal(rows, skus.Distinct().Count());
    }

    [Fact]
    public async Task A_cancelled_import_starts_no_further_chunk_keeps_exactly_what_it_applied_and_a_retry_applies_the_rest()
    {
        const int rows = 1000;
        await using var app = await new PlatformApp(azurite, settings: PlatformApp.RunsJobs(SmallChunks(parallelism: 3))).ReadyAsync();
        var tenant = await app.SignUpAsync();
        using var client = await app.SignedInClientAsync(tenant);
        var jobId = await StartImportAsync(client, Items(rows, "X"));
        await Eventually.Until(() => client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{jobId}", Ct),
            job => job.GetProperty("progress").GetProperty("processed").GetInt64() >= 30, "a few chunks to be applied", Takeover);

        var cancel = await client.PostAsync($"/api/v1/jobs/{jobId}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var cancelled = await FinishedAsync(client, jobId);

        // The chunks in flight when the cancel came finish; no chunk starts after it. What the job says it applied is
        // exactly what is stored, in whole chunks.
        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        var processed = cancelled.GetProperty("progress").GetProperty("processed").GetInt64();
        Assert.InRange(processed, 30, rows - 10);
        Assert.Equal(0, processed % 10);
        Assert.Equal(processed, cancelled.GetProperty("progress").GetProperty("succeeded").GetInt64());
        Assert.Contains($"after {processed} of {rows}", cancelled.GetProperty("note").GetString(), StringComparison.Ordinal);
        Assert.Equal(processed, (await SkusAsync(client)).Count);

        var retry = await client.PostAsync($"/api/v1/jobs/{jobId}/retry", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        var resumed = await Eventually.Until(() => client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{jobId}", Ct),
            job => job.GetProperty("status").GetString() == "succeeded", "the retried import to succeed", Takeover);

        Assert.Equal(rows, resumed.GetProperty("progress").GetProperty("succeeded").GetInt64());
        var skus = await SkusAsync(client);
        Assert.Equal(rows, skus.Count);
        Assert.Equal(rows, skus.Distinct().Count());
    }

    [Fact]
    public async Task Two_instances_on_one_task_hub_run_each_job_once_with_exact_counts()
    {
        var prefix = PlatformApp.NewPrefix();
        await using var first = await new PlatformApp(azurite, prefix, PlatformApp.RunsJobs(SmallChunks())).ReadyAsync();
        await using var second = await new PlatformApp(azurite, prefix, PlatformApp.RunsJobs(SmallChunks())).ReadyAsync();
        var tenant = await first.SignUpAsync();
        var token = (await first.LoginAsync(tenant)).AccessToken;
        using var viaFirst = first.CreateClient(token);
        using var viaSecond = second.CreateClient(token);

        var jobs = new[]
        {
            await StartImportAsync(viaFirst, Items(120, "A")),
            await StartImportAsync(viaSecond, Items(120, "B")),
            await StartImportAsync(viaFirst, Items(120, "C")),
        };

        foreach (var id in jobs)
        {
            var job = await FinishedAsync(viaSecond, id);
            Assert.Equal("succeeded", job.GetProperty("status").GetString());
            Assert.Equal(120, job.GetProperty("progress").GetProperty("succeeded").GetInt64());
            Assert.Equal(0, job.GetProperty("progress").GetProperty("failed").GetInt64());
        }

        var skus = await SkusAsync(viaFirst);
        Assert.Equal(360, skus.Count);
        Assert.Equal(360, skus.Distinct().Count());
    }

    [Fact]
    public async Task A_job_whose_message_keeps_coming_back_unprocessed_is_failed_with_the_reason()
    {
        // An orchestration no worker knows (as after a deploy that dropped a job type with instances in flight): DTFx
        // abandons its message again and again and only logs it.
        var poisonAfterTwo = PlatformApp.RunsJobs(new Dictionary<string, string?> { ["Platform:Jobs:PoisonDequeueCount"] = "2" });
        await using var app = await new PlatformApp(azurite, settings: poisonAfterTwo).ReadyAsync();
        var tenant = await app.SignUpAsync();
        await using var scope = app.Services.CreateAsyncScope();
        var jobId = (await scope.ServiceProvider.GetRequiredService<JobCommands>()
            .StartAsync(new Caller(new TenantId(tenant.Id), tenant.AdminId, "test"), "test.unknown-type", new TestJobs.Parameters(), Ct)).Id;
        using var client = await app.SignedInClientAsync(tenant);

        var job = await FinishedAsync(client, jobId);

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("delivered 2 times", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        // The verdict is recorded first, then published: the audit entry follows shortly.
        await Eventually.Until(() => client.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=job.failed", Ct),
            audit => audit.GetProperty("items").EnumerateArray().Any(e => e.GetProperty("targetId").GetString() == jobId), "the job.failed audit entry");
        await (await client.PostAsync($"/api/v1/jobs/{jobId}/retry", null, Ct)).ReadProblemAsync(409, "job_poisoned");
    }
}
