using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Webhooks;

/// <summary>The queue message that wakes an endpoint's lane: about one delivery, but any message moves the whole lane.</summary>
internal sealed record LaneMessage(string T, string E, string D);

/// <summary>
/// Makes deliveries (the log row, its index and the pending row, in one transaction per batch) and wakes lanes
/// through the <c>webhook-deliveries</c> queue; reads the log for the routes.
/// </summary>
public sealed class WebhookDeliveries(
    StorageAccount storage,
    WebhookDirectory directory,
    Expirations expirations,
    IOptions<WebhookOptions> options,
    TimeProvider time)
{
    public const string QueueName = "webhook-deliveries";

    /// <summary>Table properties hold at most 32K UTF-16 characters; a bigger body loses its <c>changes</c>.</summary>
    public const int MaxPayloadChars = 30_000;

    /// <summary>A delivery to make: its id, the message id receivers see, the body, and where it sorts in its lane.</summary>
    public sealed record NewDelivery(string Id, string MessageId, string EventId, string EventType, string Payload, string Order);

    /// <summary>
    /// The delivery of an event to an endpoint; its id is derived from both, so a repeat makes the same one. Its time
    /// part is the event id's, not the publication's: an event with a stable id published again later is the same event.
    /// </summary>
    public static NewDelivery ForEvent(string endpointId, PublishedEvent published, int index) => new(
        Ids.Derived(Ids.TryReadTime(published.Id, out var made) ? made : published.At, endpointId + ":" + published.Id), published.Id, published.Id, published.Event.Type,
        Payload(published.Event.Type, published.At, published.Event), Order(published.At, index, published.Id));

    /// <summary>The body: <c>{ type, timestamp, data: { id, object, actor: { type, id }, changes } }</c>; never an IP address.</summary>
    public static string Payload(string type, DateTimeOffset at, PlatformEvent platformEvent)
    {
        var data = new JsonObject
        {
            ["id"] = platformEvent.TargetId,
            ["object"] = platformEvent.TargetType,
            ["actor"] = new JsonObject { ["type"] = platformEvent.Actor.Type, ["id"] = platformEvent.Actor.Id },
            ["changes"] = platformEvent.Changes is null ? null : JsonSerializer.SerializeToNode(platformEvent.Changes, JsonSerializerOptions.Web),
        };
        if (platformEvent.Actor.OnBehalfOf is { } onBehalfOf)
        {
            data["actor"]!["onBehalfOf"] = onBehalfOf;
        }

        var body = new JsonObject { ["type"] = type, ["timestamp"] = Timestamp(at), ["data"] = data };
        var text = body.ToJsonString(JsonSerializerOptions.Web);
        if (text.Length > MaxPayloadChars)
        {
            data["changes"] = null;
            data["changesTruncated"] = true;
            text = body.ToJsonString(JsonSerializerOptions.Web);
        }

        return text;
    }

    public static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// Lane order: the event's time to the tick, then its place in the batch it was published with (events of one
    /// batch share a time), then its id. Later events sort later, so the lane sends them in the order they happened.
    /// </summary>
    public static string Order(DateTimeOffset at, int index, string id) =>
        string.Create(CultureInfo.InvariantCulture, $"{at.UtcTicks:D19}{index:D5}{id}");

    /// <summary>
    /// Adds the deliveries to one endpoint and wakes its lane. A delivery that exists already (the same event handed
    /// over again after a crash) is skipped: only its lane is woken, in case the first run died before it could.
    /// </summary>
    public async Task AddAsync(TenantId tenant, string endpointId, IReadOnlyList<NewDelivery> deliveries, CancellationToken cancellationToken)
    {
        if (deliveries.Count == 0)
        {
            return;
        }

        var rows = directory.Rows(tenant);
        var now = time.GetUtcNow();
        var added = new List<NewDelivery>();
        foreach (var chunk in deliveries.Chunk(33))
        {
            try
            {
                await rows.SubmitTransactionAsync([.. chunk.SelectMany(d => Actions(endpointId, d, now))], cancellationToken);
                added.AddRange(chunk);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 409)
            {
                // Some were made before: add the others one by one.
                foreach (var delivery in chunk)
                {
                    try
                    {
                        await rows.SubmitTransactionAsync([.. Actions(endpointId, delivery, now)], cancellationToken);
                        added.Add(delivery);
                    }
                    catch (TableTransactionFailedException one) when (one.Status == 409)
                    {
                    }
                }
            }
        }

        // After the pending rows: should this lane's wake-up below be lost, the lane sweep finds it.
        await WebhookLaneSweep.ScheduleAsync(storage, tenant, endpointId, now + options.Value.StallAfter, cancellationToken);
        // One expiry time for the whole batch: its entries share an index bucket and go a hundred to a transaction.
        var expiresAt = now + options.Value.LogRetention;
        await expirations.ScheduleManyAsync(WebhookDirectory.TableName, tenant,
            [.. added.SelectMany(d => new[] { WebhookRows.Log(endpointId, d.Id), WebhookRows.Index(d.Id) })], expiresAt, cancellationToken);

        await WakeAsync(tenant, endpointId, deliveries[0].Id, TimeSpan.Zero, cancellationToken);
    }

    private static IEnumerable<TableTransactionAction> Actions(string endpointId, NewDelivery delivery, DateTimeOffset now)
    {
        var pendingKey = WebhookRows.PendingPrefix(endpointId) + delivery.Order;
        yield return new(TableTransactionActionType.Add, new DeliveryIndexEntity { RowKey = WebhookRows.Index(delivery.Id), EndpointId = endpointId });
        yield return new(TableTransactionActionType.Add, new DeliveryEntity
        {
            RowKey = WebhookRows.Log(endpointId, delivery.Id),
            Id = delivery.Id,
            EndpointId = endpointId,
            EventId = delivery.EventId,
            EventType = delivery.EventType,
            MessageId = delivery.MessageId,
            Payload = delivery.Payload,
            CreatedAt = now,
            NextAttemptAt = now,
            PendingKey = pendingKey,
        });
        yield return new(TableTransactionActionType.Add, new PendingEntity { RowKey = pendingKey, DeliveryId = delivery.Id });
    }

    /// <summary>Puts a message on the queue that becomes visible after <paramref name="delay"/> and moves the lane then.</summary>
    internal async Task WakeAsync(TenantId tenant, string endpointId, string deliveryId, TimeSpan delay, CancellationToken cancellationToken)
    {
        var bounded = delay < TimeSpan.Zero ? TimeSpan.Zero : delay > TimeSpan.FromDays(6) ? TimeSpan.FromDays(6) : delay;

        // The queue counts visibility in whole seconds and drops the fraction, so 0.3 s would be visible at once: the
        // wake-up would find its delivery not yet due, or the lane still held by the run that failed it, and be put off
        // until that lease ends. Rounded up, a wake-up never comes before the time it was planned for.
        await storage.Queue(QueueName).SendMessageAsync(
            BinaryData.FromObjectAsJson(new LaneMessage(tenant.Value, endpointId, deliveryId), JsonSerializerOptions.Web),
            visibilityTimeout: TimeSpan.FromSeconds(Math.Ceiling(bounded.TotalSeconds)), timeToLive: TimeSpan.FromDays(7), cancellationToken: cancellationToken);
    }

    /// <summary>A delivery of this tenant by id (with the endpoint it belongs to), or null.</summary>
    public async Task<DeliveryEntity?> FindAsync(TenantId tenant, string deliveryId, CancellationToken cancellationToken)
    {
        if (!WebhookDirectory.IsId(deliveryId))
        {
            return null;
        }

        var rows = directory.Rows(tenant);
        return await rows.GetAsync<DeliveryIndexEntity>(WebhookRows.Index(deliveryId), cancellationToken) is { } index
            ? await rows.GetAsync<DeliveryEntity>(WebhookRows.Log(index.EndpointId, deliveryId), cancellationToken)
            : null;
    }

    /// <summary>One page of an endpoint's log, newest first, after the row key <paramref name="after"/>.</summary>
    public async Task<(List<DeliveryEntity> Items, string? Next)> PageAsync(TenantId tenant, string endpointId, int size, string? after, CancellationToken cancellationToken)
    {
        var prefix = WebhookRows.LogPrefix(endpointId);
        var lower = after is null ? prefix : after + "\0";
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {tenant.Value} and RowKey ge {lower} and RowKey lt {prefix + char.MaxValue}");
        var items = new List<DeliveryEntity>();
        await foreach (var row in storage.Table(WebhookDirectory.TableName).QueryAsync<DeliveryEntity>(filter, maxPerPage: Math.Min(size + 1, 1000), cancellationToken: cancellationToken))
        {
            items.Add(row);
            if (items.Count > size)
            {
                break;
            }
        }

        if (items.Count > size)
        {
            items.RemoveAt(size);
            return (items, items[^1].RowKey);
        }

        return (items, null);
    }

    /// <summary>Sends a logged delivery again as a new delivery (same event, same <c>webhook-id</c>, a fresh attempt count).</summary>
    public async Task<DeliveryEntity> ReplayAsync(TenantId tenant, DeliveryEntity original, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var id = Ids.New(time);
        var replay = new NewDelivery(id, original.MessageId, original.EventId, original.EventType, original.Payload, Order(now, 0, id));
        await AddAsync(tenant, original.EndpointId, [replay], cancellationToken);
        return (await directory.Rows(tenant).GetAsync<DeliveryEntity>(WebhookRows.Log(original.EndpointId, id), cancellationToken))!;
    }

    /// <summary>
    /// Sends again each message whose latest delivery to the endpoint failed, among deliveries made since
    /// <paramref name="since"/> (at most <see cref="WebhookOptions.LogRetention"/> ago: older rows are gone anyway),
    /// oldest first, at most <see cref="WebhookOptions.RecoverLimit"/> per call; <c>More</c> when others remain (a next
    /// call takes them, since those sent now have a newer, pending delivery). A message is judged by its latest
    /// delivery only, so a replay or an earlier recovery that failed again is sent once, not once per row: recover after
    /// recover does not multiply.
    /// </summary>
    public async Task<(int Recovered, bool More)> RecoverAsync(TenantId tenant, string endpointId, DateTimeOffset since, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var now = time.GetUtcNow();
        if (since < now - settings.LogRetention)
        {
            since = now - settings.LogRetention;
        }

        // Only the columns that decide; the payloads of the chosen rows are read afterwards. Row keys order deliveries
        // newest first, and a delivery's id is no later than its creation, so ids older than since (a day's slack for
        // an event relayed late) need not be read.
        var prefix = WebhookRows.LogPrefix(endpointId);
        var oldest = prefix + WebhookRows.Invert(Ids.Floor(since - TimeSpan.FromDays(1)));
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {tenant.Value} and RowKey ge {prefix} and RowKey le {oldest} and CreatedAt ge {since}");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var failed = new List<string>();
        await foreach (var row in storage.Table(WebhookDirectory.TableName).QueryAsync<TableEntity>(
            filter, maxPerPage: 1000, select: ["RowKey", "MessageId", "Status"], cancellationToken: cancellationToken))
        {
            if (seen.Add(row.GetString("MessageId") ?? row.RowKey) && row.GetString("Status") == DeliveryStatus.Failed)
            {
                failed.Add(row.RowKey);
            }
        }

        failed.Reverse();
        var chosen = failed.Take(settings.RecoverLimit).ToList();
        var rows = directory.Rows(tenant);
        var originals = new DeliveryEntity?[chosen.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, chosen.Count), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (i, token) => originals[i] = await rows.GetAsync<DeliveryEntity>(chosen[i], token));

        var replays = originals.OfType<DeliveryEntity>().Select((original, i) =>
        {
            var id = Ids.New(time);
            return new NewDelivery(id, original.MessageId, original.EventId, original.EventType, original.Payload, Order(now, i, id));
        }).ToList();
        await AddAsync(tenant, endpointId, replays, cancellationToken);
        return (replays.Count, failed.Count > chosen.Count);
    }

    /// <summary>Queues a <c>webhook.test</c> delivery to an endpoint (its own message id).</summary>
    public async Task<DeliveryEntity> TestAsync(TenantId tenant, EndpointEntity endpoint, Actor actor, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var id = Ids.New(time);
        var body = Payload(EventCatalogue.TestEvent, now, new PlatformEvent(EventCatalogue.TestEvent, actor, "webhook_endpoint", endpoint.Id,
            new Dictionary<string, object?> { ["message"] = "This is a test delivery." }));
        await AddAsync(tenant, endpoint.Id, [new NewDelivery(id, id, id, EventCatalogue.TestEvent, body, Order(now, 0, id))], cancellationToken);
        return (await directory.Rows(tenant).GetAsync<DeliveryEntity>(WebhookRows.Log(endpoint.Id, id), cancellationToken))!;
    }
}

