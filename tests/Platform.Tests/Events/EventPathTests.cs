using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Events;
using Platform.Functions.Inventory;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;

namespace Platform.Tests.Events;

/// <summary>
/// A change and its events commit in one transaction (the outbox row in the change's partition), and the relay moves
/// them to the subscribers at least once - also when the process that wrote them stops before relaying.
/// </summary>
public sealed class EventPathTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] MovementEvents = ["inventory.movement.*"];

    /// <summary>A cover comes due this soon after a write, so a test sees a dead writer's events relayed within seconds.</summary>
    private static Dictionary<string, string?> QuickCovers() => new()
    {
        ["Platform:Events:CoverDelay"] = "00:00:02",
        ["Platform:Webhooks:AllowPrivateNetworks"] = "true",
    };

    private static async Task<List<TableEntity>> OutboxAsync(StorageAccount storage, string table, string tenant) =>
        await EventOutbox.PendingAsync(storage.TenantTable(table).For(new TenantId(tenant)), 100, Ct).ToListAsync(Ct);

    private static async Task<List<AuditEntry>> AuditAsync(StorageAccount storage, string tenant, string action) =>
        await storage.TenantTable(AuditTrail.TableName).For(new TenantId(tenant)).QueryWhereAsync<AuditEntry>($"Action eq {action}", cancellationToken: Ct).ToListAsync(Ct);

    [Fact]
    public async Task A_movement_recorded_by_an_instance_that_stops_before_relaying_is_audited_and_delivered_once_by_another_instance()
    {
        var prefix = PlatformApp.NewPrefix();
        await using var receiver = await Webhooks.WebhookReceiver.StartAsync();
        TestTenant tenant;
        string movementId;
        await using (var dying = await new PlatformApp(azurite, prefix, QuickCovers(), StuckFirst).ReadyAsync())
        {
            tenant = await dying.SignUpAsync();
            using var admin = await dying.SignedInClientAsync(tenant);
            var endpoint = await admin.PostAsJsonAsync("/api/v1/webhooks/endpoints", new { url = receiver.Url, events = MovementEvents }, Ct);
            Assert.Equal(HttpStatusCode.Created, endpoint.StatusCode);
            var item = await admin.CreateItemAsync("HOT-1");
            var movement = await (await admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{InventoryApi.Id(item)}/movements", new { type = "in", quantity = 5 }))
                .ReadJsonAsync(HttpStatusCode.Created);
            movementId = InventoryApi.Id(movement.GetProperty("movement"));

            // Answered, and its event is in the movement's own partition - neither audited nor delivered, since relaying is stuck.
            var waiting = (await OutboxAsync(dying.Storage, InventoryStore.TableName, tenant.Id)).SelectMany(EventOutbox.EventsOf).ToList();
            Assert.Contains(waiting, e => e.Event.Type == "inventory.movement.created" && e.Event.TargetId == movementId);
            Assert.Empty(await AuditAsync(dying.Storage, tenant.Id, "inventory.movement.created"));
        }

        Assert.Empty(receiver.Received);

        // A new instance that never hears of the tenant: the cover message the dying one queued before writing brings it there.
        await using var next = await new PlatformApp(azurite, prefix, QuickCovers()).ReadyAsync();
        var audited = await Eventually.Until(
            () => AuditAsync(next.Storage, tenant.Id, "inventory.movement.created"), entries => entries.Count > 0, "the movement's audit entry");
        await Eventually.Until(() => Task.FromResult(receiver.Succeeded.Count), count => count > 0, "the movement's delivery");
        await Eventually.Until(() => OutboxAsync(next.Storage, InventoryStore.TableName, tenant.Id), rows => rows.Count == 0, "the relayed outbox row to go");

        Assert.Equal(movementId, Assert.Single(audited).TargetId);
        var delivered = Assert.Single(receiver.Succeeded);
        using var body = JsonDocument.Parse(delivered.Body);
        Assert.Equal("inventory.movement.created", body.RootElement.GetProperty("type").GetString());
        Assert.Equal(movementId, body.RootElement.GetProperty("data").GetProperty("id").GetString());
        Assert.Single(await AuditAsync(next.Storage, tenant.Id, "inventory.movement.created"));
    }

    [Fact]
    public async Task Each_transaction_of_a_bulk_create_holds_the_events_of_its_own_users()
    {
        var prefix = PlatformApp.NewPrefix();
        await using var app = await new PlatformApp(azurite, prefix, services: StuckFirst).ReadyAsync();
        var tenant = await app.SignUpAsync();
        using var admin = await app.SignedInClientAsync(tenant);

        var response = await Platform.Tests.Users.UserApi.BulkAsync(admin, Enumerable.Range(0, 100).Select(i => new { op = "create", data = new { email = $"chunk{i}@example.com", displayName = $"Chunk {i}" } }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var rows = await OutboxAsync(app.Storage, UserDirectory.TableName, tenant.Id);
        var users = app.Storage.TenantTable(UserDirectory.TableName).For(new TenantId(tenant.Id));
        var created = rows.Select(r => EventOutbox.EventsOf(r).Where(e => e.Event.Type == "user.created").ToList()).Where(e => e.Count > 0).ToList();

        // 100 creates take three transactions of at most 48 (plus the sign-up's own): each carried its users' events.
        Assert.Equal(3, created.Count(events => events.Count > 1));
        Assert.Equal(101, created.Sum(events => events.Count));
        foreach (var user in created.SelectMany(events => events))
        {
            Assert.NotNull(await users.GetAsync<UserEntity>(UserEntity.KeyFor(user.Event.TargetId!), Ct));
        }
    }

    [Fact]
    public async Task The_audit_route_shows_every_change_already_answered()
    {
        await using var app = await new PlatformApp(azurite).ReadyAsync();
        var tenant = await app.SignUpAsync();
        using var admin = await app.SignedInClientAsync(tenant);
        var item = await admin.CreateItemAsync("SEEN-1");
        var movement = await (await admin.SendAsync(HttpMethod.Post, $"{InventoryApi.Items}/{InventoryApi.Id(item)}/movements", new { type = "in", quantity = 2 }))
            .ReadJsonAsync(HttpStatusCode.Created);

        // No waiting: the route relays what is still in an outbox before it reads.
        Assert.Contains("inventory.movement.created", await admin.AuditActionsAsync(InventoryApi.Id(movement.GetProperty("movement"))));
    }

    [Fact]
    public async Task An_event_published_again_under_its_stable_id_is_audited_once()
    {
        await using var app = await new PlatformApp(azurite).ReadyAsync();
        var tenant = new TenantId((await app.SignUpAsync()).Id);
        var publisher = app.Services.GetRequiredService<EventPublisher>();
        var stable = Ids.Derived(DateTimeOffset.UtcNow, "retried activity");
        var finished = new PlatformEvent("job.succeeded", Actor.System, "job", "J1") { StableId = stable };

        await publisher.PublishAsync(tenant, finished, Ct);
        await publisher.PublishAsync(tenant, finished, Ct);
        await app.Services.GetRequiredService<EventRelay>().CatchUpAsync(tenant, Ct);
        await publisher.PublishAsync(tenant, finished, Ct);
        await app.Services.GetRequiredService<EventRelay>().CatchUpAsync(tenant, Ct);

        var entry = Assert.Single(await AuditAsync(app.Storage, tenant.Value, "job.succeeded"));
        Assert.Equal(stable, entry.RowKey);
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
