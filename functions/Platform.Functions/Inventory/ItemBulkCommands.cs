using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>An item read by <see cref="ItemCommands.Read"/>, to create; <paramref name="ImportKey"/> names the import row that makes it.</summary>
public sealed record NewItem(ItemEntity Item, string? ImportKey);

/// <summary>An item as read (with its ETag), the PATCH body applied to it by <see cref="ItemCommands.ReadChanges"/>, and what that changed.</summary>
public sealed record ItemUpdate(ItemEntity Item, JsonElement Patch, IReadOnlyDictionary<string, object?> Changes);

/// <summary>
/// Many creates or updates at once, for bulk import: the same rows, checks and consequences as
/// <see cref="ItemCommands.CreateAsync"/> and <see cref="ItemCommands.UpdateAsync"/>, but written as entity-group
/// transactions of up to <see cref="MaxActions"/> actions (a tenant's rows share one partition) and with their events
/// committed with them, so an import costs a transaction per few dozen items rather than several round trips each.
/// </summary>
public sealed partial class ItemCommands
{
    /// <summary>Actions of ours per transaction: 100 less the item counter's move, the events' outbox row and the change log's two.</summary>
    private const int MaxActions = 96;

    /// <summary>Reads of one batch that may be in flight together (SKU look-ups after a conflict, alert syncs).</summary>
    private const int BulkParallelism = 16;

