using System.Collections.Concurrent;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

public sealed record MovementInput(
    string? Type, double? Quantity, string? Reason, string? FromLocationId, string? ToLocationId, string? Batch, string? Supplier, string? Reference);

/// <summary>A movement body as <see cref="MovementCommands.Read"/> accepted it: type lower-cased, texts trimmed, quantity rounded.</summary>
public sealed record MovementRequest(
    string Type, double Quantity, string? Reason, string? FromLocationId, string? ToLocationId, string? Batch, string? Supplier, string? Reference);

/// <summary>Where a movement takes stock from and adds it to (null: no location), and which of the two it touches.</summary>
public sealed record MovementRoute(string? Source, string? Target, bool TakesFrom, bool AddsTo);

/// <summary>
/// Records movements. The item row, the stock rows it touches and the two movement rows are written in one
/// entity-group transaction conditioned on the ETags read, so a movement either happens entirely or not at all,
/// and two concurrent movements can never both apply to the same stale quantity: the loser gets 412 from storage,
/// reads again and re-checks (for instance, that enough stock is left), up to <see cref="MaxAttempts"/> times.
/// On one instance the movements of an item take turns, and each starts from the rows the last one committed (kept
/// with their new ETags, see <see cref="WrittenRows"/>) rather than reading them: a steady stream of movements through
/// one instance costs one transaction each and no read, and a row changed by anything else still fails the condition.
/// </summary>
/// <summary>A recorded movement and the item as it stands after it.</summary>
public sealed record RecordedMovement(MovementEntity Movement, ItemEntity Item);

