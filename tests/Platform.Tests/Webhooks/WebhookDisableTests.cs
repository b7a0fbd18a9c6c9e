using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Webhooks;

/// <summary>
/// The disable policy for an endpoint that keeps failing, with a short streak (3 s): the fast schedule's eight attempts
/// span 4.5 s, so the streak, not the schedule, ends the first delivery.
/// </summary>
public sealed class WebhookDisableTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:DisableAfter"] = "00:00:03",
    };

    private static readonly string[] DisabledAndRoles = ["webhook.endpoint.disabled", "role.*"];

    private async Task<JsonElement> EndpointAsync(string id) => await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/webhooks/endpoints/{id}", Ct);

    [Fact]
    public async Task AnEndpointFailingForTheDisablePeriodIsDisabledAnnouncedAndMailedAndGetsNoMoreAttempts()
    {
        var failing = await ReceiverAsync();
        failing.Answer = _ => 500;
        var (id, _) = await CreateEndpointAsync(Admin, failing.Url);
        var witness = await ReceiverAsync();
        await CreateEndpointAsync(Admin, witness.Url, events: DisabledAndRoles);

        await RaiseRoleEventAsync(Admin, "streak-one");

        await Eventually.Until(async () => (await EndpointAsync(id)).GetProperty("enabled").GetBoolean(), enabled => !enabled, "the endpoint to be disabled");
        Assert.Equal("failing", (await EndpointAsync(id)).GetProperty("disabledReason").GetString());
        var delivery = Assert.Single(await DeliveriesAsync(Admin, id));
        Assert.Equal("failed", delivery.GetProperty("status").GetString());
        // Disabled by the streak before the schedule ran out.
        Assert.InRange(delivery.GetProperty("attempt").GetInt32(), 2, 7);
        Assert.Equal(JsonValueKind.Null, delivery.GetProperty("nextAttemptAt").ValueKind);

        // The event: in the audit trail, and delivered to the endpoint subscribed to it.
        var audit = await Eventually.Until(
            async () => (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=webhook.endpoint.disabled", Ct)).GetProperty("items").EnumerateArray().ToList(),
            items => items.Count >= 1, "the audit entry");
        var entry = Assert.Single(audit);
        Assert.Equal(id, entry.GetProperty("targetId").GetString());
        Assert.Equal("system", entry.GetProperty("actorType").GetString());
        Assert.Equal("failing", entry.GetProperty("changes").GetProperty("reason").GetString());
        var announced = await Eventually.Until(
            () => Task.FromResult(witness.Succeeded.Where(h => h.Body.Contains("webhook.endpoint.disabled", StringComparison.Ordinal)).ToList()),
            hooks => hooks.Count >= 1, "the disabled event at the other endpoint");
        var body = JsonDocument.Parse(Assert.Single(announced).Body).RootElement;
        Assert.Equal("webhook.endpoint.disabled", body.GetProperty("type").GetString());
        Assert.Equal(id, body.GetProperty("data").GetProperty("id").GetString());
        Assert.Equal("failing", body.GetProperty("data").GetProperty("changes").GetProperty("reason").GetString());
        Assert.Equal(failing.Url, body.GetProperty("data").GetProperty("changes").GetProperty("url").GetString());

        var mail = Assert.Single(await Eventually.Until(
            () => Task.FromResult(App.MailTo(Tenant.AdminEmail).Where(m => m.Subject?.Contains("webhook endpoint", StringComparison.Ordinal) == true).ToList()),
            mails => mails.Count >= 1, "the mail to the admin"));
        Assert.Contains(failing.Url, mail.TextBody, StringComparison.Ordinal);

        // No further attempts: a later event reaches the witness (which follows role.* too) and not the disabled endpoint.
        var attemptsSoFar = failing.Received.Count;
        await RaiseRoleEventAsync(Admin, "streak-two");
        await Eventually.Until(() => Task.FromResult(witness.Succeeded.Count(h => h.Body.Contains("streak-two", StringComparison.Ordinal))), n => n == 1, "the witness delivery");
        Assert.Equal(attemptsSoFar, failing.Received.Count);
        Assert.Single(await DeliveriesAsync(Admin, id));
    }

    [Fact]
    public async Task AReEnabledEndpointStartsAFreshStreak()
    {
        var receiver = await ReceiverAsync();
        receiver.Answer = _ => 500;
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        await RaiseRoleEventAsync(Admin, "before-fix");
        await Eventually.Until(async () => (await EndpointAsync(id)).GetProperty("disabledReason").ValueKind, kind => kind == JsonValueKind.String, "the endpoint to be disabled");

        // The receiver is fixed but has one more hiccup: one failure must not count the streak from before the fix.
        var calls = 0;
        receiver.Answer = _ => Interlocked.Increment(ref calls) == 1 ? 500 : 200;
        var enable = await Admin.PatchAsJsonAsync($"/api/v1/webhooks/endpoints/{id}", new { enabled = true }, Ct);
        Assert.Equal(HttpStatusCode.OK, enable.StatusCode);
        await RaiseRoleEventAsync(Admin, "after-fix");

        await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n == 1, "the delivery after the fix");
        Assert.Equal("after-fix", RoleOf(receiver.Succeeded[0]));
        var endpoint = await EndpointAsync(id);
        Assert.True(endpoint.GetProperty("enabled").GetBoolean());
        Assert.Equal(JsonValueKind.Null, endpoint.GetProperty("disabledReason").ValueKind);
        var delivery = (await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d.Count == 2 && d[0].GetProperty("status").GetString() == "succeeded", "the log"))[0];
        Assert.Equal([500, 200], delivery.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("responseStatus").GetInt32()));
    }
}