    /// <summary>
    /// Creates the items, each with its SKU index row and the alerts it raises at once (in its own transaction, as
    /// <see cref="AlertMonitor.SyncAsync"/> would raise them just after), counted against the tenant's cap.
    /// </summary>
    /// <returns>Per item, in order: null when created - or found already created by the same import row (a chunk
    /// applied again) - else why not: <c>location_not_found</c>, <c>sku_taken</c> (also for a SKU twice in the list:
    /// the first wins) or <c>item_limit_reached</c>.</returns>
    public async Task<CommandError?[]> CreateManyAsync(Caller caller, IReadOnlyList<NewItem> items, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        var results = new CommandError?[items.Count];
        var missing = await MissingLocationsAsync(tenant, items.Select(i => i.Item.LocationId), cancellationToken);
        var pending = new List<int>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i].Item;
            if (item.LocationId is { } locationId && missing.Contains(locationId))
            {
                results[i] = LocationNotFound(locationId);
            }
            else if (!keys.Add(SkuIndexEntity.KeyFor(item.Sku)))
            {
                results[i] = SkuTaken(item.Sku);
            }
            else
            {
                pending.Add(i);
            }
        }

        var max = options.Value.MaxItemsPerTenant;
        var unexplained = 0;
        while (pending.Count > 0)
        {
            // As many items as fit one transaction, each with all its rows.
            var batch = new List<int>();
            var actions = new List<TableTransactionAction>();
            var ends = new List<int>();
            var raised = new List<List<PlatformEvent>>();
            foreach (var index in pending)
            {
                var (item, importKey) = items[index];
                var raisedAlerts = alerts.RaisedByNew(item).ToList();
                if (actions.Count + 2 + 2 * raisedAlerts.Count > MaxActions)
                {
                    break;
                }

                item.OpenAlerts = AlertMonitor.OpenAlertsOf(raisedAlerts.Select(a => ((AlertEntity)a.Alert.Entity).Kind));
                actions.Add(new(TableTransactionActionType.Add, item));
                actions.Add(new(TableTransactionActionType.Add, new SkuIndexEntity { RowKey = SkuIndexEntity.KeyFor(item.Sku), ItemId = item.Id, ImportKey = importKey }));
                foreach (var (alert, marker, _) in raisedAlerts)
                {
                    actions.Add(alert);
                    actions.Add(marker);
                }

                batch.Add(index);
                ends.Add(actions.Count);
                raised.Add([.. raisedAlerts.Select(a => a.Raised)]);
            }

            PlatformEvent Created(int index) =>
                new("inventory.item.created", caller.Actor, "item", items[index].Item.Id,
                    new Dictionary<string, object?> { ["sku"] = items[index].Item.Sku, ["name"] = items[index].Item.Name });

            // The items' events first, then the alerts they raised: each item's creation still comes before its alerts,
            // and events of one kind side by side go to the audit trail as one bundle row (AuditTrail).
            IReadOnlyList<PlatformEvent> EventsOf(int taken) =>
                [.. Enumerable.Range(0, taken).Select(b => Created(batch[b])), .. Enumerable.Range(0, taken).SelectMany(b => raised[b])];

            var taken = 0;
            EventRelay.Committed? planned = null;
            try
            {
                // The events of the items taken (and of their alerts) commit with them, in the outbox row; the plan that
                // ran last is the one that committed, so its row is relayed from memory.
                var responses = await events.CoveredAsync(store.For(tenant), token => store.Items.SubmitAsync(tenant, count =>
                    {
                        // Up to the cap: the items past it stay pending and find the cap reached next time round.
                        taken = (int)Math.Clamp(max - count, 0, batch.Count);
                        planned = null;
                        if (taken == 0)
                        {
                            return null;
                        }

                        var (outbox, row) = events.Outbox(EventsOf(taken));
                        planned = row;
                        return new([.. actions.Take(ends[taken - 1]), outbox], taken);
                    },
                    token), () => planned, cancellationToken);
                if (responses is null)
                {
                    foreach (var index in pending)
                    {
                        results[index] = ItemLimitReached(max);
                    }

                    break;
                }

                for (var b = 0; b < taken; b++)
                {
                    var item = items[batch[b]].Item;
                    item.ETag = responses.Value[b == 0 ? 0 : ends[b - 1]].Headers.ETag ?? default;
                    projections.Apply(tenant, item);
                }

                pending.RemoveRange(0, taken);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 409)
            {
                // A SKU of the batch exists (another item's, or this very row's from an earlier run of the chunk): one
                // round of reads sorts out the whole batch, and the rest goes again.
                var settled = await SettleTakenAsync(tenant, items, batch, results, cancellationToken);
                if (settled.Count == 0 && ++unexplained > 3)
                {
                    throw;
                }

                pending.RemoveAll(settled.Contains);
            }
        }

        return results;
    }

    /// <summary>
    /// Applies the updates, each conditioned on the ETag its item was read with. An item that changed meanwhile (a
    /// movement) goes through <see cref="UpdateAsync"/> instead, which reads it again and re-applies the body; so does
    /// one whose SKU changes. Updates that change nothing must not be passed: they would write.
    /// </summary>
    /// <returns>Per update, in order: null when applied, else why not.</returns>
    public async Task<CommandError?[]> UpdateManyAsync(Caller caller, IReadOnlyList<ItemUpdate> updates, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        var results = new CommandError?[updates.Count];
        var missing = await MissingLocationsAsync(tenant,
            updates.Where(u => u.Changes.ContainsKey("locationId")).Select(u => u.Item.LocationId), cancellationToken);
        var pending = new List<int>();
        var oneByOne = new List<int>();
        for (var i = 0; i < updates.Count; i++)
        {
            var item = updates[i].Item;
            if (updates[i].Changes.ContainsKey("locationId") && item.LocationId is { } locationId && missing.Contains(locationId))
            {
                results[i] = LocationNotFound(locationId);
            }
            else if (updates[i].Changes.ContainsKey("sku"))
            {
                // A SKU change may move the index row, which UpdateAsync swaps in the item's own transaction.
                oneByOne.Add(i);
            }
            else
            {
                pending.Add(i);
            }
        }

        var now = time.GetUtcNow();
        var written = new List<ItemEntity>();
        while (pending.Count > 0)
        {
            var batch = pending.Take(MaxActions + 1).ToList();
            var actions = batch.Select(i =>
            {
                updates[i].Item.UpdatedAt = now;
                return new TableTransactionAction(TableTransactionActionType.UpdateReplace, updates[i].Item, updates[i].Item.ETag);
            }).ToList();
            try
            {
                var responses = await events.CommitAsync(store.For(tenant), actions,
                    [.. batch.Select(i => new PlatformEvent("inventory.item.updated", caller.Actor, "item", updates[i].Item.Id, updates[i].Changes))], cancellationToken);
                for (var b = 0; b < batch.Count; b++)
                {
                    var item = updates[batch[b]].Item;
                    item.ETag = responses.Value[b].Headers.ETag ?? default;
                    projections.Apply(tenant, item);
                    written.Add(item);
                }

                pending.RemoveRange(0, batch.Count);
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 404 or 409 or 412 && ex.FailedTransactionActionIndex is { } at && at < batch.Count)
            {
                // That item changed (or went) since it was read: it takes the one-at-a-time path, the rest go again.
                oneByOne.Add(batch[at]);
                pending.Remove(batch[at]);
            }
        }

        await Parallel.ForEachAsync(written, new ParallelOptions { MaxDegreeOfParallelism = BulkParallelism, CancellationToken = cancellationToken },
            async (item, ct) => await SyncAlertsAsync(tenant, item, ct));
        foreach (var i in oneByOne)
        {
            var outcome = await UpdateAsync(caller, updates[i].Item.Id, updates[i].Patch, _ => true, cancellationToken);
            results[i] = outcome.Error;
        }

        return results;
    }

    /// <summary>
    /// For a batch that failed on an existing SKU: which of its items are settled - found created by their own import
    /// row (result null) or taken by another item (<c>sku_taken</c>).
    /// </summary>
    private async Task<HashSet<int>> SettleTakenAsync(
        TenantId tenant, IReadOnlyList<NewItem> items, List<int> batch, CommandError?[] results, CancellationToken cancellationToken)
    {
        var partition = store.For(tenant);
        var found = new SkuIndexEntity?[batch.Count];
        await Parallel.ForAsync(0, batch.Count, new ParallelOptions { MaxDegreeOfParallelism = BulkParallelism, CancellationToken = cancellationToken },
            async (b, ct) => found[b] = await partition.GetAsync<SkuIndexEntity>(SkuIndexEntity.KeyFor(items[batch[b]].Item.Sku), ct));
        var settled = new HashSet<int>();
        for (var b = 0; b < batch.Count; b++)
        {
            if (found[b] is { } index)
            {
                var (item, importKey) = items[batch[b]];
                results[batch[b]] = importKey is not null && index.ImportKey == importKey ? null : SkuTaken(item.Sku);
                settled.Add(batch[b]);
            }
        }

        return settled;
    }

    /// <summary>The distinct location ids given that name no location of the tenant.</summary>
    private async Task<HashSet<string>> MissingLocationsAsync(TenantId tenant, IEnumerable<string?> ids, CancellationToken cancellationToken)
    {
        var missing = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids.OfType<string>().Distinct(StringComparer.Ordinal))
        {
            if (await locations.GetAsync(tenant, id, cancellationToken) is null)
            {
                missing.Add(id);
            }
        }

        return missing;
    }
}
