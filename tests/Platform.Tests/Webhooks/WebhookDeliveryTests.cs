using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using StandardWebhooks;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Webhooks;

/// <summary>Deliveries end to end: the app's queue function sends to real loopback receivers.</summary>
public sealed class WebhookDeliveryTests(Azurite azurite) : WebhookTestBase(azurite)
{
    [Fact]
    public async Task DeliveryArrivesSignedAsTheReferenceLibraryVerifies()
    {
        var receiver = await ReceiverAsync();
        var (_, secret) = await CreateEndpointAsync(Admin, receiver.Url, headers: new Dictionary<string, string> { ["X-Team"] = "erp" });

        await RaiseRoleEventAsync(Admin, "auditors");

        var hook = (await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count >= 1, "the delivery"))[0];
        new StandardWebhook(secret).Verify(hook.Body, hook.Headers);
        var body = JsonDocument.Parse(hook.Body).RootElement;
        Assert.Equal("role.created", body.GetProperty("type").GetString());
        Assert.Equal("auditors", body.GetProperty("data").GetProperty("id").GetString());
        Assert.Equal("role", body.GetProperty("data").GetProperty("object").GetString());
        Assert.Equal(Tenant.AdminId, body.GetProperty("data").GetProperty("actor").GetProperty("id").GetString());
        Assert.DoesNotContain("ip", hook.Body, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("Platform-Webhooks/1", hook.Headers.UserAgent.ToString());
        Assert.Equal("erp", hook.Headers["X-Team"].ToString());
        Assert.Matches("^[0-9A-Z]{26}$", hook.Id);
    }

