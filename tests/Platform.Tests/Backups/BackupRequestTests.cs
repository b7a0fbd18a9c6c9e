using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Backups;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Backups;

/// <summary>What a restore or a verification is refused on: an unclear body, a backup that did not succeed, another schema.</summary>
public sealed class BackupRequestTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    [Fact]
    public async Task A_restore_says_where_it_goes_and_only_sound_backups_of_this_schema_are_verified_or_restored()
    {
        var backup = await Admin.BackupAsync();
        var url = $"/api/v1/backups/{backup.BackupId()}/restore";

        // A misspelt property or a contradiction is a 400: a typo never turns a sandbox restore into the destructive one.
        foreach (var body in new[] { "{\"targetSlug\":\"acme-sandbox\"}", "{\"replaceCurrent\":false}", "{\"replaceCurrent\":true,\"targetTenantSlug\":\"acme-sandbox\"}",
            "{\"replaceCurrent\":true,\"force\":1}" })
        {
            await (await Admin.PostAsync(url, new StringContent(body, Encoding.UTF8, "application/json"), Ct)).ReadProblemAsync(400, "validation_failed");
        }

        var typo = await (await Admin.PostAsync(url, new StringContent("{\"targetSlug\":\"acme-sandbox\"}", Encoding.UTF8, "application/json"), Ct)).ReadProblemAsync(400, "validation_failed");
        Assert.Contains("targetSlug", typo.ToString());
        Assert.DoesNotContain(await Admin.ListBackupsAsync(), b => b.GetProperty("kind").GetString() == "pre-restore");

        // A backup that failed (its read-back found damage) is not verified again: 409, like its restore.
        var store = App.Services.GetRequiredService<BackupStore>();
        var tenant = new TenantId(Tenant.Id);
        var row = (await store.GetAsync(tenant, backup.BackupId(), Ct))!;
        row.Status = BackupEntity.Failed;
        await store.Rows(tenant).UpsertAsync(row, Ct);
        await (await Admin.PostAsync($"/api/v1/backups/{backup.BackupId()}/verify", null, Ct)).ReadProblemAsync(409, "backup_incomplete");
        await (await Admin.PostAsJsonAsync(url, new { replaceCurrent = true }, Ct)).ReadProblemAsync(409, "backup_incomplete");

        // A backup of another schema version (its manifest re-sealed as a future deployment would write it) is refused by the job.
        row = (await store.GetAsync(tenant, backup.BackupId(), Ct))!;
        row.Status = BackupEntity.Succeeded;
        var files = App.Services.GetRequiredService<BackupFiles>();
        var key = store.Unwrap(tenant, row.Id, row.WrappedKey);
        var manifest = await files.ReadManifestAsync(tenant, row.Id, key, row.Sha256, Ct);
        (_, row.Sha256) = await files.WriteManifestAsync(tenant, key, manifest with { SchemaVersion = BackupFormat.SchemaVersion + 1 }, Ct);
        await store.Rows(tenant).UpsertAsync(row, Ct);
        var response = await Admin.PostAsJsonAsync(url, new { replaceCurrent = true }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await Admin.FinishedJobAsync((await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!);
        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains($"schema version {BackupFormat.SchemaVersion + 1}", job.GetProperty("error").GetString());
        Assert.DoesNotContain(await Admin.ListBackupsAsync(), b => b.GetProperty("kind").GetString() == "pre-restore");
    }
}
