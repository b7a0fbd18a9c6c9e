using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Backups;

/// <summary>
/// An instance that stops in the middle of a backup or a restore, with another instance on the same storage (one task
/// hub) taking over, as a scaled-out deployment does after a crash or a deploy: the job ends cleanly, and a restore
/// into a new tenant shows nothing of that tenant until every row is in.
/// </summary>
public sealed class BackupCrashTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Takeover = TimeSpan.FromMinutes(3);

    /// <summary>Rows of 60 KB in one table: about 12 MB, so a part takes long enough for the stop to land inside the job.</summary>
    private const int BigRows = 200;

    /// <summary>One part at a time, and messages of a stopped instance back after 10 s instead of the default minutes.</summary>
    private static IDictionary<string, string?> Settings() => PlatformApp.RunsJobs(new Dictionary<string, string?>
    {
        ["Platform:Backups:PartParallelism"] = "1",
        ["Platform:Jobs:MessageVisibilityTimeout"] = "00:00:10",
        ["Platform:Jobs:StopTimeout"] = "00:00:01",
    });

    [Fact]
    public async Task A_backup_cut_off_mid_way_is_finished_by_another_instance_and_reads_back_intact()
    {
        var prefix = PlatformApp.NewPrefix();
        TestTenant tenant;
        string token, backupId;
        await using (var first = await new PlatformApp(azurite, prefix, Settings()).ReadyAsync())
        {
            tenant = await first.SignUpAsync();
            await WriteBigRowsAsync(first, tenant.Id);
            token = (await first.LoginAsync(tenant)).AccessToken;
            using var client = first.CreateClient(token);
            backupId = (await client.StartBackupAsync()).GetProperty("id").GetString()!;
            await CutOffAsync(client, backupId);
        }

        await using var second = await new PlatformApp(azurite, prefix, Settings()).ReadyAsync();
        using var resumed = second.CreateClient(token);
        var job = await resumed.FinishedJobAsync(backupId, Takeover);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the backup ended {job}");

        var backup = await resumed.GetBackupAsync(backupId);
        Assert.True(backup.GetProperty("verified").GetBoolean());
        Assert.Equal(BigRows, (await second.ReadPartAsync(tenant.Id, backup, "workflows")).Count(l => l.GetProperty("k").GetString()!.StartsWith("big:", StringComparison.Ordinal)));
        Assert.Equal("succeeded", (await resumed.VerifyBackupAsync(backupId)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_restore_into_a_new_tenant_cut_off_mid_way_shows_no_tenant_until_another_instance_finished_it()
    {
        var prefix = PlatformApp.NewPrefix();
        TestTenant tenant;
        string token, restoreId;
        var slug = "crash-sbx-" + prefix[1..].ToLowerInvariant();
        await using (var first = await new PlatformApp(azurite, prefix, Settings()).ReadyAsync())
        {
            tenant = await first.SignUpAsync();
            await WriteBigRowsAsync(first, tenant.Id);
            token = (await first.LoginAsync(tenant)).AccessToken;
            using var client = first.CreateClient(token);
            var backup = await client.BackupAsync();
            var response = await client.PostAsJsonAsync($"/api/v1/backups/{backup.BackupId()}/restore", new { targetTenantSlug = slug }, Ct);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            restoreId = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
            await CutOffAsync(client, restoreId);
        }

        await using var second = await new PlatformApp(azurite, prefix, Settings()).ReadyAsync();
        using var resumed = second.CreateClient(token);

        // Part of the copy is written, but the tenant does not exist yet: its directory row is the restore's last write.
        var directory = second.Services.GetRequiredService<TenantDirectory>();
        Assert.Null(await directory.FindBySlugAsync(slug, Ct));

        var job = await Eventually.Until(async () =>
        {
            // The directory first: a tenant seen here must already be whole, whatever the job says a moment later.
            if (await directory.FindBySlugAsync(slug, Ct) is { } visible)
            {
                Assert.Equal(BigRows, await BigRowsOfAsync(second, visible.Id));
            }

            return await resumed.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{restoreId}", Ct);
        }, j => j.GetProperty("status").GetString() is not ("queued" or "running"), "the restore to finish", Takeover);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the restore ended {job}");

        var restored = (await directory.FindBySlugAsync(slug, Ct))!;
        Assert.Equal(BigRows, await BigRowsOfAsync(second, restored.Id));
        using var sandbox = await second.SignedInClientAsync(tenant with { Slug = slug });
        Assert.Equal(HttpStatusCode.OK, (await sandbox.GetAsync("/api/v1/users", Ct)).StatusCode);
    }

    private static async Task<int> BigRowsOfAsync(PlatformApp app, string tenantId)
    {
        var rows = 0;
        await foreach (var row in app.Storage.Table("workflows").QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {tenantId}"), select: ["RowKey"], cancellationToken: Ct))
        {
            rows += row.RowKey.StartsWith("big:", StringComparison.Ordinal) ? 1 : 0;
        }

        return rows;
    }

    /// <summary>Waits until the job has finished a first part, and checks it is still running when its instance goes.</summary>
    private static async Task CutOffAsync(HttpClient client, string jobId)
    {
        var job = await Eventually.Until(() => client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{jobId}", Ct),
            j => j.GetProperty("progress").GetProperty("processed").GetInt64() >= 1 || j.GetProperty("status").GetString() is not ("queued" or "running"),
            "the job's first part", Takeover);

        // Not a check of speed: a job done before the stop would prove nothing about one cut off.
        Assert.True(job.GetProperty("status").GetString() == "running", $"the job was to be cut off while running: {job}");
    }

    private static async Task WriteBigRowsAsync(PlatformApp app, string tenantId)
    {
        var workflows = app.Storage.TenantTable("workflows").For(new TenantId(tenantId));
        await Parallel.ForEachAsync(Enumerable.Range(0, BigRows), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = Ct }, async (i, ct) =>
            await workflows.UpsertAsync(new TableEntity(tenantId, $"big:{i:D4}") { ["A"] = new string('a', 30_000), ["B"] = new string('b', 30_000) }, ct));
    }
}
