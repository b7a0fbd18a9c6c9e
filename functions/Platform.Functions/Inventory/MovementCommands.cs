using Azure;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

public sealed record MovementInput(
    string? Type, double? Quantity, string? Reason, string? FromLocationId, string? ToLocationId, string? Batch, string? Supplier, string? Reference);

/// <summary>
/// Records movements. The item row, the stock rows it touches and the two movement rows are written in one
/// entity-group transaction conditioned on the ETags read, so a movement either happens entirely or not at all,
/// and two concurrent movements can never both apply to the same stale quantity: the loser gets 412 from storage,
/// reads again and re-checks (for instance, that enough stock is left), up to <see cref="MaxAttempts"/> times.
/// </summary>
/// <summary>A recorded movement and the item as it stands after it.</summary>
public sealed record RecordedMovement(MovementEntity Movement, ItemEntity Item);

public sealed class MovementCommands(
    InventoryStore store, ItemCommands items, LocationCommands locations, InventoryProjections projections, AlertMonitor alerts, EventPublisher events, TimeProvider time)
{
    public const int MaxReasonLength = 500;
    public const int MaxTextLength = 100;
    public const int MaxReferenceLength = 200;

    /// <summary>Generous: each lost race means another movement of the same item succeeded meanwhile.</summary>
    public const int MaxAttempts = 100;

    /// <summary>
    /// Records the movement and does what follows from it: this instance's projection, the
    /// <c>inventory.movement.created</c> event and the item's alerts.
    /// </summary>
    public async Task<Outcome<RecordedMovement>> RecordAsync(Caller caller, string itemId, MovementInput input, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        var actorId = caller.UserId;
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

        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        quantity = Math.Round(quantity, 6);
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var item = await items.GetAsync(tenant, itemId, cancellationToken);
            if (item is null)
            {
                return CommandError.NotFound("item");
            }

            if (item.Status == ItemStatus.Archived)
            {
                return CommandError.Conflict("item_archived", "This item is archived; movements cannot be recorded for it.");
            }

            // Where the stock leaves from and arrives at; the item's own location stands in for one not given.
            var (source, target) = type switch
            {
                MovementType.In => (null, to ?? item.LocationId),
                MovementType.Out => (from ?? item.LocationId, null),
                MovementType.Transfer => (from ?? item.LocationId, to),
                _ => ((string?)null, to ?? from ?? item.LocationId),
            };

            if (type == MovementType.Transfer && source == target)
            {
                return new CommandError(400, "same_location", "A transfer needs two different locations.");
            }

            foreach (var locationId in new[] { source, target })
            {
                if (locationId is not null && await locations.GetAsync(tenant, locationId, cancellationToken) is null)
                {
                    return ItemCommands.LocationNotFound(locationId);
                }
            }

            var partition = store.For(tenant);
            var sourceStock = type is MovementType.Out or MovementType.Transfer ? await StockAsync(partition, item.Id, source, cancellationToken) : null;
            var targetStock = type is MovementType.In or MovementType.Transfer or MovementType.Adjust ? await StockAsync(partition, item.Id, target, cancellationToken) : null;
            var now = time.GetUtcNow();
            double delta;
            if (sourceStock is not null)
            {
                if (sourceStock.Quantity < quantity)
                {
                    return CommandError.Conflict("insufficient_stock",
                        $"Only {sourceStock.Quantity} in stock at {(source is null ? "no location" : $"location {source}")}; cannot take {quantity}.");
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

            var id = Ids.New(time);
            var movement = new MovementEntity
            {
                RowKey = MovementEntity.ItemPrefixFor(item.Id) + id,
                Id = id,
                ItemId = item.Id,
                Type = type!,
                Quantity = quantity,
                Delta = delta,
                QuantityAfter = item.Quantity,
                FromLocationId = type is MovementType.Out or MovementType.Transfer ? source : null,
                ToLocationId = type is MovementType.In or MovementType.Transfer or MovementType.Adjust ? target : null,
                Reason = reason,
                Batch = batch,
                Supplier = supplier,
                Reference = reference,
                ActorId = actorId,
                At = now,
            };

            var actions = new List<TableTransactionAction>
            {
                new(TableTransactionActionType.UpdateReplace, item, item.ETag),
                new(TableTransactionActionType.Add, movement),
                new(TableTransactionActionType.Add, movement.CopyAs(MovementEntity.TenantPrefix + id)),
            };
            foreach (var stock in new[] { sourceStock, targetStock })
            {
                if (stock is not null)
                {
                    actions.Add(stock.ETag == default ? new(TableTransactionActionType.Add, stock) : new(TableTransactionActionType.UpdateReplace, stock, stock.ETag));
                }
            }

            // Stock arriving at a location touches its row, so a concurrent delete of that location (conditioned on
            // the ETag it read while checking the location is empty) fails and checks again - and so this fails if
            // the location was deleted meanwhile.
            var touchAt = actions.Count;
            if (targetStock is not null && target is not null)
            {
                actions.Add(new(TableTransactionActionType.UpdateMerge, new TableEntity(tenant.Value, LocationEntity.KeyFor(target)), ETag.All));
            }

            try
            {
                var responses = await partition.SubmitTransactionAsync(actions, cancellationToken);
                item.ETag = responses.Value[0].Headers.ETag ?? default;
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 404 && ex.FailedTransactionActionIndex == touchAt)
            {
                return ItemCommands.LocationNotFound(target!);
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412)
            {
                // Another movement of this item won the race; read again. The jitter spreads the retries out.
                await Task.Delay(Random.Shared.Next(1, 5 + Math.Min(attempt, 20) * 5), cancellationToken);
                continue;
            }

            // Committed: what follows is outside the retry, so nothing after the write can record the movement twice.
            projections.Apply(tenant, item, sourceStock, targetStock);
            await events.PublishAsync(tenant, new PlatformEvent("inventory.movement.created", caller.Actor, "movement", movement.Id,
                new Dictionary<string, object?>
                {
                    ["itemId"] = movement.ItemId,
                    ["type"] = movement.Type,
                    ["quantity"] = movement.Quantity,
                    ["delta"] = movement.Delta,
                    ["quantityAfter"] = movement.QuantityAfter,
                }), cancellationToken);
            item.ETag = await alerts.SyncAsync(tenant, item, cancellationToken) ?? item.ETag;
            return new RecordedMovement(movement, item);
        }

        return CommandError.Conflict("concurrent_update", "This item is changing too quickly right now; retry the movement.");
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

    private static async Task<StockEntity> StockAsync(TenantPartition partition, string itemId, string? locationId, CancellationToken cancellationToken) =>
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
