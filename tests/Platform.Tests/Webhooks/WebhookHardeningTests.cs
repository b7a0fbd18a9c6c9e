using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;
using Platform.Functions.Webhooks;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Webhooks;

/// <summary>Attacks on outgoing webhooks found in review, each through HTTP against Azurite with loopback receivers.</summary>
public sealed class WebhookHardeningTests(Azurite azurite) : WebhookTestBase(azurite)
{
    private static readonly string[] All = ["*"];
    private static readonly string[] InventoryEvents = ["inventory.*"];
    private static readonly string[] WebhookEvents = ["webhook.*"];
    private static readonly string[] UserEvents = ["user.*"];
    private static readonly string[] HookPermissions = ["webhooks.read", "webhooks.manage"];
    private static readonly string[][] SecurityFilters = [["*"], ["auth.*"], ["user.*"], ["apikey.*"], ["role.*"], ["tenant.*"], ["user.created"], ["inventory.*", "auth.login.failed"]];

    /// <summary>A host name longer than DNS allows made the resolver throw: a 500 instead of a field error.</summary>
    [Fact]
    public async Task AHostNameLongerThanDnsAllowsIsA400()
    {
        var host = string.Join('.', Enumerable.Repeat(new string('a', 50), 6));
        Assert.True(host.Length > 255);

        var problem = await (await Admin.PostAsJsonAsync("/api/v1/webhooks/endpoints", new { url = $"http://{host}/hooks", events = All }, Ct))
            .ReadProblemAsync(400, "validation_failed");

        Assert.Contains("253", problem.GetProperty("errors").GetProperty("url")[0].GetString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// webhooks.manage alone must not be a way around audit.read: an endpoint that hears sign-ins, users, keys, roles or
    /// the tenant receives their changes, so subscribing one (or pointing one elsewhere) needs audit.read too.
    /// </summary>
    [Fact]
    public async Task SubscribingToSecurityEventsNeedsAuditRead()
    {
        var role = await Admin.PutAsJsonAsync("/api/v1/roles/hooker", new { permissions = HookPermissions }, Ct);
        Assert.True(role.IsSuccessStatusCode, await role.Content.ReadAsStringAsync(Ct));
        using var manager = await SignedInAsync("hooks@example.com", "hooker");
        var receiver = await ReceiverAsync();
        var (adminEndpoint, _) = await CreateEndpointAsync(Admin, receiver.Url, events: All);

        foreach (var events in SecurityFilters)
        {
            await (await manager.PostAsJsonAsync("/api/v1/webhooks/endpoints", new { url = receiver.Url, events }, Ct)).ReadProblemAsync(403, "permission_not_held");
        }

        var (own, _) = await CreateEndpointAsync(manager, receiver.Url, events: InventoryEvents);
        await (await manager.PatchAsJsonAsync($"/api/v1/webhooks/endpoints/{own}", new { events = UserEvents }, Ct)).ReadProblemAsync(403, "permission_not_held");
        // Pointing the admin's "*" endpoint at a URL of one's own would receive the same events.
        await (await manager.PatchAsJsonAsync($"/api/v1/webhooks/endpoints/{adminEndpoint}", new { url = receiver.Url + "/mine" }, Ct)).ReadProblemAsync(403, "permission_not_held");
        Assert.Equal(receiver.Url, (await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/webhooks/endpoints/{adminEndpoint}", Ct)).GetProperty("url").GetString());

        // What is not a security event stays theirs to manage, and the admin (who holds audit.read) may subscribe to all.
        Assert.Equal(HttpStatusCode.OK, (await manager.PatchAsJsonAsync($"/api/v1/webhooks/endpoints/{adminEndpoint}", new { description = "seen" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchAsJsonAsync($"/api/v1/webhooks/endpoints/{own}", new { events = All }, Ct)).StatusCode);
    }

    /// <summary>
    /// An event with a stable id published again later (a retried activity) is the same event: its delivery id must not
    /// depend on when it was published, or the endpoint gets it twice.
    /// </summary>
    [Fact]
    public async Task AStableIdEventPublishedAgainLaterMakesOneDelivery()
    {
        var receiver = await ReceiverAsync();
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        var fanOut = App.Services.GetRequiredService<WebhookFanOut>();
        var tenant = new TenantId(Tenant.Id);
        var eventId = Ids.Derived(DateTimeOffset.UtcNow.AddMinutes(-10), "role.created\nstable");
        var roleCreated = new PlatformEvent("role.created", Actor.System, "role", "stable");

        await fanOut.OnEventsAsync(tenant, [new PublishedEvent(eventId, DateTimeOffset.UtcNow.AddMinutes(-10), roleCreated)], Ct);
        await fanOut.OnEventsAsync(tenant, [new PublishedEvent(eventId, DateTimeOffset.UtcNow, roleCreated)], Ct);

        Assert.Single(await DeliveriesAsync(Admin, id));
        await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n == 1, "the delivery");
        await RaiseRoleEventAsync(Admin, "after");
        var hooks = await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count >= 2, "the later event");
        Assert.Equal(["stable", "after"], hooks.Select(RoleOf));
    }

    /// <summary>The query of an endpoint's URL often carries a token: events, the audit trail and the mail show the URL without it.</summary>
    [Fact]
    public async Task EndpointUrlsInEventsAndMailCarryNoQuery()
    {
        var witness = await ReceiverAsync();
        await CreateEndpointAsync(Admin, witness.Url, events: WebhookEvents);
        var gone = await ReceiverAsync();
        gone.Answer = _ => 410;
        var (id, _) = await CreateEndpointAsync(Admin, gone.Url + "?token=s3cret-one");
        var patched = await Admin.PatchAsJsonAsync($"/api/v1/webhooks/endpoints/{id}", new { url = gone.Url + "/v2?token=s3cret-two" }, Ct);
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);

        await RaiseRoleEventAsync(Admin, "leaky");

        var mail = await Eventually.Until(() => Task.FromResult(App.MailTo(Tenant.AdminEmail).Where(m => m.Subject?.Contains("webhook endpoint", StringComparison.Ordinal) == true).ToList()),
            m => m.Count == 1, "the disable mail");
        Assert.Contains(gone.Url + "/v2", mail[0].TextBody, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", mail[0].TextBody + mail[0].HtmlBody, StringComparison.Ordinal);

        var events = await Eventually.Until(() => Task.FromResult(witness.Succeeded.Where(e => About(e) == id).ToList()), r => r.Count >= 3, "created, updated and disabled");
        Assert.Equal(["webhook.endpoint.created", "webhook.endpoint.updated", "webhook.endpoint.disabled"],
            events.Select(e => JsonDocument.Parse(e.Body).RootElement.GetProperty("type").GetString()));
        Assert.Equal([gone.Url, gone.Url + "/v2", gone.Url + "/v2"],
            events.Select(e => JsonDocument.Parse(e.Body).RootElement.GetProperty("data").GetProperty("changes").GetProperty("url").GetString()));
        Assert.All(events, e => Assert.DoesNotContain("s3cret", e.Body, StringComparison.Ordinal));

        var audit = await Admin.GetStringAsync($"/api/v1/audit?targetId={id}", Ct);
        Assert.Contains("webhook.endpoint.updated", audit, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", audit, StringComparison.Ordinal);
    }

    private static string? About(ReceivedHook hook) => JsonDocument.Parse(hook.Body).RootElement.GetProperty("data").GetProperty("id").GetString();
}

/// <summary>The request timeout covers the response body as well as the headers.</summary>
public sealed class WebhookTimeoutTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?> { ["Platform:Webhooks:Timeout"] = "00:00:01" };

    /// <summary>
    /// A receiver that answers its headers at once and then trickles the body a byte at a time held the lane for as long
    /// as it liked (4 KB at 10 bytes/s is seven minutes), since the client's timeout stops at the headers.
    /// </summary>
    [Fact]
    public async Task AReceiverTricklingItsBodyTimesOut()
    {
        using var trickler = new SlowListener(trickles: true);
        var (id, _) = await CreateEndpointAsync(Admin, trickler.Url);

        await RaiseRoleEventAsync(Admin, "trickled");

        var delivery = (await Eventually.Until(() => DeliveriesAsync(Admin, id),
            d => d.Count == 1 && d[0].GetProperty("attempts").GetArrayLength() >= 1, "the first attempt to be logged"))[0];
        var first = delivery.GetProperty("attempts")[0];
        Assert.Equal("timed out", first.GetProperty("error").GetString());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("responseStatus").ValueKind);
    }
}

/// <summary>A lane's lease outlives every send made under it, so no two handlers send one lane's head at once.</summary>
public sealed class WebhookLeaseTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:LaneLease"] = "00:00:02",
        ["Platform:Webhooks:LaneBudget"] = "00:00:01",
        ["Platform:Webhooks:Timeout"] = "00:00:10",
    };

    /// <summary>
    /// An endpoint slower than the lease: the lease ran out mid-send, the next event's wake-up took the lane and sent the
    /// same head again, in parallel (out of order, and twice at once).
    /// </summary>
    [Fact]
    public async Task ASendSlowerThanTheLeaseIsNeverOverlappedByAnotherHandler()
    {
        using var slow = new SlowListener(trickles: false);
        var (id, _) = await CreateEndpointAsync(Admin, slow.Url);

        await RaiseRoleEventAsync(Admin, "slow-head");
        await RaiseRoleEventAsync(Admin, "slow-next");

        await Eventually.Until(() => DeliveriesAsync(Admin, id),
            d => d.Any(x => x.GetProperty("attempts").GetArrayLength() >= 2), "the head to be attempted twice");
        Assert.True(slow.Requests >= 2);
        Assert.Equal(1, slow.MaxInFlight);
    }
}

/// <summary>Recover is bounded per call and sends each failed message once, however often it was recovered before.</summary>
public sealed class WebhookRecoverTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>
    {
        // One attempt per delivery: a failure is final at once.
        ["Platform:Webhooks:RetrySchedule"] = "00:00:00",
        ["Platform:Webhooks:RecoverLimit"] = "2",
    };

