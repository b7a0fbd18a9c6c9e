using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Platform.Functions.Backups;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Backups;

/// <summary>Restoring a backup over the live tenant: an automatic pre-restore backup first, then the tenant is the snapshot.</summary>
public sealed class BackupInPlaceRestoreTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    [Fact]
    public async Task The_tenant_becomes_the_snapshot_after_a_pre_restore_backup_of_what_it_was()
    {
        var adaId = await Admin.CreateUserIdAsync("ada@example.com", Accounts.Password);
        var item = await (await Admin.PostAsJsonAsync("/api/v1/inventory/items", new { sku = "BOLT-M8", name = "Bolt M8", category = "bolts", unitCost = 2.5 }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var itemId = item.GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync($"/api/v1/inventory/items/{itemId}/movements", new { type = "in", quantity = 40 }, Ct)).StatusCode);
        var key = await (await Admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "ERP", permissions = UsersRead }, Ct)).ReadJsonAsync(HttpStatusCode.Created);
        var backup = await Admin.BackupAsync();

        // The key's text leaks and is rotated; another key is made.
        var rotated = await (await Admin.PostAsJsonAsync($"/api/v1/api-keys/{key.Id()}/rotate", new { graceSeconds = 0 }, Ct)).ReadJsonAsync(HttpStatusCode.OK);
        var later = await (await Admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "Later", permissions = UsersRead }, Ct)).ReadJsonAsync(HttpStatusCode.Created);
        await Admin.CreateUserIdAsync("bob@example.com", Accounts.Password);
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{adaId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync($"/api/v1/inventory/items/{itemId}/movements", new { type = "out", quantity = 15 }, Ct)).StatusCode);
        var lateId = (await (await Admin.PostAsJsonAsync("/api/v1/inventory/items", new { sku = "LATE-1", name = "Late" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString();

        // A session opened before the restore, of a user the backup holds too (the admin, on another device).
        using var earlier = await App.SignedInClientAsync(Tenant);
        Assert.Equal(HttpStatusCode.OK, (await earlier.GetAsync("/api/v1/users?pageSize=1", Ct)).StatusCode);

        // The contract's form: no targetTenantSlug means over this tenant.
        var response = await Admin.PostAsJsonAsync($"/api/v1/backups/{backup.BackupId()}/restore", new { }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await FinishedAdminJobAsync((await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the restore ended {job}");

        // Passwords and roles are the backup's now: every session opened before the restore has ended.
        Assert.Equal(HttpStatusCode.Unauthorized, (await earlier.GetAsync("/api/v1/users?pageSize=1", Ct)).StatusCode);

        // API keys are credentials too: left as they are now. The leaked text stays dead, the keys of now work.
        Assert.Equal(HttpStatusCode.Unauthorized, await WithKeyAsync(key.Str("key")));
        Assert.Equal(HttpStatusCode.OK, await WithKeyAsync(rotated.Str("key")));
        Assert.Equal(HttpStatusCode.OK, await WithKeyAsync(later.Str("key")));

        // Every table but the history (audit, usage) equals the snapshot, row for row.
        var layout = App.Services.GetRequiredService<IOptions<StorageLayout>>().Value;
        foreach (var table in layout.TenantData.Where(t => !layout.History.Contains(t) && !layout.Credentials.Contains(t)))
        {
            var expected = (await App.ReadPartAsync(Tenant.Id, backup, table)).Select(l => Canonical(BackupRows.Read(l, Tenant.Id))).Order(StringComparer.Ordinal).ToList();
            var actual = new List<string>();
            await foreach (var row in App.Storage.TenantTable(table).For(new TenantId(Tenant.Id)).QueryAsync<TableEntity>(cancellationToken: Ct))
            {
                if (!BackupRows.IsPlumbing(row.RowKey))
                {
                    actual.Add(Canonical(row));
                }
            }

            Assert.True(expected.SequenceEqual(actual.Order(StringComparer.Ordinal)),
                $"{table}: {expected.Count} rows in the backup, {actual.Count} now; only in the backup: {string.Join("\n", expected.Except(actual).Take(3))}; only now: {string.Join("\n", actual.Except(expected).Take(3))}");
        }

        // What the API shows. Lists and analytics are kept per instance and follow another writer's rows (the
        // restore's) within their refresh interval, as for any write made elsewhere.
        var users = await Eventually.Until(
            async () => (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/users?pageSize=100", Ct)).GetProperty("items").EnumerateArray().ToList(),
            list => list.Any(u => u.GetProperty("email").GetString() == "ada@example.com"), "the user list to show the restored users", TimeSpan.FromSeconds(30));
        Assert.Equal("active", users.Single(u => u.GetProperty("email").GetString() == "ada@example.com").GetProperty("status").GetString());
        Assert.DoesNotContain(users, u => u.GetProperty("email").GetString() == "bob@example.com");
        Assert.Equal(40, (await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/inventory/items/{itemId}", Ct)).GetProperty("quantity").GetDouble());
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync($"/api/v1/inventory/items/{lateId}", Ct)).StatusCode);
        await Eventually.Until(
            async () => (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventory/analytics?groupBy=category", Ct)).GetProperty("totalValue").GetDouble(),
            total => total == 100, "the analytics to show the restored stock", TimeSpan.FromSeconds(30));

        // The state before the restore is kept as a verified pre-restore backup, with what the restore replaced.
        var pre = (await Admin.ListBackupsAsync()).Single(b => b.GetProperty("kind").GetString() == "pre-restore");
        Assert.True(pre.GetProperty("verified").GetBoolean());
        var preUsers = await App.ReadPartAsync(Tenant.Id, await Admin.GetBackupAsync(pre.BackupId()), "users");
        Assert.Contains(preUsers, u => u.GetProperty("p").TryGetProperty("Email", out var email) && email.GetString() == "bob@example.com");

        // History is not rolled back: the audit trail keeps what happened since the backup, and the restore.
        var audit = (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?pageSize=1000", Ct)).GetProperty("items").EnumerateArray().Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.Contains("user.deleted", audit);
        var restored = (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=restore.succeeded", Ct)).GetProperty("items").EnumerateArray().Single();
        Assert.True(restored.GetProperty("changes").GetProperty("sessionsEnded").GetInt32() >= 2, $"{restored}");
    }

    private static readonly string[] UsersRead = ["users.read"];

    private async Task<HttpStatusCode> WithKeyAsync(string key)
    {
        using var client = App.CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("ApiKey", key);
        return (await client.GetAsync("/api/v1/users?pageSize=1", Ct)).StatusCode;
    }

    /// <summary>
    /// A row as compared with the snapshot, without the sign-in statistics: the restore ended every session, so the
    /// admin signed in again to read its outcome, which counted a login.
    /// </summary>
    private static string Canonical(TableEntity row)
    {
        foreach (var counted in new[] { "LastLoginAt", "LoginCount", "LoginDays", "LoginMonths" })
        {
            row.Remove(counted);
        }

        return BackupRestoreTests.CanonicalRow(row);
    }
}
