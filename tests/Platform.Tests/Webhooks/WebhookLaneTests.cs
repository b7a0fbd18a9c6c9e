using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Functions.Webhooks;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Webhooks;

/// <summary>
/// How a lane sends: pacing, a repeated hand-over from the event path, redirects, and retries due while the lane is
/// still held. Retries are immediate, and the lease is long (2 min) so a wake-up wrongly put off until the lease ends
/// shows as a timeout.
/// </summary>
public sealed class WebhookLaneTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:LaneLease"] = "00:02:00",
        ["Platform:Webhooks:RetrySchedule"] = "00:00:00,00:00:00,00:00:00,00:00:00,00:00:00,00:00:00,00:00:00,00:00:00",
    };

    private static readonly string[] InventoryRead = ["inventory.read"];

    [Fact]
    public async Task RateLimitPerSecondPacesTheLane()
    {
        var receiver = await ReceiverAsync();
        await CreateEndpointAsync(Admin, receiver.Url, rateLimitPerSecond: 2);

        // Five at once (one lane run sends them) and five one by one, each after the previous arrived (each its own run).
        var roles = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            roles.Add(await RaiseRoleEventAsync(Admin, $"paced-{i}"));
        }

        for (var i = 5; i < 10; i++)
        {
            await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n >= roles.Count, $"delivery {roles.Count}");
            roles.Add(await RaiseRoleEventAsync(Admin, $"paced-{i}"));
        }

        var hooks = await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count >= roles.Count, "every paced delivery");
        Assert.Equal(roles, hooks.Select(RoleOf));

        // 2/s is one every 500 ms; the bound leaves room for jitter at the receiver, not for a second send in a gap.
        var gaps = hooks.Zip(hooks.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a.ArrivedAt, b.ArrivedAt)).ToList();
        var shown = string.Join(", ", gaps.Select(g => g.TotalMilliseconds.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.All(gaps, gap => Assert.True(gap >= TimeSpan.FromMilliseconds(400), $"deliveries came {shown} ms apart"));
    }

    [Fact]
    public async Task TheSameEventHandedOverTwiceIsDeliveredOnce()
    {
        var receiver = await ReceiverAsync();
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        var tenant = new TenantId(Tenant.Id);
        var at = DateTimeOffset.UtcNow;
        var published = new PublishedEvent(Ids.New(), at,
            new PlatformEvent("role.created", Actor.User(Tenant.AdminId, "10.0.0.1"), "role", "handed-over-twice",
                new Dictionary<string, object?> { ["permissions"] = InventoryRead }));
        var fanOut = App.Services.GetRequiredService<WebhookFanOut>();

        // Twice at once, and once more after the delivery succeeded (a relay retried after a crash).
        await Task.WhenAll(fanOut.OnEventsAsync(tenant, [published], Ct), fanOut.OnEventsAsync(tenant, [published], Ct));
        await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n >= 1, "the delivery");
        await fanOut.OnEventsAsync(tenant, [published], Ct);

        // A later event is a fence: a second delivery of the first would sort before it in the lane.
        await RaiseRoleEventAsync(Admin, "fence");
        var hooks = await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Any(h => RoleOf(h) == "fence"), "the fence");
        Assert.Equal(["handed-over-twice", "fence"], hooks.Select(RoleOf));
        Assert.Equal(published.Id, hooks[0].Id);
        var log = await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d.All(x => x.GetProperty("status").GetString() == "succeeded"), "the log");
        Assert.Equal(2, log.Count);
        Assert.Single(log, d => d.GetProperty("eventId").GetString() == published.Id);
    }

    [Fact]
    public async Task ARedirectToLoopbackIsNotFollowedAndLogsTheFailedAttempts()
    {
        using var target = new RecordingListener();
        var receiver = await ReceiverAsync();
        receiver.Answer = _ => 302;
        receiver.ResponseHeaders["Location"] = $"http://127.0.0.1:{target.Port}/internal";
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);

        await RaiseRoleEventAsync(Admin, "redirected");

        var delivery = Assert.Single(await Eventually.Until(() => DeliveriesAsync(Admin, id),
            d => d.Count == 1 && d[0].GetProperty("status").GetString() == "failed", "the delivery to fail"));
        Assert.Equal(302, delivery.GetProperty("responseStatus").GetInt32());
        Assert.Contains("redirect", delivery.GetProperty("error").GetString(), StringComparison.Ordinal);
        var attempts = delivery.GetProperty("attempts").EnumerateArray().ToList();
        Assert.Equal(8, attempts.Count);
        Assert.All(attempts, a => Assert.Equal(302, a.GetProperty("responseStatus").GetInt32()));
        Assert.Equal(8, receiver.Received.Count);
        Assert.Equal(0, target.Connections);
    }

    [Fact]
    public Task RetriesDueAtOnceAreNotPutOffUntilTheLeaseEnds() => EightEndpointsRetrySevenTimesAsync(this);

    /// <summary>
    /// Eight endpoints fail seven times and then succeed: 56 retries, each due while, or just after, the run that
    /// scheduled it is still recording the attempt and letting go of the lane. Every one must be made then, not when
    /// the lease (2 min here) would have run out.
    /// </summary>
    internal static async Task EightEndpointsRetrySevenTimesAsync(WebhookTestBase test)
    {
        var endpoints = new List<(WebhookReceiver Receiver, string Id)>();
        for (var e = 0; e < 8; e++)
        {
            var receiver = await test.StartReceiverAsync();
            var calls = 0;
            receiver.Answer = _ => Interlocked.Increment(ref calls) < 8 ? 500 : 200;
            endpoints.Add((receiver, (await CreateEndpointAsync(test.AdminClient, receiver.Url)).Id));
        }

        await RaiseRoleEventAsync(test.AdminClient, "retried-soon");

        // Seven retries of eight endpoints, each wake-up visible a whole second after it is sent and found by a poller that
        // backs off when the queue is empty, took over 30 s once under the full suite's load. A wake-up put off until the
        // lease ends (2 min here) still shows: 75 s is well inside it.
        foreach (var (receiver, id) in endpoints)
        {
            await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n == 1, "the eighth attempt", TimeSpan.FromSeconds(75));
            var delivery = Assert.Single(await Eventually.Until(() => DeliveriesAsync(test.AdminClient, id), d => d.Count == 1 && d[0].GetProperty("status").GetString() == "succeeded", "the log"));
            Assert.Equal(8, delivery.GetProperty("attempt").GetInt32());
        }
    }
}

/// <summary>
/// Retries less than a second apart: the queue's visibility is in whole seconds, so a wake-up planned for 0.3 s must not
/// come at once (while the failing run still holds the lane) and then wait for the 2 min lease.
/// </summary>
public sealed class WebhookSubSecondRetryTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:LaneLease"] = "00:02:00",
        ["Platform:Webhooks:RetrySchedule"] = "00:00:00,00:00:00.300,00:00:00.300,00:00:00.300,00:00:00.300,00:00:00.300,00:00:00.300,00:00:00.300",
    };

    [Fact]
    public Task SubSecondRetriesAreNotPutOffUntilTheLeaseEnds() => WebhookLaneTests.EightEndpointsRetrySevenTimesAsync(this);
}
