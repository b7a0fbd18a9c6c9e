using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Backups;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Backups;

/// <summary>One backup or restore at a time per tenant, and what a running restore keeps from being deleted.</summary>
public sealed class BackupLockTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    [Fact]
    public async Task A_held_lock_refuses_a_second_backup_or_restore_and_protects_its_backups_until_it_expires()
    {
        var backup = await Admin.BackupAsync();
        var tenant = new TenantId(Tenant.Id);
        var store = App.Services.GetRequiredService<BackupStore>();
        Assert.Null(await store.Rows(tenant).GetAsync<BackupLockEntity>(BackupLockEntity.Key, Ct));

        // A restore that holds the lock (as a crashed one would have left it) with this backup as its source.
        var now = DateTimeOffset.UtcNow;
        var held = new BackupLockEntity { PartitionKey = Tenant.Id, Holder = "01JD3Z8M6Q7W2X4Y5Z6A7B8C9E", Kind = "restore", Backups = backup.BackupId(), ExpiresAt = now.AddHours(1) };
        await store.Rows(tenant).UpsertAsync(held, Ct);

        var refused = await (await Admin.PostAsync("/api/v1/backups", null, Ct)).ReadProblemAsync(409, "backup_running");
        Assert.Contains(held.Holder, refused.GetProperty("detail").GetString());
        await (await Admin.PostAsJsonAsync($"/api/v1/backups/{backup.BackupId()}/restore", new { targetTenantSlug = "lock-sandbox-" + Tenant.Id[^6..].ToLowerInvariant() }, Ct)).ReadProblemAsync(409, "backup_running");
        await (await Admin.PostAsJsonAsync($"/api/v1/backups/{backup.BackupId()}/restore", new { replaceCurrent = true }, Ct)).ReadProblemAsync(409, "backup_running");
        await (await Admin.DeleteAsync($"/api/v1/backups/{backup.BackupId()}", Ct)).ReadProblemAsync(409, "backup_in_use");

        // Retention leaves the restore's source alone even when it has expired.
        var row = (await store.GetAsync(tenant, backup.BackupId(), Ct))!;
        row.ExpiresAt = now.AddMinutes(-1);
        await store.Rows(tenant).UpsertAsync(row, Ct);
        using (var scope = App.Services.CreateScope())
        {
            Assert.Equal(0, await scope.ServiceProvider.GetRequiredService<BackupRetention>().SweepAsync(tenant, now, Ct));
        }

        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync($"/api/v1/backups/{backup.BackupId()}", Ct)).StatusCode);

        // Once it expires, the next backup takes the lock over, and releases it when it ends.
        held = (await store.Rows(tenant).GetAsync<BackupLockEntity>(BackupLockEntity.Key, Ct))!;
        held.ExpiresAt = now.AddSeconds(-1);
        await store.Rows(tenant).UpsertAsync(held, Ct);
        var next = await Admin.BackupAsync();
        Assert.Equal("succeeded", next.GetProperty("status").GetString());
        Assert.Null(await store.Rows(tenant).GetAsync<BackupLockEntity>(BackupLockEntity.Key, Ct));
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/backups/{backup.BackupId()}", Ct)).StatusCode);
    }
}
