using System.Globalization;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Webhooks;

/// <summary>
/// <c>Retry-After</c> on 429 and 503, read from the delivery log's <c>nextAttemptAt</c> (when the attempt was recorded
/// and when the next is due), not from the clock on the wall. The schedule here waits 3 s between attempts.
/// </summary>
public sealed class WebhookRetryAfterTests(Azurite azurite) : WebhookTestBase(azurite)
{
    private const string ThreeSeconds = "00:00:00,00:00:03,00:00:03,00:00:03,00:00:03,00:00:03,00:00:03,00:00:03";

    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:RetrySchedule"] = ThreeSeconds,
    };

    /// <summary>The log of the endpoint's one delivery once its first attempt failed and the next is planned.</summary>
    private async Task<JsonElement> FirstRetryPlannedAsync(string endpointId) =>
        (await Eventually.Until(() => DeliveriesAsync(Admin, endpointId),
            d => d.Count == 1 && d[0].GetProperty("attempt").GetInt32() >= 1 && d[0].GetProperty("nextAttemptAt").ValueKind == JsonValueKind.String,
            "the first attempt to be recorded with its next one"))[0];

    private static TimeSpan Wait(JsonElement delivery) =>
        delivery.GetProperty("nextAttemptAt").GetDateTimeOffset() - delivery.GetProperty("at").GetDateTimeOffset();

    private static List<DateTimeOffset> AttemptTimes(JsonElement delivery) =>
        [.. delivery.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("at").GetDateTimeOffset())];

    [Fact]
    public async Task A503WithALongerRetryAfterWaitsWhatItAsks()
    {
        var receiver = await ReceiverAsync();
        var calls = 0;
        receiver.Answer = _ => Interlocked.Increment(ref calls) == 1 ? 503 : 200;
        receiver.ResponseHeaders["Retry-After"] = "5";
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);

        await RaiseRoleEventAsync(Admin, "asked-to-wait");

        var planned = await FirstRetryPlannedAsync(id);
        Assert.Equal("pending", planned.GetProperty("status").GetString());
        Assert.Equal(503, planned.GetProperty("responseStatus").GetInt32());
        Assert.InRange(Wait(planned), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(6));

        var done = (await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d[0].GetProperty("status").GetString() == "succeeded", "the retried delivery"))[0];
        var times = AttemptTimes(done);
        Assert.Equal(2, times.Count);
        Assert.True(times[1] - times[0] >= TimeSpan.FromSeconds(5), $"the second attempt came {times[1] - times[0]} after the first");
    }

    [Fact]
    public async Task A429WithAShorterRetryAfterKeepsTheSchedule()
    {
        // Retry-After: 0 must not spend the attempts in a burst.
        var receiver = await ReceiverAsync();
        var calls = 0;
        receiver.Answer = _ => Interlocked.Increment(ref calls) == 1 ? 429 : 200;
        receiver.ResponseHeaders["Retry-After"] = "0";
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);

        await RaiseRoleEventAsync(Admin, "asked-for-less");

        var done = (await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d.Count == 1 && d[0].GetProperty("status").GetString() == "succeeded", "the retried delivery"))[0];
        var times = AttemptTimes(done);
        Assert.Equal([429, 200], done.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("responseStatus").GetInt32()));
        Assert.True(times[1] - times[0] >= TimeSpan.FromSeconds(3), $"the second attempt came {times[1] - times[0]} after the first");
    }

    [Fact]
    public async Task AHugeRetryAfterIsCappedAtMaxRetryAfter()
    {
        // Thirty days as seconds (429) and as a date (503): both wait MaxRetryAfter (1 h), not a month.
        var seconds = await ReceiverAsync();
        seconds.Answer = _ => 429;
        seconds.ResponseHeaders["Retry-After"] = (30 * 86400).ToString(CultureInfo.InvariantCulture);
        var date = await ReceiverAsync();
        date.Answer = _ => 503;
        date.ResponseHeaders["Retry-After"] = DateTimeOffset.UtcNow.AddDays(30).ToString("R", CultureInfo.InvariantCulture);
        var (bySeconds, _) = await CreateEndpointAsync(Admin, seconds.Url);
        var (byDate, _) = await CreateEndpointAsync(Admin, date.Url);

        await RaiseRoleEventAsync(Admin, "asked-for-a-month");

        foreach (var id in new[] { bySeconds, byDate })
        {
            var planned = await FirstRetryPlannedAsync(id);
            Assert.Equal("pending", planned.GetProperty("status").GetString());
            Assert.Equal(1, planned.GetProperty("attempt").GetInt32());
            Assert.InRange(Wait(planned), TimeSpan.FromHours(1), TimeSpan.FromHours(1) + TimeSpan.FromSeconds(5));
        }

        Assert.Single(seconds.Received);
        Assert.Single(date.Received);
    }
}
