using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Schedules;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Schedules;

/// <summary>The schedule routes as a test drives them, and the sweep a timer would fire.</summary>
internal static class ScheduleApi
{
    public const string SchedulesPath = "/api/v1/schedules";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static object ExportUsers => new { job = new { type = "export", parameters = new { kind = "users", format = "csv" } } };

    /// <summary>Creates a schedule (201 asserted) and returns the body.</summary>
    public static async Task<JsonElement> CreateScheduleAsync(this HttpClient client, object body) =>
        await (await client.PostAsJsonAsync(SchedulesPath, body, Ct)).ReadJsonAsync(HttpStatusCode.Created);

    public static Task<JsonElement> OneOffAsync(this HttpClient client, DateTimeOffset runAt, object? target = null) =>
        client.CreateScheduleAsync(new { name = "once", runAt = Iso(runAt), target = target ?? ExportUsers });

    public static async Task<IReadOnlyList<JsonElement>> RunsAsync(this HttpClient client, string scheduleId) =>
        [.. (await client.GetJsonAsync($"{SchedulesPath}/{scheduleId}/runs")).GetProperty("items").EnumerateArray()];

    /// <summary>Polls the runs until <paramref name="count"/> of them are no longer pending.</summary>
    public static Task<IReadOnlyList<JsonElement>> SettledRunsAsync(this HttpClient client, string scheduleId, int count = 1) =>
        Eventually.Until(() => client.RunsAsync(scheduleId), runs => runs.Count >= count && runs.All(r => r.Str("status") != "pending"),
            $"{count} run(s) of schedule {scheduleId}",
            // A sweep, a start as the owner and the job's first status: on a loaded run that has passed 30 s.
            TimeSpan.FromSeconds(90));

    /// <summary>What the <c>ScheduleSweep</c> timer does when it fires, run now on this instance.</summary>
    public static async Task<int> SweepAsync(this PlatformApp app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ScheduleSweep>().RunDueAsync(Ct);
    }

    public static string Iso(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    public static DateTimeOffset Time(this JsonElement item, string property) => item.GetProperty(property).GetDateTimeOffset();
}