    private async Task<JsonElement> RecoverAsync(string id, DateTimeOffset since)
    {
        var response = await Admin.PostAsJsonAsync($"/api/v1/webhooks/endpoints/{id}/recover", new { since }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private static Task<List<JsonElement>> AllFailedAsync(HttpClient admin, string id, int count) =>
        Eventually.Until(() => DeliveriesAsync(admin, id), d => d.Count == count && d.All(x => x.GetProperty("status").GetString() == "failed"), $"{count} failed deliveries");

    /// <summary>Replays are failed rows too: each recover re-sent the originals and every earlier replay, doubling each time.</summary>
    [Fact]
    public async Task RecoverAfterRecoverSendsEachMessageOnce()
    {
        var receiver = await ReceiverAsync();
        receiver.Answer = _ => 500;
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        var since = DateTimeOffset.UtcNow.AddMinutes(-1);
        await RaiseRoleEventAsync(Admin, "amplified");
        await AllFailedAsync(Admin, id, 1);

        for (var round = 1; round <= 3; round++)
        {
            var answer = await RecoverAsync(id, since);
            Assert.Equal(1, answer.GetProperty("recovered").GetInt32());
            Assert.False(answer.TryGetProperty("more", out var more) && more.GetBoolean());
            await AllFailedAsync(Admin, id, round + 1);
        }

        Assert.Equal(4, receiver.Received.Count);
        Assert.Single(receiver.Received.Select(r => r.Id).Distinct());
    }

    [Fact]
    public async Task RecoverSendsAtMostTheLimitOldestFirstAndSaysWhenThereIsMore()
    {
        var receiver = await ReceiverAsync();
        var failing = true;
        receiver.Answer = _ => Volatile.Read(ref failing) ? 500 : 200;
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        var since = DateTimeOffset.UtcNow.AddMinutes(-1);
        string[] roles = [await RaiseRoleEventAsync(Admin, "capped-0"), await RaiseRoleEventAsync(Admin, "capped-1"), await RaiseRoleEventAsync(Admin, "capped-2")];
        await AllFailedAsync(Admin, id, 3);
        Volatile.Write(ref failing, false);

        var first = await RecoverAsync(id, since);
        Assert.Equal(2, first.GetProperty("recovered").GetInt32());
        Assert.True(first.GetProperty("more").GetBoolean());
        await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), n => n == 2, "the first two");

        var second = await RecoverAsync(id, since);
        Assert.Equal(1, second.GetProperty("recovered").GetInt32());
        Assert.False(second.GetProperty("more").GetBoolean());
        var succeeded = await Eventually.Until(() => Task.FromResult(receiver.Succeeded), r => r.Count == 3, "the last one");
        Assert.Equal(roles, succeeded.Select(RoleOf));

        var third = await RecoverAsync(id, DateTimeOffset.UtcNow.AddYears(-5));
        Assert.Equal(0, third.GetProperty("recovered").GetInt32());
    }
}

