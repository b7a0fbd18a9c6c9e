using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Backups;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Backups;

/// <summary>
/// Retention: scheduled backups kept grandfather-father-son (7 daily, 4 weekly, 12 monthly), every other backup until
/// its <c>expiresAt</c>; the sweep deletes the rest with their files. A year of daily backups is written as rows (the
/// sweep reads only rows and deletes files by prefix), beside one real backup whose files must go.
/// </summary>
public sealed class BackupRetentionTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    [Fact]
    public async Task The_sweep_keeps_seven_daily_four_weekly_twelve_monthly_and_unexpired_others()
    {
        var tenant = new TenantId(Tenant.Id);
        var store = App.Services.GetRequiredService<BackupStore>();
        var now = new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
        var real = await Admin.BackupAsync();
        var realRow = (await store.GetAsync(tenant, real.BackupId(), Ct))!;
        realRow.ExpiresAt = now.AddMinutes(-1);
        await store.Rows(tenant).UpsertAsync(realRow, Ct);

        // A scheduled backup at 02:00 every day for 400 days, and two manual ones.
        var rows = Enumerable.Range(0, 400).Select(day => Row($"S{day:D4}", BackupParameters.Scheduled, now.Date.AddDays(-day).AddHours(2))).ToList();
        rows.Add(Row("MANUALOLD", BackupParameters.Manual, now.AddDays(-40), expires: now.AddDays(-10)));
        rows.Add(Row("MANUALNEW", BackupParameters.Manual, now.AddDays(-5), expires: now.AddDays(25)));
        foreach (var row in rows)
        {
            await store.Rows(tenant).UpsertAsync(row, Ct);
        }

        int deleted;
        await using (var scope = App.Services.CreateAsyncScope())
        {
            deleted = await scope.ServiceProvider.GetRequiredService<BackupRetention>().SweepAsync(tenant, now, Ct);
        }

        var left = await Admin.ListBackupsAsync();
        var ids = left.Select(b => b.BackupId()).ToHashSet();
        Assert.Equal(403 - ids.Count, deleted);
        Assert.DoesNotContain(real.BackupId(), ids);
        Assert.DoesNotContain("MANUALOLD", ids);
        Assert.Contains("MANUALNEW", ids);

        var kept = left.Where(b => b.GetProperty("kind").GetString() == "scheduled").Select(b => b.GetProperty("createdAt").GetDateTimeOffset()).ToList();
        // The seven newest days.
        foreach (var day in Enumerable.Range(0, 7))
        {
            Assert.Contains(now.Date.AddDays(-day).AddHours(2), kept.Select(k => k.UtcDateTime));
        }

        // One per month for the twelve newest months: the newest of each, and nothing older than a year.
        var months = kept.GroupBy(k => (k.Year, k.Month)).ToList();
        Assert.True(months.Count == 12, $"months kept: {string.Join(", ", months.Select(m => $"{m.Key.Year}-{m.Key.Month}"))}");
        Assert.All(months.Where(m => (m.Key.Year, m.Key.Month) != (now.Year, now.Month)), m => Assert.Equal(DateTime.DaysInMonth(m.Key.Year, m.Key.Month), m.Max().Day));
        Assert.True(kept.Count <= 7 + 4 + 12, $"{kept.Count} kept");
        // The newest of each of the four newest ISO weeks: Saturday the 28th (this week), then the Sundays before.
        foreach (var day in new[] { 28, 22, 15, 8 })
        {
            Assert.Contains(new DateTime(2026, 11, day, 2, 0, 0, DateTimeKind.Utc), kept.Select(k => k.UtcDateTime));
        }

        Assert.DoesNotContain(new DateTime(2026, 11, 7, 2, 0, 0, DateTimeKind.Utc), kept.Select(k => k.UtcDateTime));

        // Kept scheduled backups show until when their rule keeps them.
        var monthly = left.Single(b => b.GetProperty("createdAt").GetDateTimeOffset() == new DateTimeOffset(2026, 6, 30, 2, 0, 0, TimeSpan.Zero));
        Assert.Equal(new DateTimeOffset(2026, 6, 30, 2, 0, 0, TimeSpan.Zero).AddDays(31 * 12), monthly.GetProperty("expiresAt").GetDateTimeOffset());

        // The real backup's files went with it, and the deletion is audited as the system's.
        var container = App.BackupFile(Tenant.Id, real.BackupId(), "manifest");
        Assert.False((await container.ExistsAsync(Ct)).Value);
        var audit = await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?pageSize=10&targetId={real.BackupId()}&action=backup.deleted", Ct);
        var entry = audit.GetProperty("items").EnumerateArray().Single();
        Assert.Equal("system", entry.GetProperty("actorType").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync($"/api/v1/backups/{real.BackupId()}", Ct)).StatusCode);
    }

    [Fact]
    public async Task A_backup_left_running_past_the_lock_timeout_is_failed_and_expires_like_a_failed_one()
    {
        var tenant = new TenantId(Tenant.Id);
        var store = App.Services.GetRequiredService<BackupStore>();
        var now = DateTimeOffset.UtcNow;

        // Its job ended without recording the outcome (its last step failed past its retries); another is still young.
        var abandoned = Row("ABANDONED", BackupParameters.Scheduled, now.AddHours(-7));
        abandoned.Status = BackupEntity.Running;
        abandoned.ExpiresAt = null;
        var young = Row("YOUNG", BackupParameters.Manual, now.AddMinutes(-5));
        young.Status = BackupEntity.Running;
        young.ExpiresAt = null;
        await store.Rows(tenant).UpsertAsync(abandoned, Ct);
        await store.Rows(tenant).UpsertAsync(young, Ct);

        await using (var scope = App.Services.CreateAsyncScope())
        {
            Assert.Equal(0, await scope.ServiceProvider.GetRequiredService<BackupRetention>().SweepAsync(tenant, now, Ct));
        }

        var failed = await Admin.GetBackupAsync("ABANDONED");
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Contains("did not finish", failed.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.InRange(failed.GetProperty("expiresAt").GetDateTimeOffset(), now.AddDays(30).AddSeconds(-1), now.AddDays(30).AddSeconds(1));
        Assert.Equal("running", (await Admin.GetBackupAsync("YOUNG")).GetProperty("status").GetString());
        var audit = await Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?pageSize=10&targetId=ABANDONED&action=backup.failed", Ct);
        Assert.Equal("system", audit.GetProperty("items").EnumerateArray().Single().GetProperty("actorType").GetString());
    }

    private static BackupEntity Row(string id, string kind, DateTimeOffset createdAt, DateTimeOffset? expires = null) => new()
    {
        RowKey = BackupEntity.KeyFor(id),
        Id = id,
        Kind = kind,
        Status = BackupEntity.Succeeded,
        CreatedAt = createdAt,
        ExpiresAt = expires ?? createdAt.AddDays(7),
        WrappedKey = "",
        Verified = true,
    };
}
