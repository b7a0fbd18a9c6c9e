using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.ApiKeys;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Inventory;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Functions.Webhooks;
using Platform.Functions.Webhooks.Receivers;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;
using Platform.Tests.Webhooks.Receivers;

namespace Platform.Tests.Events;

/// <summary>
/// Each capability commits its events in the transaction of the change itself: with the relay of the instance stuck
/// (as if it died right after answering), the event is already in the outbox of the changed row's own table and
/// partition the moment the answer arrives, and in no subscriber yet. One test per family of writers.
/// </summary>
public sealed class ChangeCommitsItsEventTests(Azurite azurite) : IAsyncLifetime
{
    private static readonly string[] InventoryRead = ["inventory.read"];
    private static readonly string[] RoleEvents = ["role.*"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private PlatformApp _app = null!;
    private TestTenant _tenant = null!;
    private HttpClient _admin = null!;

    public async ValueTask InitializeAsync()
    {
        _app = await new PlatformApp(azurite, settings: new Dictionary<string, string?> { ["Platform:Webhooks:AllowPrivateNetworks"] = "true" }, services: StuckFirst).ReadyAsync();
        _tenant = await _app.SignUpAsync();
        _admin = await _app.SignedInClientAsync(_tenant);
    }

    public async ValueTask DisposeAsync()
    {
        _admin.Dispose();
        await _app.DisposeAsync();
    }

    private TenantId Tenant => new(_tenant.Id);

    /// <summary>The events waiting in the outbox of <paramref name="table"/>'s partition of the tenant.</summary>
    private async Task<List<PublishedEvent>> PendingAsync(string table) =>
        [.. (await EventOutbox.PendingAsync(_app.Storage.TenantTable(table).For(Tenant), 100, Ct).ToListAsync(Ct)).SelectMany(EventOutbox.EventsOf)];

    private async Task AssertCommittedWithAsync(string table, string type, string? targetId)
    {
        Assert.Contains(await PendingAsync(table), e => e.Event.Type == type && e.Event.TargetId == targetId);
        var audited = await _app.Services.GetRequiredService<AuditTrail>().Entries(Tenant)
            .QueryWhereAsync<AuditEntry>($"Action eq {type}", cancellationToken: Ct).ToListAsync(Ct);
        Assert.Empty(audited);
    }

    [Fact]
    public async Task A_location_and_its_event_commit_together_in_the_inventory_partition()
    {
        var id = await _admin.CreateLocationIdAsync("Dock");

        await AssertCommittedWithAsync(InventoryStore.TableName, "inventory.location.created", id);
    }

    [Fact]
    public async Task A_role_and_its_event_commit_together_and_the_pending_outbox_row_is_no_role()
    {
        (await Platform.Tests.Users.UserApi.PutRoleAsync(_admin, "auditor", "audit.read")).EnsureSuccessStatusCode();

        await AssertCommittedWithAsync(RoleDirectory.TableName, "role.created", "auditor");

        // The outbox row sits in the roles partition until relayed: the list must not take it for a role.
        var list = await _admin.GetJsonAsync("/api/v1/roles");
        Assert.Equal(["admin", "manager", "user", "auditor"], list.GetProperty("items").EnumerateArray().Select(r => r.Str("name")));
    }

    [Fact]
    public async Task An_api_key_and_its_event_commit_together_in_the_keys_partition()
    {
        var created = await (await _admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "CI", permissions = InventoryRead }, Ct))
            .ReadJsonAsync(HttpStatusCode.Created);

        await AssertCommittedWithAsync(ApiKeyStore.TableName, "apikey.created", created.Id());
    }

    [Fact]
    public async Task A_sign_in_commits_with_its_session_and_a_profile_change_with_the_user_row()
    {
        // The admin's sign-in of the set-up: its event waits beside the session row.
        var session = Assert.Single(await _app.Storage.TenantTable(Sessions.TableName).For(Tenant)
            .QueryAsync<SessionEntity>(_tenant.AdminId + ":", cancellationToken: Ct).ToListAsync(Ct));
        await AssertCommittedWithAsync(Sessions.TableName, "auth.login.succeeded", session.Id);

        (await _admin.PatchAsJsonAsync("/api/v1/me", new { displayName = "Renamed" }, Ct)).EnsureSuccessStatusCode();
        await AssertCommittedWithAsync(UserDirectory.TableName, "user.updated", _tenant.AdminId);
    }

    [Fact]
    public async Task A_reset_request_commits_its_event_with_the_count_of_reset_mails()
    {
        using var anonymous = _app.CreateClient();
        var response = await anonymous.PostAsJsonAsync("/api/v1/auth/forgot-password", new { tenant = _tenant.Slug, email = _tenant.AdminEmail }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        // The queue function counts the request and commits the event with that count.
        await _app.MailsLinkingToAsync(_tenant.AdminEmail, "reset-password");
        await AssertCommittedWithAsync(UserTokens.TableName, "auth.password_reset.requested", _tenant.AdminId);
    }

    [Fact]
    public async Task Webhook_endpoints_and_receivers_commit_their_events_in_their_own_partitions()
    {
        var endpoint = await (await _admin.PostAsJsonAsync("/api/v1/webhooks/endpoints", new { url = "http://127.0.0.1:9/hook", events = RoleEvents }, Ct))
            .ReadJsonAsync(HttpStatusCode.Created);
        await AssertCommittedWithAsync(WebhookDirectory.TableName, "webhook.endpoint.created", endpoint.Id());

        var receiver = await _admin.CreateReceiverAsync("inventory.movements");
        await AssertCommittedWithAsync(ReceiverStore.TableName, "webhook.receiver.created", receiver.Id);
    }

    /// <summary>Puts <see cref="Stuck"/> before every other subscriber, so none of them sees an event.</summary>
    private static void StuckFirst(IServiceCollection services) => services.Insert(0, ServiceDescriptor.Singleton<IEventSubscriber, Stuck>());

    /// <summary>A subscriber that never finishes: the relay of this instance gets nowhere, as if it had died first.</summary>
    private sealed class Stuck : IEventSubscriber
    {
        public Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken) =>
            Task.Delay(Timeout.Infinite, cancellationToken);
    }
}
