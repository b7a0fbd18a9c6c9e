using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Housekeeping;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>
/// Brings an item's alerts in line with its current state: raises the alert of a condition that holds and has
/// none, closes the one of a condition that cleared. It re-reads the item rather than trusting the caller's copy,
/// so that of several movements finishing together, the last to look sees the final quantity. Each raise or close
/// is also conditioned on the item's ETag as read: a decision taken on a quantity that changed meanwhile fails
/// and is taken again on the new one, so a slow request cannot close an alert a newer state called for.
/// </summary>
public sealed class AlertMonitor(InventoryStore store, EventPublisher events, Expirations expirations, IOptions<InventoryOptions> options, TimeProvider time)
{
    private const int MaxAttempts = 10;

    /// <summary>
    /// Opens or closes the item's alerts for its state <paramref name="written"/> (as the caller just wrote or read it,
    /// with its ETag; read again only when something changed it meanwhile). Returns the item's new storage ETag when
    /// syncing touched the item row, so responses carry the current one.
    /// </summary>
    public async Task<ETag?> SyncAsync(TenantId tenant, ItemEntity written, CancellationToken cancellationToken)
    {
        var partition = store.For(tenant);
        ETag? touched = null;
        ItemEntity? known = written;
        foreach (var kind in new[] { AlertKind.LowStock, AlertKind.Expiring })
        {
            for (var attempt = 1; attempt <= MaxAttempts; attempt++)
            {
                var item = known ?? await partition.GetAsync<ItemEntity>(ItemEntity.KeyFor(written.Id), cancellationToken);
                known = null;
                if (item is null)
                {
                    return touched;
                }

                var now = time.GetUtcNow();
                var holds = Holds(item, kind, now);
                if (item.OpenAlerts is { } open && IsOpen(open, kind) == holds)
                {
                    // The item's own record of its open alerts already agrees: no marker to read, nothing to write.
                    known = item;
                    break;
                }

                var (done, etag) = await TrySyncAsync(partition, tenant, item, kind, holds, now, cancellationToken);
                touched = etag ?? touched;
                if (done)
                {
                    // Untouched, the row read is still current for the next kind.
                    known = etag is null ? item : null;
                    break;
                }
            }
        }

        return touched;
    }

    /// <summary>Done false when the item changed while deciding (the caller looks again); the item's new ETag when touched.</summary>
    private async Task<(bool Done, ETag? ItemETag)> TrySyncAsync(TenantPartition partition, TenantId tenant, ItemEntity item, string kind, bool holds, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ETag? touched = null;
        var marker = await partition.GetAsync<OpenAlertMarker>(OpenAlertMarker.KeyFor(item.Id, kind), cancellationToken);
        if (holds && marker is null)
        {
            var alert = NewAlert(item, kind, now);
            try
            {
                var responses = await events.CommitAsync(partition,
                    [
                        new TableTransactionAction(TableTransactionActionType.Add, alert),
                        new TableTransactionAction(TableTransactionActionType.Add, new OpenAlertMarker { RowKey = OpenAlertMarker.KeyFor(item.Id, kind), AlertId = alert.Id }),
                        Record(item, kind, open: true),
                    ],
                    [Raised(alert)],
                    cancellationToken);
                touched = responses.Value[2].Headers.ETag;
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 409 && ex.FailedTransactionActionIndex == 1)
            {
                return (true, null); // Raised meanwhile by another request.
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412)
            {
                return (false, null);
            }
        }
        else if (!holds && marker is not null)
        {
            var alert = await partition.GetAsync<AlertEntity>(AlertEntity.KeyFor(marker.AlertId), cancellationToken);
            var actions = new List<TableTransactionAction> { new(TableTransactionActionType.Delete, marker, marker.ETag), Record(item, kind, open: false) };
            if (alert is not null)
            {
                alert.Status = AlertStatus.Closed;
                alert.ClosedAt = now;
                actions.Add(new(TableTransactionActionType.UpdateReplace, alert, alert.ETag));

                // Before the close is written; if it is not, ClosedAlertExpiry finds the alert open and drops the entry.
                await expirations.ScheduleAsync(InventoryStore.TableName, tenant, alert.RowKey, now + options.Value.ClosedAlertRetention, cancellationToken);
            }

            try
            {
                touched = (await partition.SubmitTransactionAsync(actions, cancellationToken)).Value[1].Headers.ETag;
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 404 or 412)
            {
                // The item, the marker or the alert (acknowledged) changed meanwhile: look again.
                return (false, null);
            }
        }

        return (true, touched);
    }

