using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Backups;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Backups;

/// <summary>
/// A restore over the live tenant that fails part-way, after some tables were already replaced: the tenant is put
/// back from its pre-restore backup; and when putting it back fails too, the job says the data is mixed and names the
/// backup that puts it back, which then does.
/// </summary>
public sealed class BackupRollbackTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    // The failure is set on this app's services for one test.
    protected override bool SharesApp => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    [Fact]
    public async Task A_restore_failing_part_way_puts_the_tenant_back_from_its_pre_restore_backup()
    {
        var (backup, lateItem) = await BackupThenChangeAsync();

        // The users part fails every attempt, after inventory and roles were replaced; putting back works.
        FailUsersPartOf(backup.BackupId());
        var job = await RestoreOverAsync(backup.BackupId());

        Assert.Equal("failed", job.Str("status"));
        var pre = PreRestoreBackupId(job);
        Assert.Contains($"the tenant was put back from the pre-restore backup {pre}", job.Str("error"), StringComparison.Ordinal);
        await AssertAsItWasAsync(lateItem);
        var failed = await RestoreFailedAsync();
        Assert.Equal(pre, failed.GetProperty("changes").Str("preRestoreBackupId"));
    }

    [Fact]
    public async Task A_restore_whose_rollback_fails_too_says_the_data_is_mixed_and_its_pre_restore_backup_puts_it_back()
    {
        var (backup, lateItem) = await BackupThenChangeAsync();

        // The users part fails whichever backup it comes from: the restore and putting back both stop there.
        FailUsersPartOf(null);
        var job = await RestoreOverAsync(backup.BackupId());

        Assert.Equal("failed", job.Str("status"));
        var pre = PreRestoreBackupId(job);
        Assert.Contains("the tenant's data is mixed", job.Str("error"), StringComparison.Ordinal);
        Assert.Contains($"restore the pre-restore backup {pre} over this tenant", job.Str("error"), StringComparison.Ordinal);
        Assert.Contains("mixed", (await RestoreFailedAsync()).GetProperty("changes").Str("error"), StringComparison.Ordinal);

        // Once the fault is gone, doing what the error says puts the tenant back as it was.
        App.Services.GetRequiredService<BackupFiles>().BeforeRestoringPart = null;
        var again = await RestoreOverAsync(pre);
        Assert.True(again.Str("status") == "succeeded", $"restoring the pre-restore backup ended {again}");
        await AssertAsItWasAsync(lateItem);
    }

    /// <summary>A backup holding ada; then bob and an item made after it.</summary>
    private async Task<(JsonElement Backup, string LateItem)> BackupThenChangeAsync()
    {
        await Admin.CreateUserIdAsync("ada@example.com", Accounts.Password);
        var backup = await Admin.BackupAsync();
        await Admin.CreateUserIdAsync("bob@example.com", Accounts.Password);
        var late = (await Inventory.ItemApi.CreateItemAsync(Admin, "LATE-1")).Id();
        return (backup, late);
    }

    private void FailUsersPartOf(string? backupId) =>
        App.Services.GetRequiredService<BackupFiles>().BeforeRestoringPart = part =>
            part.Part.Name == "users" && (backupId is null || part.Restore.BackupId == backupId)
                ? throw new InvalidOperationException("users: the storage account refused the write (a fault set by the test)")
                : Task.CompletedTask;

    private async Task<JsonElement> RestoreOverAsync(string backupId)
    {
        var response = await Admin.PostAsJsonAsync($"/api/v1/backups/{backupId}/restore", new { replaceCurrent = true }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return await FinishedAdminJobAsync((await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!, TimeSpan.FromMinutes(2));
    }

    private static string PreRestoreBackupId(JsonElement job) =>
        job.GetProperty("parameters").GetProperty("preRestoreBackupId").GetString()!;

    /// <summary>The tenant as it was before the restore: bob and the late item there, both from the pre-restore backup.</summary>
    private async Task AssertAsItWasAsync(string lateItem)
    {
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync($"{Inventory.InventoryApi.Items}/{lateItem}", Ct)).StatusCode);
        var users = await Eventually.Until(
            async () => (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/users?pageSize=100", Ct)).GetProperty("items").EnumerateArray().Select(u => u.Str("email")).ToList(),
            emails => emails.Contains("bob@example.com"), "the user list to show the tenant as it was", TimeSpan.FromSeconds(30));
        Assert.Contains("ada@example.com", users);
    }

    private async Task<JsonElement> RestoreFailedAsync() =>
        await Eventually.Until(
            async () => (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=restore.failed", Ct)).GetProperty("items").EnumerateArray().FirstOrDefault(),
            entry => entry.ValueKind == JsonValueKind.Object, "the restore.failed audit entry");
}