/// <summary>A lane whose wake-up was lost is found and woken by the lane sweep timer.</summary>
public sealed class WebhookStallTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:RetrySchedule"] = "00:00:00,00:00:05",
        ["Platform:Webhooks:StallAfter"] = "00:00:01",
    };

    [Fact]
    public async Task ALaneWhoseRetryMessageWasLostIsWokenByTheSweep()
    {
        var receiver = await ReceiverAsync();
        var calls = 0;
        receiver.Answer = _ => Interlocked.Increment(ref calls) == 1 ? 500 : 200;
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        await RaiseRoleEventAsync(Admin, "stalled");
        await Eventually.Until(() => DeliveriesAsync(Admin, id),
            d => d.Count == 1 && d[0].GetProperty("attempt").GetInt32() == 1 && d[0].GetProperty("status").GetString() == "pending",
            "the retry to be scheduled");
        var rows = App.Services.GetRequiredService<WebhookDirectory>().Rows(new TenantId(Tenant.Id));
        await Eventually.Until(() => rows.GetAsync<LaneEntity>(WebhookRows.Lane(id), Ct), lane => lane?.LeaseUntil is null, "the lane to be let go");

        // The retry's wake-up is lost (as if poisoned or deleted): nothing else would move this lane.
        await App.Storage.Queue(WebhookDeliveries.QueueName).ClearMessagesAsync(Ct);

        await Eventually.Until(async () =>
        {
            using var scope = App.Services.CreateScope();
            await scope.ServiceProvider.GetRequiredService<WebhookLaneSweep>().RunAsync(new TimerInvocation(false, null, null), Ct);
            return receiver.Succeeded.Count;
        }, n => n == 1, "the sweep to wake the lane");
        Assert.Equal("stalled", RoleOf(receiver.Succeeded[0]));
    }
}