    /// <summary>
    /// The alerts an item that is being created raises: for each, the rows to add in the item's own transaction (a new
    /// item has no open alert yet, so nothing needs reading) and the event to publish once that committed. Bulk import
    /// creates items this way, so the item and its alerts land together, as <see cref="SyncAsync"/> would leave them.
    /// </summary>
    public IEnumerable<(TableTransactionAction Alert, TableTransactionAction Marker, PlatformEvent Raised)> RaisedByNew(ItemEntity item)
    {
        var now = time.GetUtcNow();
        foreach (var kind in new[] { AlertKind.LowStock, AlertKind.Expiring })
        {
            if (Holds(item, kind, now))
            {
                var alert = NewAlert(item, kind, now);
                yield return (new(TableTransactionActionType.Add, alert),
                    new(TableTransactionActionType.Add, new OpenAlertMarker { RowKey = OpenAlertMarker.KeyFor(item.Id, kind), AlertId = alert.Id }),
                    Raised(alert));
            }
        }
    }

    /// <summary>
    /// The write of the item that goes with opening or closing an alert: conditioned on the ETag the decision was made
    /// on, and keeping the item's record of open alerts (when it has one) in step with the markers.
    /// </summary>
    private static TableTransactionAction Record(ItemEntity item, string kind, bool open)
    {
        var row = new TableEntity(item.PartitionKey, item.RowKey);
        if (item.OpenAlerts is { } current)
        {
            var kinds = current.Split(',', StringSplitOptions.RemoveEmptyEntries).Where(k => k != kind).ToList();
            if (open)
            {
                kinds.Add(kind);
            }

            row["OpenAlerts"] = string.Join(',', kinds.Order(StringComparer.Ordinal));
        }

        return new(TableTransactionActionType.UpdateMerge, row, item.ETag);
    }

    /// <summary>The open alerts an item created with <paramref name="raised"/> records.</summary>
    public static string OpenAlertsOf(IEnumerable<string> raised) => string.Join(',', raised.Order(StringComparer.Ordinal));

    private static bool IsOpen(string openAlerts, string kind) =>
        openAlerts.Split(',', StringSplitOptions.RemoveEmptyEntries).Contains(kind, StringComparer.Ordinal);

    private bool Holds(ItemEntity item, string kind, DateTimeOffset now) =>
        item.Status == ItemStatus.Active && (kind == AlertKind.LowStock
            ? item.ReorderPoint is { } point && item.Quantity <= point
            : item.ExpiresAt is { } at && at <= now + options.Value.ExpiryWindow);

    private AlertEntity NewAlert(ItemEntity item, string kind, DateTimeOffset now) => new()
    {
        RowKey = AlertEntity.KeyFor(Ids.New(time)),
        Kind = kind,
        ItemId = item.Id,
        Sku = item.Sku,
        Name = item.Name,
        Quantity = item.Quantity,
        ReorderPoint = item.ReorderPoint,
        ExpiresAt = item.ExpiresAt,
        RaisedAt = now,
    };

    private static PlatformEvent Raised(AlertEntity alert) =>
        new(alert.Kind == AlertKind.LowStock ? "inventory.low_stock" : "inventory.expiring", Actor.System, "alert", alert.Id,
            new Dictionary<string, object?>
            {
                ["itemId"] = alert.ItemId,
                ["sku"] = alert.Sku,
                ["quantity"] = alert.Quantity,
                ["reorderPoint"] = alert.ReorderPoint,
                ["expiresAt"] = alert.ExpiresAt,
            });

    /// <summary>
    /// Acknowledges an open alert (it stays until its condition clears); acknowledging again changes nothing, and a
    /// closed alert cannot be acknowledged.
    /// </summary>
    public async Task<Outcome<AlertEntity>> AcknowledgeAsync(Caller caller, string id, CancellationToken cancellationToken)
    {
        var partition = store.For(caller.Tenant);
        var alert = InventoryStore.IsPlausibleId(id) ? await partition.GetAsync<AlertEntity>(AlertEntity.KeyFor(id), cancellationToken) : null;
        if (alert is null)
        {
            return CommandError.NotFound("alert");
        }

        if (alert.Status == AlertStatus.Closed)
        {
            return CommandError.Conflict("alert_closed", "This alert closed itself when its condition cleared.");
        }

        if (alert.Status == AlertStatus.Acknowledged)
        {
            return alert;
        }

        alert.Status = AlertStatus.Acknowledged;
        alert.AcknowledgedAt = time.GetUtcNow();
        alert.AcknowledgedBy = caller.UserId;
        try
        {
            await events.CommitAsync(partition, new TableTransactionAction(TableTransactionActionType.UpdateReplace, alert, alert.ETag),
                [new PlatformEvent("inventory.alert.acknowledged", caller.Actor, "alert", alert.Id,
                    new Dictionary<string, object?> { ["itemId"] = alert.ItemId, ["kind"] = alert.Kind })],
                cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            return CommandError.Stale("alert");
        }

        return alert;
    }
}