public sealed class MovementCommands(
    InventoryStore store, ItemCommands items, LocationCommands locations, InventoryProjections projections, AlertMonitor alerts, EventPublisher events, TimeProvider time)
{
    private readonly WrittenRows written = new();

    public const int MaxReasonLength = 500;
    public const int MaxTextLength = 100;
    public const int MaxReferenceLength = 200;

    /// <summary>Generous: each lost race means another movement of the same item succeeded meanwhile.</summary>
    public const int MaxAttempts = 100;

    /// <summary>
    /// Records the movement and does what follows from it: this instance's projection, the
    /// <c>inventory.movement.created</c> event and the item's alerts.
    /// </summary>
    public Task<Outcome<RecordedMovement>> RecordAsync(Caller caller, string itemId, MovementInput input, CancellationToken cancellationToken) =>
        RecordAsync(caller, itemId, input, importKey: null, cancellationToken);

    /// <summary>
    /// As <see cref="RecordAsync(Caller, string, MovementInput, CancellationToken)"/>, at most once per
    /// <paramref name="importKey"/> (an import's job and row): the key's marker row is added in the movement's own
    /// transaction, so a second call with it - a chunk applied again after a crash - records nothing and answers with
    /// the movement the first one recorded.
    /// </summary>
    public async Task<Outcome<RecordedMovement>> RecordAsync(Caller caller, string itemId, MovementInput input, string? importKey, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        if (Read(input).Failed(out var invalid, out var request))
        {
            return invalid;
        }

        if (!InventoryStore.IsPlausibleId(itemId))
        {
            return CommandError.NotFound("item");
        }

        var marker = importKey is null ? null : new ImportedMovementMarker { RowKey = ImportedMovementMarker.KeyFor(importKey) };
        if (marker is not null && await RecordedBeforeAsync(tenant, marker.RowKey, cancellationToken) is { } before)
        {
            return before;
        }

        // This instance's movements of one item take turns: racing each other they would only make all but one retry.
        var gate = written.GateFor(tenant, itemId);
        await gate.WaitAsync(cancellationToken);
        RecordedMovement recorded;
        StockEntity? sourceStock, targetStock;
        try
        {
            var outcome = await RecordTakingTurnsAsync(caller, itemId, request, marker, cancellationToken);
            if (outcome.Failed(out var error, out var committed))
            {
                return error;
            }

            (recorded, sourceStock, targetStock) = committed;
        }
        finally
        {
            gate.Release();
        }

        // Committed: what follows is outside the retry, so nothing after the write can record the movement twice.
        var item = recorded.Item;
        projections.Apply(tenant, item, sourceStock, targetStock);
        if (await alerts.SyncAsync(tenant, item, cancellationToken) is { } touched)
        {
            // The alert's write moved the item row on: the rows kept for the next movement are stale now.
            item.ETag = touched;
            written.Forget(tenant, itemId);
        }

        return recorded;
    }

    /// <summary>
    /// The movement's read-check-write loop, run while holding the item's gate. The item and stock rows come from what
    /// this instance's last movement of the item wrote when it still has them (<see cref="WrittenRows"/>), else from
    /// storage; either way the transaction is conditioned on their ETags, so rows changed meanwhile by anyone make it
    /// fail and the loop reads them afresh.
    /// </summary>
    private async Task<Outcome<(RecordedMovement Recorded, StockEntity? Source, StockEntity? Target)>> RecordTakingTurnsAsync(
        Caller caller, string itemId, MovementRequest request, ImportedMovementMarker? marker, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        var partition = store.For(tenant);
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var kept = written.Take(tenant, itemId);
            var item = kept?.Item ?? await items.GetAsync(tenant, itemId, cancellationToken);
            if (item is null)
            {
                return CommandError.NotFound("item");
            }

            if (Route(request, item).Failed(out var unroutable, out var route))
            {
                return unroutable;
            }

            foreach (var locationId in new[] { route.Source, route.Target })
            {
                if (locationId is not null && await locations.GetAsync(tenant, locationId, cancellationToken) is null)
                {
                    return ItemCommands.LocationNotFound(locationId);
                }
            }

            var sourceStock = route.TakesFrom ? KeptStock(kept, item.Id, route.Source) ?? await StockAsync(partition, item.Id, route.Source, cancellationToken) : null;
            var targetStock = route.AddsTo ? KeptStock(kept, item.Id, route.Target) ?? await StockAsync(partition, item.Id, route.Target, cancellationToken) : null;
            if (Apply(request, route, item, sourceStock, targetStock, Ids.New(time), caller.UserId, time.GetUtcNow()).Failed(out var refused, out var movement))
            {
                return refused;
            }

            var actions = new List<TableTransactionAction>
            {
                new(TableTransactionActionType.UpdateReplace, item, item.ETag),
                new(TableTransactionActionType.Add, movement),
                new(TableTransactionActionType.Add, movement.CopyAs(MovementEntity.TenantPrefix + movement.Id)),
            };
            var stockAt = new List<(StockEntity Row, int At)>();
            foreach (var stock in new[] { sourceStock, targetStock })
            {
                if (stock is not null)
                {
                    stockAt.Add((stock, actions.Count));
                    actions.Add(stock.ETag == default ? new(TableTransactionActionType.Add, stock) : new(TableTransactionActionType.UpdateReplace, stock, stock.ETag));
                }
            }

            // Stock arriving at a location touches its row, so a concurrent delete of that location (conditioned on
            // the ETag it read while checking the location is empty) fails and checks again - and so this fails if
            // the location was deleted meanwhile.
            var touchAt = actions.Count;
            if (targetStock is not null && route.Target is not null)
            {
                actions.Add(new(TableTransactionActionType.UpdateMerge, new TableEntity(tenant.Value, LocationEntity.KeyFor(route.Target)), ETag.All));
            }

            var markAt = actions.Count;
            if (marker is not null)
            {
                marker.MovementId = movement.Id;
                actions.Add(new(TableTransactionActionType.Add, marker));
            }

            // The event commits with the movement: neither exists without the other, whatever crashes when.
            var created = new PlatformEvent("inventory.movement.created", caller.Actor, "movement", movement.Id,
                new Dictionary<string, object?>
                {
                    ["itemId"] = movement.ItemId,
                    ["type"] = movement.Type,
                    ["quantity"] = movement.Quantity,
                    ["delta"] = movement.Delta,
                    ["quantityAfter"] = movement.QuantityAfter,
                });
            try
            {
                var responses = await events.CommitAsync(partition, actions, [created], cancellationToken);
                item.ETag = responses.Value[0].Headers.ETag ?? default;
                foreach (var (row, at) in stockAt)
                {
                    row.ETag = responses.Value[at].Headers.ETag ?? default;
                }
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 404 && ex.FailedTransactionActionIndex == touchAt)
            {
                written.Forget(tenant, itemId);
                return ItemCommands.LocationNotFound(route.Target!);
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 404 or 409 or 412)
            {
                written.Forget(tenant, itemId);

                // The same import row, recorded meanwhile by another run of its chunk.
                if (ex.Status == 409 && marker is not null && ex.FailedTransactionActionIndex == markAt &&
                    await RecordedBeforeAsync(tenant, marker.RowKey, cancellationToken) is { } racing)
                {
                    return (racing, null, null);
                }

                // Rows kept from this instance's last write were changed since (by another instance, an edit, an
                // alert, a delete): read them now. Rows just read lost a race to another instance: read again, after
                // a jitter that spreads the retries out.
                if (kept is null)
                {
                    await Task.Delay(Random.Shared.Next(1, 5 + Math.Min(attempt, 20) * 5), cancellationToken);
                }

                continue;
            }
            catch
            {
                // The outcome is unknown: whatever the rows are now, they are read next time.
                written.Forget(tenant, itemId);
                throw;
            }

            written.Keep(tenant, item, sourceStock, targetStock);
            return (new RecordedMovement(movement, item), sourceStock, targetStock);
        }

        return CommandError.Conflict("concurrent_update", "This item is changing too quickly right now; retry the movement.");
    }

    /// <summary>The stock row kept from this instance's last movement of the item, or null to read it.</summary>
    private static StockEntity? KeptStock(WrittenRows.Rows? kept, string itemId, string? locationId) =>
        kept?.Stock.GetValueOrDefault(StockEntity.KeyFor(itemId, locationId));

    /// <summary>Reads a movement body as the route does, without touching storage.</summary>
    public static Outcome<MovementRequest> Read(MovementInput input)
    {
        var validation = new Validation();
        var type = input.Type?.Trim().ToLowerInvariant();
        if (type is null || !MovementType.All.Contains(type))
        {
            validation.Add("type", "must be in, out, transfer or adjust");
        }

        var quantity = input.Quantity ?? double.NaN;
        if (!double.IsFinite(quantity) || quantity > ItemCommands.MaxQuantity || (type == MovementType.Adjust ? quantity < 0 : quantity <= 0))
        {
            validation.Add("quantity", type == MovementType.Adjust
                ? "must be the counted quantity, from 0 to 1000000000"
                : "must be a number greater than 0 and at most 1000000000");
        }

        var reason = Optional(validation, "reason", input.Reason, MaxReasonLength);
        var batch = Optional(validation, "batch", input.Batch, MaxTextLength);
        var supplier = Optional(validation, "supplier", input.Supplier, MaxTextLength);
        var reference = Optional(validation, "reference", input.Reference, MaxReferenceLength);
        var from = Optional(validation, "fromLocationId", input.FromLocationId, 64);
        var to = Optional(validation, "toLocationId", input.ToLocationId, 64);
        if (type == MovementType.Transfer && to is null)
        {
            validation.Add("toLocationId", "is required for a transfer");
        }

        return validation.IsValid
            ? new MovementRequest(type!, Math.Round(quantity, 6), reason, from, to, batch, supplier, reference)
            : CommandError.Invalid(validation);
    }

    /// <summary>
    /// Where the stock leaves from and arrives at for this item; the item's own location stands in for one not given.
    /// Refused for an archived item and for a transfer within one location.
    /// </summary>
    public static Outcome<MovementRoute> Route(MovementRequest request, ItemEntity item)
    {
        if (item.Status == ItemStatus.Archived)
        {
            return CommandError.Conflict("item_archived", "This item is archived; movements cannot be recorded for it.");
        }

        var (from, to) = (request.FromLocationId, request.ToLocationId);
        var (source, target) = request.Type switch
        {
            MovementType.In => (null, to ?? item.LocationId),
            MovementType.Out => (from ?? item.LocationId, null),
            MovementType.Transfer => (from ?? item.LocationId, to),
            _ => ((string?)null, to ?? from ?? item.LocationId),
        };

        if (request.Type == MovementType.Transfer && source == target)
        {
            return new CommandError(400, "same_location", "A transfer needs two different locations.");
        }

        return new MovementRoute(source, target, request.Type is MovementType.Out or MovementType.Transfer,
            request.Type is MovementType.In or MovementType.Transfer or MovementType.Adjust);
    }

    /// <summary>
    /// Applies the movement to the item and its stock rows in memory (the rows the route takes from and adds to), and
    /// returns the movement to record; refused when the source holds too little.
    /// </summary>
    public static Outcome<MovementEntity> Apply(
        MovementRequest request, MovementRoute route, ItemEntity item, StockEntity? sourceStock, StockEntity? targetStock, string id, string? actorId, DateTimeOffset now)
    {
        var (type, quantity) = (request.Type, request.Quantity);
        double delta;
        if (sourceStock is not null)
        {
            if (sourceStock.Quantity < quantity)
            {
                return CommandError.Conflict("insufficient_stock",
                    $"Only {sourceStock.Quantity} in stock at {(route.Source is null ? "no location" : $"location {route.Source}")}; cannot take {quantity}.");
            }

            sourceStock.Quantity = Math.Round(sourceStock.Quantity - quantity, 6);
            sourceStock.UpdatedAt = now;
        }

        if (type == MovementType.Adjust)
        {
            delta = Math.Round(quantity - targetStock!.Quantity, 6);
            targetStock.Quantity = quantity;
            targetStock.UpdatedAt = now;
        }
        else
        {
            delta = type switch { MovementType.In => quantity, MovementType.Out => -quantity, _ => 0 };
            if (targetStock is not null)
            {
                targetStock.Quantity = Math.Round(targetStock.Quantity + quantity, 6);
                targetStock.UpdatedAt = now;
            }
        }

        item.Quantity = Math.Round(item.Quantity + delta, 6);
        item.UpdatedAt = now;
        if (type == MovementType.Out)
        {
            item.OutTotal = Math.Round(item.OutTotal + quantity, 6);
            item.LastOutAt = now;
        }

        return new MovementEntity
        {
            RowKey = MovementEntity.ItemPrefixFor(item.Id) + id,
            Id = id,
            ItemId = item.Id,
            Type = type,
            Quantity = quantity,
            Delta = delta,
            QuantityAfter = item.Quantity,
            FromLocationId = route.TakesFrom ? route.Source : null,
            ToLocationId = route.AddsTo ? route.Target : null,
            Reason = request.Reason,
            Batch = request.Batch,
            Supplier = request.Supplier,
            Reference = request.Reference,
            ActorId = actorId,
            At = now,
        };
    }

    /// <summary>The movement an import row recorded already, with its item as it stands now; null when none.</summary>
    private async Task<RecordedMovement?> RecordedBeforeAsync(TenantId tenant, string markerKey, CancellationToken cancellationToken)
    {
        var partition = store.For(tenant);
        if (await partition.GetAsync<ImportedMovementMarker>(markerKey, cancellationToken) is not { } marker ||
            await partition.GetAsync<MovementEntity>(MovementEntity.TenantPrefix + marker.MovementId, cancellationToken) is not { } movement ||
            await items.GetAsync(tenant, movement.ItemId, cancellationToken) is not { } item)
        {
            return null;
        }

        return new RecordedMovement(movement, item);
    }

    public async Task<List<StockEntity>> StockOfAsync(TenantId tenant, string itemId, CancellationToken cancellationToken)
    {
        var rows = new List<StockEntity>();
        await foreach (var stock in store.For(tenant).QueryAsync<StockEntity>(StockEntity.PrefixFor(itemId), cancellationToken: cancellationToken))
        {
            rows.Add(stock);
        }

        return rows;
    }

    /// <summary>The stock row of an item at a location, or a new one (no ETag) when there is none yet.</summary>
    public static async Task<StockEntity> StockAsync(TenantPartition partition, string itemId, string? locationId, CancellationToken cancellationToken) =>
        await partition.GetAsync<StockEntity>(StockEntity.KeyFor(itemId, locationId), cancellationToken)
            ?? new StockEntity { RowKey = StockEntity.KeyFor(itemId, locationId), ItemId = itemId, LocationId = locationId ?? StockEntity.Unassigned };

    private static string? Optional(Validation validation, string field, string? value, int maxLength)
    {
        var trimmed = value?.Trim();
        if (trimmed?.Length > maxLength)
        {
            validation.Add(field, $"must be at most {maxLength} characters");
        }

        return string.IsNullOrEmpty(trimmed) ? null : trimmed;
    }
}

