using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Backups;

/// <summary>Rows near the 64 KB a property may hold (workflows, receivers, users with custom fields) restore in transactions cut by size.</summary>
public sealed class BackupLargeRowsTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    private const int Rows = 300;

    [Fact]
    public async Task Hundreds_of_60_KB_rows_restore_into_a_sandbox_and_over_the_live_tenant()
    {
        // 300 rows of ~60 KB (18 MB): 98 of them would be a 5.9 MB transaction, over the 4 MiB one may carry.
        var tenant = new TenantId(Tenant.Id);
        var workflows = App.Storage.TenantTable("workflows").For(tenant);
        for (var i = 0; i < Rows; i++)
        {
            await workflows.UpsertAsync(Big(Tenant.Id, i, 'a'), Ct);
        }

        var backup = await Admin.BackupAsync();

        // Changed after the backup: some rewritten, some deleted, some added.
        for (var i = 0; i < 40; i++)
        {
            await workflows.UpsertAsync(Big(Tenant.Id, i, 'z'), Ct);
            await workflows.DeleteAsync($"big:{Rows - 1 - i:D4}", cancellationToken: Ct);
            await workflows.UpsertAsync(Big(Tenant.Id, Rows + i, 'n'), Ct);
        }

        var slug = "big-rows-" + Tenant.Id[^8..].ToLowerInvariant();
        var sandbox = await RestoreAsync(backup.BackupId(), new { targetTenantSlug = slug });
        var sandboxId = sandbox.GetProperty("parameters").GetProperty("targetTenantId").GetString()!;
        await AssertRowsAsync(sandboxId);

        await RestoreAsync(backup.BackupId(), new { replaceCurrent = true });
        await AssertRowsAsync(Tenant.Id);
    }

    private async Task<JsonElement> RestoreAsync(string backupId, object body)
    {
        var response = await Admin.PostAsJsonAsync($"/api/v1/backups/{backupId}/restore", body, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"restore: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        var job = await FinishedAdminJobAsync((await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!, TimeSpan.FromMinutes(3));
        Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the restore ended {job}");
        return job;
    }

    /// <summary>The tenant's big rows are exactly the backup's: 0..299, each with its 'a' content.</summary>
    private async Task AssertRowsAsync(string tenantId)
    {
        var rows = new List<TableEntity>();
        await foreach (var row in App.Storage.TenantTable("workflows").For(new TenantId(tenantId)).QueryAsync<TableEntity>("big:", cancellationToken: Ct))
        {
            rows.Add(row);
        }

        Assert.Equal(Enumerable.Range(0, Rows).Select(i => $"big:{i:D4}"), rows.Select(r => r.RowKey).Order(StringComparer.Ordinal));
        Assert.All(rows, r => Assert.Equal(new string('a', 30_000), r.GetString("A")));
    }

    private static TableEntity Big(string tenantId, int i, char fill) =>
        new(tenantId, $"big:{i:D4}") { ["A"] = new string(fill, 30_000), ["B"] = new string(fill, 30_000) };
}
