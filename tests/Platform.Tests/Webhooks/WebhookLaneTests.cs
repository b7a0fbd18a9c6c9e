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
/// How a lane sends: pacing, a repeated hand-over from the event path, redirects, and a delivery added while the lane
/// is busy. The lease is long (2 min) so a wake-up wrongly put off until the lease ends shows as a timeout.
/// </summary>
public sealed class WebhookLaneTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:LaneLease"] = "00:02:00",
    };

    private static readonly string[] InventoryRead = ["inventory.read"];

    [Fact]
    public async Task RateLimitPerSecondPacesTheLane()
    {
        var receiver = await ReceiverAsync();
        await CreateEndpointAsync(Admin, receiver.Url, rateLimitPerSecond: 2);

        var roles = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            roles.Add(await RaiseRoleEventAsync(Admin, $"paced-{i}"));
        }

        var hooks = await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count >= roles.Count, "every paced delivery");
        Assert.Equal(roles, hooks.Select(RoleOf));

        // 2/s is one every 500 ms; the bound leaves room for jitter at the receiver, not for a second send in a gap.
        var gaps = hooks.Zip(hooks.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a.ArrivedAt, b.ArrivedAt)).ToList();
        Assert.All(gaps, gap => Assert.True(gap >= TimeSpan.FromMilliseconds(400), $"two deliveries came {gap.TotalMilliseconds:F0} ms apart: {string.Join(", ", gaps.Select(g => g.TotalMilliseconds.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))}"));
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
    public async Task ADeliveryAddedAsTheLaneFinishesIsNotPutOffUntilTheLeaseEnds()
    {
        // Each arrival queues the next replay while the lane that sent it is still finishing (recording the attempt,
        // looking for more, letting go): a replay added in that moment must go out at once, not after the 2 min lease.
        var receiver = await ReceiverAsync();
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        await RaiseRoleEventAsync(Admin, "replayed");
        await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n == 1, "the first delivery");
        var deliveryId = (await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d.Count == 1, "the log"))[0].GetProperty("id").GetString();

        const int replays = 12;
        var replaying = new List<Task<HttpResponseMessage>>();
        var sent = 0;
        receiver.Answer = _ =>
        {
            if (Interlocked.Increment(ref sent) < replays)
            {
                lock (replaying)
                {
                    replaying.Add(Admin.PostAsync($"/api/v1/webhooks/deliveries/{deliveryId}/replay", null, Ct));
                }
            }

            return 200;
        };

        for (var i = 0; i < replays; i++)
        {
            if (i == 0)
            {
                var first = await Admin.PostAsync($"/api/v1/webhooks/deliveries/{deliveryId}/replay", null, Ct);
                Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
            }

            await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n >= i + 2, $"replay {i + 1} of {replays}", TimeSpan.FromSeconds(15));
        }

        Task<HttpResponseMessage>[] answered;
        lock (replaying)
        {
            answered = [.. replaying];
        }

        Assert.All(await Task.WhenAll(answered), r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        Assert.Equal(replays + 1, receiver.Succeeded.Count);
        Assert.Single(receiver.Succeeded.Select(h => h.Id).Distinct());
    }
}
