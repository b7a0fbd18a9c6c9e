using System.Runtime.Serialization;
using System.Security.Claims;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Query;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Triggers;

namespace Platform.Functions.Inventory;

public sealed class InventoryOptions
{
    public const string Section = "Platform:Inventory";

    /// <summary>An item whose <c>expiresAt</c> falls within this span from now raises an expiry alert.</summary>
    public TimeSpan ExpiryWindow { get; set; } = TimeSpan.FromDays(30);
}

/// <summary>An alert about one item: row <c>a:{id}</c>. It stays as history once closed.</summary>
public sealed class AlertEntity : ITableEntity
{
    public const string KeyPrefix = "a:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Kind { get; set; } = "";
    public string Status { get; set; } = AlertStatus.Open;
    public string ItemId { get; set; } = "";
    public string Sku { get; set; } = "";
    public string Name { get; set; } = "";
    public double Quantity { get; set; }
    public double? ReorderPoint { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public DateTimeOffset RaisedAt { get; set; }
    public DateTimeOffset? AcknowledgedAt { get; set; }
    public string? AcknowledgedBy { get; set; }
    public DateTimeOffset? ClosedAt { get; set; }

    [IgnoreDataMember]
    public string Id => RowKey[KeyPrefix.Length..];

    public static string KeyFor(string id) => KeyPrefix + id;
}

/// <summary>
/// Row <c>o:{itemId}:{kind}</c> exists while that condition's alert is not closed. Raising adds it in the alert's
/// transaction, so however many movements find an item low at once, only one of them raises the alert.
/// </summary>
public sealed class OpenAlertMarker : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string AlertId { get; set; } = "";

    public static string KeyFor(string itemId, string kind) => $"o:{itemId}:{kind}";
}

public static class AlertKind
{
    public const string LowStock = "low_stock";
    public const string Expiring = "expiring";
}

public static class AlertStatus
{
    public const string Open = "open";
    public const string Acknowledged = "acknowledged";
    public const string Closed = "closed";
}

public sealed record AlertView(
    string Id, string Kind, string Status, string ItemId, string Sku, string Name, double Quantity, double? ReorderPoint, DateTimeOffset? ExpiresAt,
    DateTimeOffset RaisedAt, DateTimeOffset? AcknowledgedAt, string? AcknowledgedBy, DateTimeOffset? ClosedAt)
{
    public static AlertView From(AlertEntity a) =>
        new(a.Id, a.Kind, a.Status, a.ItemId, a.Sku, a.Name, a.Quantity, a.ReorderPoint, a.ExpiresAt, a.RaisedAt, a.AcknowledgedAt, a.AcknowledgedBy, a.ClosedAt);
}

