using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Backups;

/// <summary>What the jobs API lets a caller do to backup and restore jobs, and what a retried restore leaves alone.</summary>
public sealed class BackupJobSafetyTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    [Fact]
    public async Task Only_backups_manage_retries_or_cancels_backup_jobs_and_a_retried_restore_keeps_its_pre_restore_backup()
    {
        var backup = await Admin.BackupAsync();
        var verify = await Admin.VerifyBackupAsync(backup.BackupId());

        // A restore over the live tenant, cancelled at once: it stops after its pre-restore backup, before replacing anything.
        var started = await Admin.PostAsJsonAsync($"/api/v1/backups/{backup.BackupId()}/restore", new { replaceCurrent = true }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var restoreId = (await started.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.Accepted, (await Admin.PostAsync($"/api/v1/jobs/{restoreId}/cancel", null, Ct)).StatusCode);
        var cancelled = await Admin.FinishedJobAsync(restoreId);
        Assert.True(cancelled.GetProperty("status").GetString() == "cancelled", $"the restore ended {cancelled}");
        var pre = (await Admin.ListBackupsAsync()).Single(b => b.GetProperty("kind").GetString() == "pre-restore");
        Assert.Equal("succeeded", pre.GetProperty("status").GetString());

        // A manager (jobs.read, jobs.write, no backups.manage) can neither run these jobs again nor stop them, nor
        // read what a restore was asked to do.
        using var manager = await SignedInAsync("manager@example.com", "manager");
        foreach (var id in new[] { restoreId, backup.BackupId(), verify.GetProperty("id").GetString()! })
        {
            await (await manager.PostAsync($"/api/v1/jobs/{id}/retry", null, Ct)).ReadProblemAsync(403, "forbidden");
            await (await manager.PostAsync($"/api/v1/jobs/{id}/cancel", null, Ct)).ReadProblemAsync(403, "forbidden");
        }

        var seen = await manager.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{restoreId}", Ct);
        Assert.Equal("cancelled", seen.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, seen.GetProperty("parameters").ValueKind);
        var listed = (await manager.GetFromJsonAsync<JsonElement>("/api/v1/jobs?type=restore", Ct)).GetProperty("items").EnumerateArray().Single();
        Assert.Equal(JsonValueKind.Null, listed.GetProperty("parameters").ValueKind);
        Assert.Equal(JsonValueKind.Object, (await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{restoreId}", Ct)).GetProperty("parameters").ValueKind);

        // The admin retries the restore after a change: the pre-restore backup is the tenant as it was when the
        // restore first ran, not rewritten with the tenant as it is now.
        await Admin.CreateUserIdAsync("carol@example.com", Accounts.Password);
        Assert.Equal(HttpStatusCode.Accepted, (await Admin.PostAsync($"/api/v1/jobs/{restoreId}/retry", null, Ct)).StatusCode);
        var retried = await FinishedAdminJobAsync(restoreId);
        Assert.True(retried.GetProperty("status").GetString() == "succeeded", $"the retried restore ended {retried}");
        var after = await Admin.GetBackupAsync(pre.BackupId());
        Assert.Equal(pre.GetProperty("sha256").GetString(), after.GetProperty("sha256").GetString());
        Assert.Equal(pre.GetProperty("createdAt").GetDateTimeOffset(), after.GetProperty("createdAt").GetDateTimeOffset());
        Assert.Single(await Admin.ListBackupsAsync(), b => b.GetProperty("kind").GetString() == "pre-restore");
        var preUsers = await App.ReadPartAsync(Tenant.Id, after, "users");
        Assert.DoesNotContain(preUsers, u => u.GetProperty("p").TryGetProperty("Email", out var email) && email.GetString() == "carol@example.com");
        Assert.True((await Admin.VerifyBackupAsync(pre.BackupId())).GetProperty("status").GetString() == "succeeded");
    }
}
