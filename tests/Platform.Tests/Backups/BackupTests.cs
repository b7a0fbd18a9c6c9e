using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;
using Platform.Tests.Users;

namespace Platform.Tests.Backups;

/// <summary>Backing a tenant up: what a backup holds, how it is listed, read and deleted, its events and audit entries.</summary>
public sealed class BackupTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    private static readonly string[] Excluded = ["sessions", "apikeyprefixes", "tenants", "backups", "events", "lockouts", "idempotency", "scheduledue", "entra", "webhookreceiverindex", "usertokens"];

    [Fact]
    public async Task A_backup_holds_every_row_of_the_tenants_tables_encrypted_verified_and_listed_newest_first()
    {
        await Admin.CreateUserIdAsync("ada@example.com", Accounts.Password);
        var itemId = (await Admin.CreateItemAsync("BOLT-M8", "Bolt M8")).GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync($"/api/v1/inventory/items/{itemId}/movements", new { type = "in", quantity = 40 }, Ct)).StatusCode);

        var first = await Admin.BackupAsync();
        var second = await Admin.BackupAsync();

        var list = await Admin.ListBackupsAsync();
        Assert.Equal([second.BackupId(), first.BackupId()], list.Select(b => b.BackupId()));
        var listed = list[1];
        Assert.Equal("succeeded", listed.GetProperty("status").GetString());
        Assert.Equal("manual", listed.GetProperty("kind").GetString());
        Assert.True(listed.GetProperty("verified").GetBoolean());
        Assert.Matches("^[0-9a-f]{64}$", listed.GetProperty("sha256").GetString());
        Assert.True(listed.GetProperty("bytes").GetInt64() > 0);
        Assert.True(listed.GetProperty("expiresAt").GetDateTimeOffset() > listed.GetProperty("createdAt").GetDateTimeOffset());
        Assert.Equal(JsonValueKind.Null, listed.GetProperty("parts").ValueKind);

        // The parts are what the capabilities declared as tenant data; global indexes and sessions are not among them.
        var names = first.GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("name").GetString()!).ToList();
        Assert.Subset(names.ToHashSet(), new HashSet<string> { "tenant", "users", "roles", "apikeys", "inventory", "audit", "webhooks", "webhookreceivers", "schedules", "workflows", "blobs:avatars" });
        Assert.Empty(names.Intersect(Excluded));
        Assert.Equal(names.Count, first.GetProperty("tables").GetInt32());
        Assert.Equal(first.GetProperty("parts").EnumerateArray().Sum(p => p.GetProperty("count").GetInt64()), first.GetProperty("entities").GetInt64());

        // Rows come back whole; the change log and outbox are left out.
        var users = await App.ReadPartAsync(Tenant.Id, first, "users");
        Assert.Contains(users, u => u.GetProperty("p").TryGetProperty("Email", out var email) && email.GetString() == "ada@example.com");
        Assert.DoesNotContain(users, u => u.GetProperty("k").GetString()!.StartsWith('~') && !u.GetProperty("k").GetString()!.StartsWith("~count", StringComparison.Ordinal));
        var inventory = await App.ReadPartAsync(Tenant.Id, first, "inventory");
        var itemRow = Assert.Single(inventory, r => r.GetProperty("k").GetString() == $"i:{itemId}");
        Assert.Equal("BOLT-M8", itemRow.GetProperty("p").GetProperty("Sku").GetString());
        var tenantRow = Assert.Single(await App.ReadPartAsync(Tenant.Id, first, "tenant"));
        Assert.Equal(Tenant.Slug, tenantRow.GetProperty("p").GetProperty("Slug").GetString());

        // Job history as summaries: the second backup holds the first backup's job, finished, without its parameters.
        var history = await App.ReadPartAsync(Tenant.Id, second, "jobs");
        var firstJob = Assert.Single(history, j => j.GetProperty("k").GetString() == $"job:{first.BackupId()}").GetProperty("p");
        Assert.Equal("backup", firstJob.GetProperty("Type").GetString());
        Assert.Equal("succeeded", firstJob.GetProperty("Status").GetString());
        Assert.False(firstJob.TryGetProperty("Parameters", out _));

        // What is stored is ciphertext: no address, sku or slug can be read from the files.
        foreach (var part in first.GetProperty("parts").EnumerateArray())
        {
            var stored = (await App.BackupFile(Tenant.Id, first.BackupId(), part.GetProperty("file").GetString()!).DownloadContentAsync(Ct)).Value.Content.ToArray();
            var text = Encoding.Latin1.GetString(stored);
            Assert.DoesNotContain("ada@example.com", text, StringComparison.Ordinal);
            Assert.DoesNotContain("BOLT-M8", text, StringComparison.Ordinal);
            Assert.Equal(part.GetProperty("bytes").GetInt64(), stored.LongLength);
        }

        var actions = await Admin.AuditActionsAsync(first.BackupId());
        Assert.Contains("backup.succeeded", actions);
        var job = await Admin.FinishedJobAsync(first.BackupId());
        Assert.Equal("backup", job.GetProperty("type").GetString());
        Assert.Equal(first.GetProperty("tables").GetInt32(), job.GetProperty("progress").GetProperty("succeeded").GetInt64());
    }

    [Fact]
    public async Task A_deleted_backup_is_gone_with_its_files_and_the_deletion_is_audited()
    {
        var backup = await Admin.BackupAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/backups/{backup.BackupId()}", Ct)).StatusCode);

        await (await Admin.GetAsync($"/api/v1/backups/{backup.BackupId()}", Ct)).ReadProblemAsync(404, "not_found");
        await (await Admin.DeleteAsync($"/api/v1/backups/{backup.BackupId()}", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Empty(await Admin.ListBackupsAsync());
        var container = App.BackupFile(Tenant.Id, backup.BackupId(), "manifest").GetParentBlobContainerClient();
        await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, $"{Tenant.Id}/{backup.BackupId()}/", Ct))
        {
            Assert.Fail($"{blob.Name} was left behind");
        }

        Assert.Contains("backup.deleted", await Admin.AuditActionsAsync(backup.BackupId()));
    }

    [Fact]
    public async Task Another_tenants_backup_is_not_found_on_any_route()
    {
        var backup = await Admin.BackupAsync();
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);

        Assert.Empty(await otherAdmin.ListBackupsAsync());
        foreach (var id in new[] { backup.BackupId(), "NOSUCHBACKUP00000000000000", "..%2F..%2Fx", new string('A', 40) })
        {
            await (await otherAdmin.GetAsync($"/api/v1/backups/{id}", Ct)).ReadProblemAsync(404, "not_found");
            await (await otherAdmin.PostAsync($"/api/v1/backups/{id}/verify", null, Ct)).ReadProblemAsync(404, "not_found");
            await (await otherAdmin.DeleteAsync($"/api/v1/backups/{id}", Ct)).ReadProblemAsync(404, "not_found");
        }

        // Still there, untouched, for its own tenant.
        Assert.True((await Admin.GetBackupAsync(backup.BackupId())).GetProperty("verified").GetBoolean());
    }

    [Fact]
    public async Task Every_route_needs_backups_manage()
    {
        var backup = await Admin.BackupAsync();
        using var manager = await SignedInAsync("manager@example.com", "manager");

        await (await manager.PostAsync("/api/v1/backups", null, Ct)).ReadProblemAsync(403, "forbidden");
        await (await manager.GetAsync("/api/v1/backups", Ct)).ReadProblemAsync(403, "forbidden");
        await (await manager.GetAsync($"/api/v1/backups/{backup.BackupId()}", Ct)).ReadProblemAsync(403, "forbidden");
        await (await manager.PostAsync($"/api/v1/backups/{backup.BackupId()}/verify", null, Ct)).ReadProblemAsync(403, "forbidden");
        await (await manager.DeleteAsync($"/api/v1/backups/{backup.BackupId()}", Ct)).ReadProblemAsync(403, "forbidden");
        Assert.Single(await Admin.ListBackupsAsync());
    }

    [Fact]
    public async Task A_later_verification_of_an_intact_backup_succeeds()
    {
        var backup = await Admin.BackupAsync();

        var job = await Admin.VerifyBackupAsync(backup.BackupId());

        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        var after = await Admin.GetBackupAsync(backup.BackupId());
        Assert.True(after.GetProperty("verified").GetBoolean());
        Assert.True(after.GetProperty("verifiedAt").GetDateTimeOffset() > backup.GetProperty("verifiedAt").GetDateTimeOffset());
        Assert.Equal(JsonValueKind.Null, after.GetProperty("failedPart").ValueKind);
    }
}