/// <summary>
/// Per item, the item and stock rows as this instance's last movement of it committed them, with the ETags storage gave
/// them, and a gate per item so this instance's movements of one item take turns. A movement conditions its transaction
/// on these ETags instead of reading the rows again: should anything else have changed a row since (another instance,
/// an edit, an alert, an archive), storage refuses the transaction and the movement reads the rows afresh. So no update
/// can be lost to them; they only spare the reads while this instance is the one moving the item.
/// </summary>
internal sealed class WrittenRows
{
    /// <summary>Items remembered per instance before all are forgotten at once (reads resume, nothing else changes).</summary>
    private const int MaxItems = 10_000;

    private readonly ConcurrentDictionary<(string Tenant, string Item), Rows> _items = new();

    /// <summary>A fixed set of gates picked by the item's hash: bounded memory; two items sharing one only take turns.</summary>
    private readonly SemaphoreSlim[] _gates = [.. Enumerable.Range(0, 1024).Select(_ => new SemaphoreSlim(1, 1))];

    /// <summary>Rows as written, each with its ETag. The stock rows by row key.</summary>
    internal sealed record Rows(ItemEntity Item, IReadOnlyDictionary<string, StockEntity> Stock);

    public SemaphoreSlim GateFor(TenantId tenant, string itemId) =>
        _gates[(int)((uint)HashCode.Combine(tenant.Value, itemId) % (uint)_gates.Length)];

    /// <summary>Copies of the rows kept for the item (to change freely), or null when there are none.</summary>
    public Rows? Take(TenantId tenant, string itemId) =>
        _items.TryGetValue((tenant.Value, itemId), out var rows)
            ? new Rows(rows.Item.Copy(), rows.Stock.ToDictionary(s => s.Key, s => s.Value.Copy(), StringComparer.Ordinal))
            : null;

    /// <summary>Keeps copies of the rows a movement just committed, with the stock rows kept before for other locations.</summary>
    public void Keep(TenantId tenant, ItemEntity item, params IEnumerable<StockEntity?> stock)
    {
        if (_items.Count >= MaxItems)
        {
            _items.Clear();
        }

        var key = (tenant.Value, item.Id);
        var rows = _items.TryGetValue(key, out var before) ? new Dictionary<string, StockEntity>(before.Stock, StringComparer.Ordinal) : new(StringComparer.Ordinal);
        foreach (var row in stock)
        {
            if (row is not null)
            {
                rows[row.RowKey] = row.Copy();
            }
        }

        _items[key] = new Rows(item.Copy(), rows);
    }

    public void Forget(TenantId tenant, string itemId) => _items.TryRemove((tenant.Value, itemId), out _);
}