    [Fact]
    public async Task DuringARotationsGraceBothSecretsSign()
    {
        var receiver = await ReceiverAsync();
        var (id, oldSecret) = await CreateEndpointAsync(Admin, receiver.Url);
        var rotated = await Admin.PostAsJsonAsync($"/api/v1/webhooks/endpoints/{id}/rotate-secret", new { graceSeconds = 3600 }, Ct);
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var newSecret = (await rotated.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("secret").GetString()!;
        Assert.StartsWith("whsec_", newSecret, StringComparison.Ordinal);
        Assert.NotEqual(oldSecret, newSecret);

        await RaiseRoleEventAsync(Admin, "rotated");

        var hook = (await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count >= 1, "the delivery"))[0];
        Assert.Equal(2, hook.Headers["webhook-signature"].ToString().Split(' ').Count(s => s.StartsWith("v1,", StringComparison.Ordinal)));
        var content = System.Text.Encoding.UTF8.GetBytes($"{hook.Id}.{hook.Headers["webhook-timestamp"]}.{hook.Body}");
        var expected = string.Join(' ', new[] { newSecret, oldSecret }.Select(s => "v1," + Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(Convert.FromBase64String(s[6..]), content))));
        Assert.Equal(expected, hook.Headers["webhook-signature"].ToString());
        // The reference library (1.1.2) matches only the first signature of a header, so each is checked on its own.
        var signatures = hook.Headers["webhook-signature"].ToString().Split(' ');
        new StandardWebhook(newSecret).Verify(hook.Body, WithSignature(hook, signatures[0]));
        new StandardWebhook(oldSecret).Verify(hook.Body, WithSignature(hook, signatures[1]));
    }

    private static Microsoft.AspNetCore.Http.HeaderDictionary WithSignature(ReceivedHook hook, string signature) =>
        new(hook.Headers.ToDictionary(h => h.Key, h => h.Key.Equals("webhook-signature", StringComparison.OrdinalIgnoreCase) ? new Microsoft.Extensions.Primitives.StringValues(signature) : h.Value));

    [Fact]
    public async Task A500ThenA200IsRetriedAndLogsOneSuccessfulAttempt()
    {
        var receiver = await ReceiverAsync();
        var calls = 0;
        receiver.Answer = _ => Interlocked.Increment(ref calls) == 1 ? 500 : 200;
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);

        await RaiseRoleEventAsync(Admin, "retried");

        await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n == 1, "the retried delivery");
        var all = receiver.Received.ToList();
        Assert.Equal([500, 200], all.Select(r => r.Answered));
        Assert.Equal(all[0].Id, all[1].Id);
        var delivery = Assert.Single(await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d.Count == 1 && d[0].GetProperty("status").GetString() == "succeeded", "the log"));
        Assert.Equal(2, delivery.GetProperty("attempt").GetInt32());
        Assert.Equal(200, delivery.GetProperty("responseStatus").GetInt32());
        Assert.Equal("answer 200", delivery.GetProperty("responseBody").GetString());
        var attempts = delivery.GetProperty("attempts").EnumerateArray().ToList();
        Assert.Equal([500, 200], attempts.Select(a => a.GetProperty("responseStatus").GetInt32()));
        Assert.Equal(1, attempts.Count(a => a.GetProperty("responseStatus").GetInt32() == 200));
    }

    [Fact]
    public async Task A410DisablesTheEndpointMailsTheAdminsAndStopsAttempts()
    {
        var receiver = await ReceiverAsync();
        receiver.Answer = _ => 410;
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);

        await RaiseRoleEventAsync(Admin, "gone-one");
        await Eventually.Until(async () => (await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/webhooks/endpoints/{id}", Ct)).GetProperty("enabled").GetBoolean(),
            enabled => !enabled, "the endpoint to be disabled");
        var endpoint = await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/webhooks/endpoints/{id}", Ct);
        Assert.Equal("gone", endpoint.GetProperty("disabledReason").GetString());
        await Eventually.Until(() => Task.FromResult(App.MailTo(Tenant.AdminEmail).Count(m => m.Subject?.Contains("webhook endpoint", StringComparison.Ordinal) == true)),
            n => n == 1, "the mail to the admin");

        await RaiseRoleEventAsync(Admin, "gone-two");
        // A second endpoint sees the later event: by then the first would have been sent it, were it still enabled.
        var witness = await ReceiverAsync();
        await CreateEndpointAsync(Admin, witness.Url);
        await RaiseRoleEventAsync(Admin, "gone-three");
        await Eventually.Until(() => Task.FromResult(witness.Succeeded.Count), n => n == 1, "the witness delivery");
        Assert.Single(receiver.Received);
        var delivery = Assert.Single(await DeliveriesAsync(Admin, id));
        Assert.Equal("failed", delivery.GetProperty("status").GetString());
        Assert.Equal(410, delivery.GetProperty("responseStatus").GetInt32());
    }

    [Fact]
    public async Task AReceiverDownThenUpGetsEveryEventInOrderOnce()
    {
        var receiver = await ReceiverAsync();
        var up = false;
        receiver.Answer = _ => Volatile.Read(ref up) ? 200 : 503;
        await CreateEndpointAsync(Admin, receiver.Url);

        var roles = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            roles.Add(await RaiseRoleEventAsync(Admin, $"ordered-{i}"));
        }

        await Eventually.Until(() => Task.FromResult(receiver.Received.Count), n => n >= 3, "some failed attempts");
        Volatile.Write(ref up, true);

        var succeeded = await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count >= roles.Count, "every event after the receiver came up");
        Assert.Equal(roles, succeeded.Select(RoleOf));
        Assert.Equal(roles.Count, succeeded.Select(h => h.Id).Distinct().Count());
        // While down, only the head of the lane was tried: nothing behind it jumped the queue.
        Assert.All(receiver.Received.Where(r => r.Answered == 503), r => Assert.Equal("ordered-0", RoleOf(r)));
    }

    [Fact]
    public async Task AHangingEndpointDoesNotHoldBackAHealthyOne()
    {
        var slow = await ReceiverAsync();
        slow.Hang = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var healthy = await ReceiverAsync();
        await CreateEndpointAsync(Admin, slow.Url);
        await CreateEndpointAsync(Admin, healthy.Url);

        var roles = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            roles.Add(await RaiseRoleEventAsync(Admin, $"isolated-{i}"));
        }

        var delivered = await Eventually.Until(() => Task.FromResult(healthy.Succeeded), r => r.Count >= roles.Count, "the healthy endpoint's deliveries");
        Assert.Equal(roles, delivered.Select(RoleOf));

        // All five reached the healthy endpoint while the slow one was still holding its first request: its lane took
        // one handler, and nothing else waited for it.
        Assert.Equal(1, slow.InFlight);
        Assert.Empty(slow.Received);
        slow.Hang.SetResult();
        var slowDelivered = await Eventually.Until(() => Task.FromResult(slow.Succeeded), r => r.Count >= roles.Count, "the slow endpoint to catch up");
        Assert.Equal(roles, slowDelivered.Select(RoleOf));
    }

    [Fact]
    public async Task TestReplayAndRecoverSendAgain()
    {
        var receiver = await ReceiverAsync();
        var failing = true;
        receiver.Answer = _ => Volatile.Read(ref failing) ? 500 : 200;
        var (id, secret) = await CreateEndpointAsync(Admin, receiver.Url);
        var since = DateTimeOffset.UtcNow.AddMinutes(-1);

        await RaiseRoleEventAsync(Admin, "recovered");
        // Eight attempts on the fast schedule, then the delivery is given up.
        var failed = await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d.Count == 1 && d[0].GetProperty("status").GetString() == "failed", "the delivery to fail");
        Assert.Equal(8, failed[0].GetProperty("attempt").GetInt32());
        Volatile.Write(ref failing, false);

        var recover = await Admin.PostAsJsonAsync($"/api/v1/webhooks/endpoints/{id}/recover", new { since }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, recover.StatusCode);
        Assert.Equal(1, (await recover.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("recovered").GetInt32());
        var recovered = (await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count == 1, "the recovered delivery"))[0];
        Assert.Equal("recovered", RoleOf(recovered));
        Assert.Equal(receiver.Received.First().Id, recovered.Id);

        var replay = await Admin.PostAsync($"/api/v1/webhooks/deliveries/{failed[0].GetProperty("id").GetString()}/replay", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, replay.StatusCode);
        await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n == 2, "the replayed delivery");

        var test = await Admin.PostAsync($"/api/v1/webhooks/endpoints/{id}/test", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, test.StatusCode);
        var tested = (await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count == 3, "the test delivery"))[2];
        Assert.Equal("webhook.test", JsonDocument.Parse(tested.Body).RootElement.GetProperty("type").GetString());
        new StandardWebhook(secret).Verify(tested.Body, tested.Headers);
    }
}