/// <summary>The failure streak that disables an endpoint is a streak: a long quiet spell after a failure ends it.</summary>
public sealed class WebhookFailureStreakTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override bool UsesFakeClock => true;

    protected override IDictionary<string, string?> MoreSettings => new Dictionary<string, string?> { ["Platform:Webhooks:RetrySchedule"] = "00:00:00" };

    /// <summary>An endpoint whose last delivery failed and that then heard nothing for five days was disabled by its next single failure.</summary>
    [Fact]
    public async Task OneFailureAfterAQuietSpellDoesNotDisableTheEndpoint()
    {
        var receiver = await ReceiverAsync();
        receiver.Answer = _ => 500;
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        var rows = App.Services.GetRequiredService<WebhookDirectory>().Rows(new TenantId(Tenant.Id));
        var start = Clock.GetUtcNow();

        await RaiseRoleEventAsync(Admin, "before-quiet");
        await FailedAndLetGoAsync(id, rows, 1);

        Clock.Advance(TimeSpan.FromDays(5) + TimeSpan.FromHours(1));
        await SignInAdminAgainAsync();
        await RaiseRoleEventAsync(Admin, "after-quiet");
        var lane = await FailedAndLetGoAsync(id, rows, 2);

        var endpoint = await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/webhooks/endpoints/{id}", Ct);
        Assert.True(endpoint.GetProperty("enabled").GetBoolean(), endpoint.ToString());
        Assert.True(lane.FailingSince > start + TimeSpan.FromDays(5), "a new failure streak began after the quiet spell");
        Assert.Equal(2, receiver.Received.Count);
    }

    /// <summary>Waits until <paramref name="count"/> deliveries failed and the lane's run that failed the last one ended.</summary>
    private async Task<LaneEntity> FailedAndLetGoAsync(string id, TenantPartition rows, int count)
    {
        await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d.Count == count && d.All(x => x.GetProperty("status").GetString() == "failed"), $"{count} failed deliveries");
        return (await Eventually.Until(() => rows.GetAsync<LaneEntity>(WebhookRows.Lane(id), Ct), lane => lane is { LeaseUntil: null }, "the lane to be let go"))!;
    }
}
