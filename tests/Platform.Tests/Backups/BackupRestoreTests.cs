using System.Buffers;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Platform.Functions.Backups;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Schedules;
using Platform.Tests.Users;

namespace Platform.Tests.Backups;

/// <summary>
/// Restoring a backup into a new sandbox tenant: it holds exactly the snapshot (compared as a canonical dump, table by
/// table), works at once (sign-in by slug, lists, analytics), sets nothing in motion, and exists only when complete.
/// </summary>
public sealed class BackupRestoreTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs(new Dictionary<string, string?>
    {
        ["Platform:Jobs:MessageVisibilityTimeout"] = "00:01:00",
        ["Platform:Webhooks:AllowPrivateNetworks"] = "true",
    });

    private static readonly string[] All = ["*"];

    /// <summary>Fields a sandbox changes on purpose (each checked through the API instead).</summary>
    private static readonly string[] SandboxFields = ["Enabled", "DisabledReason", "DisabledAt", "NextRunAt", "Secret"];

    [Fact]
    public async Task A_backup_restored_into_a_new_tenant_is_the_snapshot_and_works_at_once()
    {
        var adaId = await Admin.CreateUserIdAsync("ada@example.com", Accounts.Password);
        var item = await (await Admin.PostAsJsonAsync("/api/v1/inventory/items", new { sku = "BOLT-M8", name = "Bolt M8", category = "bolts", unitCost = 2.5 }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var itemId = item.GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync($"/api/v1/inventory/items/{itemId}/movements", new { type = "in", quantity = 40 }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/webhooks/endpoints", new { url = "http://127.0.0.1:9/hooks", events = All }, Ct)).StatusCode);
        await Admin.CreateScheduleAsync(new { name = "nightly", cron = "0 2 * * *", timeZone = "UTC", target = ScheduleApi.ExportUsers });
        var backup = await Admin.BackupAsync();

        // The live tenant moves on: none of this is in the snapshot.
        await Admin.CreateUserIdAsync("bob@example.com", Accounts.Password);
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{adaId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync($"/api/v1/inventory/items/{itemId}/movements", new { type = "out", quantity = 15 }, Ct)).StatusCode);

        var slug = Tenant.Slug + "-sbx";
        var job = await RestoreAsync(backup.BackupId(), slug);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the restore ended {job}");

        var sandboxId = (await App.Services.GetRequiredService<Platform.Functions.Tenants.TenantDirectory>().FindBySlugAsync(slug, Ct))!.Id;
        Assert.NotEqual(Tenant.Id, sandboxId);

        // Every row of every table equals the snapshot.
        var layout = App.Services.GetRequiredService<IOptions<StorageLayout>>().Value;
        foreach (var table in layout.TenantData)
        {
            var expected = (await App.ReadPartAsync(Tenant.Id, backup, table)).Select(l => Canonical(BackupRows.Read(l, sandboxId))).Order(StringComparer.Ordinal).ToList();
            var actual = new List<string>();
            await foreach (var row in App.Storage.Table(table).QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {sandboxId}"), cancellationToken: Ct))
            {
                if (!BackupRows.IsPlumbing(row.RowKey))
                {
                    actual.Add(Canonical(row));
                }
            }

            Assert.True(expected.SequenceEqual(actual.Order(StringComparer.Ordinal)),
                $"{table}: {expected.Count} rows in the backup, {actual.Count} restored; only in the backup: {string.Join("\n", expected.Except(actual).Take(3))}; only restored: {string.Join("\n", actual.Except(expected).Take(3))}");
        }

        // Sign-in by slug (after the comparison: a sign-in writes), as the backup's admin with the backup's password.
        using var sandbox = await App.SignedInClientAsync(Tenant with { Slug = slug });

        // Lists, projections and analytics are right at once: the snapshot's, not today's.
        var users = (await sandbox.GetFromJsonAsync<JsonElement>("/api/v1/users?pageSize=100", Ct)).GetProperty("items").EnumerateArray().Select(u => u.GetProperty("email").GetString()).ToList();
        Assert.Contains("ada@example.com", users);
        Assert.DoesNotContain("bob@example.com", users);
        var restoredItem = await sandbox.GetFromJsonAsync<JsonElement>($"/api/v1/inventory/items/{itemId}", Ct);
        Assert.Equal(40, restoredItem.GetProperty("quantity").GetDouble());
        var analytics = await sandbox.GetFromJsonAsync<JsonElement>("/api/v1/inventory/analytics?groupBy=category", Ct);
        Assert.Equal(100, analytics.GetProperty("totalValue").GetDouble());

        // Nothing runs on its own: endpoints disabled, schedules paused, no sessions carried over.
        var endpoint = (await sandbox.GetFromJsonAsync<JsonElement>("/api/v1/webhooks/endpoints", Ct)).GetProperty("items").EnumerateArray().Single();
        Assert.False(endpoint.GetProperty("enabled").GetBoolean());

        // The copy got a signing secret of its own, unknown to anyone: it can never sign as the live endpoint does (the
        // live receiver would trust what the sandbox made up), and rotating it shows one to configure.
        var directory = App.Services.GetRequiredService<Platform.Functions.Webhooks.WebhookDirectory>();
        var original = (await directory.ListAsync(new TenantId(Tenant.Id), Ct)).Single();
        var copy = (await directory.ListAsync(new TenantId(sandboxId), Ct)).Single();
        var copyKeys = directory.SigningKeys(new TenantId(sandboxId), copy);
        Assert.NotEqual(directory.SigningKeys(new TenantId(Tenant.Id), original)[0], Assert.Single(copyKeys));
        var rotated = await sandbox.PostAsJsonAsync($"/api/v1/webhooks/endpoints/{copy.Id}/rotate-secret", new { graceSeconds = 0 }, Ct);
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var schedule = (await sandbox.GetFromJsonAsync<JsonElement>("/api/v1/schedules", Ct)).GetProperty("items").EnumerateArray().Single();
        Assert.False(schedule.GetProperty("enabled").GetBoolean());

        // The live tenant is untouched, and has the restore in its audit trail.
        var live = (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/users?pageSize=100", Ct)).GetProperty("items").EnumerateArray().Select(u => u.GetProperty("email").GetString()).ToList();
        Assert.Contains("bob@example.com", live);
        Assert.Equal(25, (await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/inventory/items/{itemId}", Ct)).GetProperty("quantity").GetDouble());
        var audit = (await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?pageSize=100&targetId={backup.BackupId()}", Ct)).GetProperty("items").EnumerateArray().Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.Contains("restore.succeeded", audit);
    }

    [Fact]
    public async Task A_damaged_backup_restores_nothing_and_leaves_the_slug_free()
    {
        var backup = await Admin.BackupAsync();
        var blob = App.BackupFile(Tenant.Id, backup.BackupId(), backup.Part("users").GetProperty("file").GetString()!);
        var bytes = (await blob.DownloadContentAsync(Ct)).Value.Content.ToArray();
        bytes[^20] ^= 0x80;
        await blob.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true, Ct);
        var slug = Tenant.Slug + "-bad";

        var job = await RestoreAsync(backup.BackupId(), slug);

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("users", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains("nothing was restored", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        using var anonymous = App.CreateClient();
        Assert.NotEqual(HttpStatusCode.OK, (await anonymous.PostLoginAsync(slug, Tenant.AdminEmail, Tenant.AdminPassword)).StatusCode);
        // The slug was never reserved: a restore to it is accepted again.
        var again = await Admin.PostAsJsonAsync($"/api/v1/backups/{backup.BackupId()}/restore", new { targetTenantSlug = slug }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        await Admin.FinishedJobAsync((await again.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!);
    }

    [Fact]
    public async Task Bad_restore_requests_are_refused_before_a_job_starts()
    {
        var backup = await Admin.BackupAsync();
        var path = $"/api/v1/backups/{backup.BackupId()}/restore";

        foreach (var body in new object[] { new { targetTenantSlug = "X" }, new { targetTenantSlug = "has space" }, new { targetTenantSlug = new string('a', 41) } })
        {
            var problem = await (await Admin.PostAsJsonAsync(path, body, Ct)).ReadProblemAsync(400, "validation_failed");
            Assert.True(problem.GetProperty("errors").TryGetProperty("targetTenantSlug", out _), problem.ToString());
        }

        await (await Admin.PostAsJsonAsync(path, new { targetTenantSlug = Tenant.Slug }, Ct)).ReadProblemAsync(409, "slug_taken");
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        await (await otherAdmin.PostAsJsonAsync(path, new { targetTenantSlug = other.Slug + "-x" }, Ct)).ReadProblemAsync(404, "not_found");
        using var manager = await SignedInAsync("manager@example.com", "manager");
        await (await manager.PostAsJsonAsync(path, new { targetTenantSlug = Tenant.Slug + "-x" }, Ct)).ReadProblemAsync(403, "forbidden");
    }

    [Fact]
    public async Task A_user_with_mfa_signs_in_to_the_sandbox_with_the_same_authenticator()
    {
        var setup = await (await Admin.PostAsync("/api/v1/auth/mfa/totp/setup", null, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var secret = OtpNet.Base32Encoding.ToBytes(setup.GetProperty("secret").GetString()!);
        string Code(TimeSpan ahead) => new OtpNet.Totp(secret).ComputeTotp(DateTime.UtcNow + ahead);
        Assert.Equal(HttpStatusCode.OK, (await Admin.PostAsJsonAsync("/api/v1/auth/mfa/totp/enable", new { code = Code(TimeSpan.Zero) }, Ct)).StatusCode);
        var backup = await Admin.BackupAsync();

        var slug = Tenant.Slug + "-mfa";
        var job = await RestoreAsync(backup.BackupId(), slug);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the restore ended {job}");

        // The seed was sealed to the live tenant; the sandbox has it sealed to itself, so the same app's codes work
        // (the next step's: the copy remembers the step the live tenant accepted last) and a password alone does not.
        using var anonymous = App.CreateClient();
        await (await anonymous.PostLoginAsync(slug, Tenant.AdminEmail, Tenant.AdminPassword)).ReadProblemAsync(401, "mfa_required");
        await (await anonymous.PostLoginAsync(slug, Tenant.AdminEmail, Tenant.AdminPassword, "123456")).ReadProblemAsync(401, "invalid_otp");
        var signedIn = await anonymous.PostLoginAsync(slug, Tenant.AdminEmail, Tenant.AdminPassword, Code(TimeSpan.FromSeconds(30)));
        Assert.True(signedIn.StatusCode == HttpStatusCode.OK, $"sandbox sign-in with TOTP: {(int)signedIn.StatusCode} {await signedIn.Content.ReadAsStringAsync(Ct)}");
    }

    private async Task<JsonElement> RestoreAsync(string backupId, string slug)
    {
        var response = await Admin.PostAsJsonAsync($"/api/v1/backups/{backupId}/restore", new { targetTenantSlug = slug }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"restore: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        var job = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("restore", job.GetProperty("type").GetString());
        return await Admin.FinishedJobAsync(job.GetProperty("id").GetString()!);
    }

    /// <summary>A row as one line of text (see <see cref="Canonical"/>), for the in-place tests too.</summary>
    internal static string CanonicalRow(TableEntity row) => Canonical(row);

    /// <summary>A row as one line of text (the backup's own line format), without the fields a sandbox changes on purpose.</summary>
    private static string Canonical(TableEntity row)
    {
        foreach (var field in SandboxFields)
        {
            row.Remove(field);
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            BackupRows.Write(writer, row);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