/// <summary>
/// The fan-out subscriber: each event goes to every enabled endpoint whose filter matches it, once per (endpoint,
/// event) however often the event path hands the event over.
/// </summary>
public sealed class WebhookFanOut(WebhookDirectory directory, WebhookDeliveries deliveries) : IEventSubscriber
{
    public async Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken)
    {
        var endpoints = await directory.CachedAsync(tenant, cancellationToken);
        if (endpoints.Count == 0)
        {
            return;
        }

        foreach (var endpoint in endpoints)
        {
            if (!endpoint.Enabled)
            {
                continue;
            }

            var patterns = endpoint.EventList;
            var matching = new List<WebhookDeliveries.NewDelivery>();
            for (var i = 0; i < events.Count; i++)
            {
                // Events are relayed after they were published: an endpoint created since then did not exist for them.
                if (endpoint.CreatedAt > events[i].At)
                {
                    continue;
                }

                // The test event is only ever sent by the test route, and an endpoint never hears of its own disabling.
                var type = events[i].Event.Type;
                if (type != EventCatalogue.TestEvent && EventCatalogue.Matches(patterns, type) &&
                    !(type == EventCatalogue.EndpointDisabledEvent && events[i].Event.TargetId == endpoint.Id))
                {
                    matching.Add(WebhookDeliveries.ForEvent(endpoint.Id, events[i], i));
                }
            }

            await deliveries.AddAsync(tenant, endpoint.Id, matching, cancellationToken);
        }
    }
}
