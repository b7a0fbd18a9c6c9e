using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Schedules;
using Platform.Tests.Infrastructure;
using Platform.Tests.Schedules;
using Platform.Tests.Users;
using Platform.Tests.Webhooks.Receivers;
using static Platform.Tests.Schedules.ScheduleApi;

namespace Platform.Tests.Backups;

/// <summary>
/// What a restore over the tenant brings back works again, although the platform-wide indexes it depends on are in no
/// backup: a schedule deleted since the backup runs again, a receiver deleted since answers its senders again.
/// </summary>
public sealed class BackupRestoreIndexTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    // Only this test's sweeps run schedules: the clock is moved by hand.
    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups(new Dictionary<string, string?>
    {
        ["Platform:Schedules:SweepSchedule"] = "0 0 0 1 1 *",
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "100000",
    });

    [Fact]
    public async Task A_schedule_and_a_receiver_deleted_since_the_backup_run_and_answer_again_after_restoring_over_the_tenant()
    {
        var schedule = await Admin.CreateScheduleAsync(new { name = "hourly export", cron = "0 * * * *", timeZone = "UTC", target = ExportUsers });
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var backup = await Admin.BackupAsync();

        // Both deleted; the schedule's due hour passes, and the sweep forgets its occurrence (it names no schedule).
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{SchedulesPath}/{schedule.Id()}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{ReceiverApi.ReceiversPath}/{receiver.Id}", Ct)).StatusCode);
        Clock.SetUtcNow(schedule.Time("nextRunAt").AddMinutes(1));
        await App.SweepAsync();
        Assert.Empty(await DueRowsAsync(schedule.Id()));
        Assert.Equal(HttpStatusCode.Unauthorized, (await HookAsync(receiver)).StatusCode);

        await SignInAdminAgainAsync();
        var started = await Admin.PostAsJsonAsync($"/api/v1/backups/{backup.BackupId()}/restore", new { replaceCurrent = true }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var job = await FinishedAdminJobAsync((await started.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!);
        Assert.True(job.Str("status") == "succeeded", $"the restore ended {job}");

        // The schedule is planned again, and its missed hour runs once, as any missed occurrence does.
        await Eventually.Until(() => DueRowsAsync(schedule.Id()), rows => rows.Count > 0, "the restored schedule to be planned again");
        await App.SweepAsync();
        var run = Assert.Single(await Admin.SettledRunsAsync(schedule.Id()));
        Assert.Equal(schedule.Time("nextRunAt"), run.Time("dueAt"));

        // The receiver answers its sender again, with the secret it had.
        var accepted = await Eventually.Until(() => HookAsync(receiver), r => r.StatusCode != HttpStatusCode.Unauthorized, "the restored receiver to answer");
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
    }

    private async Task<HttpResponseMessage> HookAsync(TestReceiver receiver)
    {
        using var client = App.CreateClient();
        using var request = ReceiverApi.SignedStandard(receiver, """{"type":"ping"}""", at: Clock.GetUtcNow());
        return await client.SendAsync(request, Ct);
    }

    private async Task<List<ScheduleDueEntity>> DueRowsAsync(string scheduleId)
    {
        var rows = new List<ScheduleDueEntity>();
        await foreach (var row in App.Storage.Table(ScheduleDueEntity.TableName).QueryAsync<ScheduleDueEntity>(
            TableClient.CreateQueryFilter($"Tenant eq {Tenant.Id} and ScheduleId eq {scheduleId}"), cancellationToken: Ct))
        {
            rows.Add(row);
        }

        return rows;
    }
}