/// <summary>
/// Brings an item's alerts in line with its current state: raises the alert of a condition that holds and has
/// none, closes the one of a condition that cleared. It re-reads the item rather than trusting the caller's copy,
/// so that of several movements finishing together, the last to look sees the final quantity. Each raise or close
/// is also conditioned on the item's ETag as read: a decision taken on a quantity that changed meanwhile fails
/// and is taken again on the new one, so a slow request cannot close an alert a newer state called for.
/// </summary>
public sealed class AlertMonitor(InventoryStore store, EventPublisher events, IOptions<InventoryOptions> options, TimeProvider time)
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
                var holds = item.Status == ItemStatus.Active && (kind == AlertKind.LowStock
                    ? item.ReorderPoint is { } point && item.Quantity <= point
                    : item.ExpiresAt is { } at && at <= now + options.Value.ExpiryWindow);
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
            var alert = new AlertEntity
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
            try
            {
                var responses = await partition.SubmitTransactionAsync(
                    [
                        new TableTransactionAction(TableTransactionActionType.Add, alert),
                        new TableTransactionAction(TableTransactionActionType.Add, new OpenAlertMarker { RowKey = OpenAlertMarker.KeyFor(item.Id, kind), AlertId = alert.Id }),
                        LocationCommands.Touch(item),
                    ],
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

            await events.PublishAsync(tenant, new PlatformEvent(kind == AlertKind.LowStock ? "inventory.low_stock" : "inventory.expiring", Actor.System, "alert", alert.Id,
                new Dictionary<string, object?>
                {
                    ["itemId"] = item.Id,
                    ["sku"] = item.Sku,
                    ["quantity"] = item.Quantity,
                    ["reorderPoint"] = item.ReorderPoint,
                    ["expiresAt"] = item.ExpiresAt,
                }), cancellationToken);
        }
        else if (!holds && marker is not null)
        {
            var alert = await partition.GetAsync<AlertEntity>(AlertEntity.KeyFor(marker.AlertId), cancellationToken);
            var actions = new List<TableTransactionAction> { new(TableTransactionActionType.Delete, marker, marker.ETag), LocationCommands.Touch(item) };
            if (alert is not null)
            {
                alert.Status = AlertStatus.Closed;
                alert.ClosedAt = now;
                actions.Add(new(TableTransactionActionType.UpdateReplace, alert, alert.ETag));
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
}

/// <summary><c>/api/v1/inventory/alerts</c>: open low-stock and expiry alerts, and acknowledging them.</summary>
public static class AlertsEndpoints
{
    public const string Path = "/api/v1/inventory/alerts";

    private static readonly FilterSchema Schema = new(new Dictionary<string, FieldType>(StringComparer.Ordinal)
    {
        ["id"] = FieldType.String,
        ["kind"] = FieldType.String,
        ["status"] = FieldType.String,
        ["itemId"] = FieldType.String,
        ["sku"] = FieldType.String,
        ["raisedAt"] = FieldType.Timestamp,
    });

    public static void MapAlerts(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Inventory");
        group.MapGet("/", ListAlerts).RequirePermission(Permissions.InventoryRead).WithName("ListAlerts").WithSummary("Low-stock and expiry alerts.");
        group.MapPost("/{id}/acknowledge", Acknowledge).RequirePermission(Permissions.InventoryWrite).WithName("AcknowledgeAlert").WithSummary("Acknowledges an alert.");
    }

    /// <param name="status">open (the default: open and acknowledged, i.e. not yet cleared), acknowledged, closed or all.</param>
    internal static async Task<Results<Ok<PagedList<AlertView>>, ProblemHttpResult>> ListAlerts(
        string? status, string? filter, string? q, string? sort, string? pageSize, string? continuationToken,
        ClaimsPrincipal principal, InventoryStore store, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        if (status is not (null or "open" or "acknowledged" or "closed" or "all"))
        {
            return new Validation().Add("status", "must be open, acknowledged, closed or all").ToProblem();
        }

        var rows = new List<ListedAlert>();
        await foreach (var alert in store.For(caller.Tenant).QueryAsync<AlertEntity>(AlertEntity.KeyPrefix, maxPerPage: 1000, cancellationToken))
        {
            var wanted = status switch
            {
                null or "open" => alert.Status != AlertStatus.Closed,
                "all" => true,
                _ => alert.Status == status,
            };
            if (wanted)
            {
                rows.Add(new ListedAlert(AlertView.From(alert)));
            }
        }

        return InMemoryLists.Page(rows, Schema, filter, q, sort, pageSize, continuationToken, status ?? "open", caller.Tenant, tokens);
    }

    internal static async Task<Results<Ok<AlertView>, ProblemHttpResult>> Acknowledge(
        string id, ClaimsPrincipal principal, HttpContext http, InventoryStore store, EventPublisher events, TimeProvider time, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal)!;
        var partition = store.For(caller.Tenant);
        var alert = InventoryStore.IsPlausibleId(id) ? await partition.GetAsync<AlertEntity>(AlertEntity.KeyFor(id), cancellationToken) : null;
        if (alert is null)
        {
            return InventoryError.NotFound("alert").ToProblem();
        }

        if (alert.Status == AlertStatus.Closed)
        {
            return new InventoryError(409, "alert_closed", "This alert closed itself when its condition cleared.").ToProblem();
        }

        if (alert.Status == AlertStatus.Acknowledged)
        {
            return TypedResults.Ok(AlertView.From(alert));
        }

        alert.Status = AlertStatus.Acknowledged;
        alert.AcknowledgedAt = time.GetUtcNow();
        alert.AcknowledgedBy = caller.UserId;
        try
        {
            await partition.UpdateAsync(alert, alert.ETag, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            return InventoryError.Stale("alert").ToProblem();
        }

        await events.PublishAsync(caller.Tenant, new PlatformEvent("inventory.alert.acknowledged", LocationsEndpoints.Actor(caller, http), "alert", alert.Id,
            new Dictionary<string, object?> { ["itemId"] = alert.ItemId, ["kind"] = alert.Kind }), cancellationToken);
        return TypedResults.Ok(AlertView.From(alert));
    }

    private sealed record ListedAlert(AlertView View) : IListed<AlertView>
    {
        public string Id => View.Id;

        public string SearchText { get; } = string.Join('\n', View.Sku, View.Name, View.Kind).ToLowerInvariant();

        public object? ValueOf(string field) => field switch
        {
            "id" => View.Id,
            "kind" => View.Kind,
            "status" => View.Status,
            "itemId" => View.ItemId,
            "sku" => View.Sku,
            "raisedAt" => View.RaisedAt,
            _ => null,
        };
    }
}

/// <summary>
/// The <c>InventoryExpiryScan</c> timer: daily, raises expiry alerts for items that came within the window just by
/// time passing (movements and edits raise them as they happen).
/// </summary>
public sealed partial class InventoryExpiryScan(StorageAccount storage, InventoryStore store, AlertMonitor monitor, IOptions<InventoryOptions> options,
    TimeProvider time, ILogger<InventoryExpiryScan> logger) : ITimerHandler
{
    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
    {
        var horizon = time.GetUtcNow() + options.Value.ExpiryWindow;
        var checkedItems = 0;
        await foreach (var tenant in storage.Table(TenantDirectory.TableName).QueryAsync<TenantEntity>(t => t.PartitionKey == "tenants", cancellationToken: cancellationToken))
        {
            if (!tenant.RowKey.StartsWith("id:", StringComparison.Ordinal))
            {
                continue;
            }

            var tenantId = new TenantId(tenant.Id);
            await foreach (var item in store.For(tenantId).QueryWhereAsync<ItemEntity>(
                $"RowKey ge {ItemEntity.KeyPrefix} and RowKey lt {"i;"} and Status eq {ItemStatus.Active} and ExpiresAt le {horizon}", 1000, cancellationToken))
            {
                await monitor.SyncAsync(tenantId, item, cancellationToken);
                checkedItems++;
            }
        }

        LogScanned(logger, checkedItems);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Inventory expiry scan looked at {Items} items expiring within the window")]
    private static partial void LogScanned(ILogger logger, int items);
}
