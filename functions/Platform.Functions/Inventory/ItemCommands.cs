using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

/// <summary>
/// Creates, changes and archives items. Create and PATCH read their body the same way (<see cref="Apply"/>), so both
/// enforce the same limits; a SKU change swaps the index rows in the item's own transaction, so two items can
/// never end up with one SKU, however the requests interleave.
/// </summary>
public sealed partial class ItemCommands(
    InventoryStore store, LocationCommands locations, InventoryProjections projections, AlertMonitor alerts, EventPublisher events,
    IOptions<InventoryOptions> options, TimeProvider time)
{
    public const int MaxSkuLength = 64;
    public const int MaxNameLength = 200;
    public const int MaxTextLength = 100;
    public const int MaxDescriptionLength = 2000;
    public const int MaxTags = 20;
    public const int MaxTagLength = 50;
    public const int MaxFieldsBytes = 4096;

    /// <summary>Largest quantity, cost or reorder figure accepted anywhere in inventory.</summary>
    public const double MaxQuantity = 1_000_000_000;

    public async Task<ItemEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        InventoryStore.IsPlausibleId(id) ? await store.For(tenant).GetAsync<ItemEntity>(ItemEntity.KeyFor(id), cancellationToken) : null;

    /// <summary>
    /// Creates the item with its SKU index row, and does what follows from it: this instance's projection, the
    /// <c>inventory.item.created</c> event and the item's alerts.
    /// </summary>
    public async Task<Outcome<ItemEntity>> CreateAsync(Caller caller, JsonElement body, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        if (Read(body).Failed(out var invalid, out var item))
        {
            return invalid;
        }

        if (item.LocationId is not null && await locations.GetAsync(tenant, item.LocationId, cancellationToken) is null)
        {
            return LocationNotFound(item.LocationId);
        }

        var max = options.Value.MaxItemsPerTenant;
        var created = new PlatformEvent("inventory.item.created", caller.Actor, "item", item.Id,
            new Dictionary<string, object?> { ["sku"] = item.Sku, ["name"] = item.Name });
        try
        {
            var responses = await events.CommitWithAsync(store.For(tenant), [created], (outbox, token) => store.Items.SubmitAsync(tenant, count => count >= max
                    ? null
                    : new(
                        [
                            new(TableTransactionActionType.Add, item),
                            new(TableTransactionActionType.Add, new SkuIndexEntity { RowKey = SkuIndexEntity.KeyFor(item.Sku), ItemId = item.Id }),
                            outbox,
                        ],
                        +1),
                token), cancellationToken);
            if (responses is null)
            {
                return ItemLimitReached(max);
            }

            item.ETag = responses.Value[0].Headers.ETag ?? default;
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 409 && ex.FailedTransactionActionIndex < 2)
        {
            return SkuTaken(item.Sku);
        }

        projections.Apply(tenant, item);
        return await SyncAlertsAsync(tenant, item, cancellationToken);
    }

    /// <summary>
    /// Reads a create body as POST does, without touching storage: the item it describes (a new id, not stored yet),
    /// or the validation failure. Bulk import reads its rows through this too, so a row passes exactly the POST rules.
    /// </summary>
    public Outcome<ItemEntity> Read(JsonElement body)
    {
        var validation = new Validation();
        var now = time.GetUtcNow();
        var item = new ItemEntity { RowKey = ItemEntity.KeyFor(Ids.New(time)), CreatedAt = now, UpdatedAt = now, OpenAlerts = "" };
        Apply(item, new PatchBody(body, validation), validation, new Dictionary<string, object?>());
        if (item.Sku.Length == 0 && !validation.Errors.ContainsKey("sku"))
        {
            validation.Add("sku", "is required");
        }

        if (item.Name.Length == 0 && !validation.Errors.ContainsKey("name"))
        {
            validation.Add("name", "is required");
        }

        return validation.IsValid ? item : CommandError.Invalid(validation);
    }

    /// <summary>
    /// Applies a PATCH body to <paramref name="item"/> in memory as PATCH does: what changed (empty when nothing
    /// did), or the validation failure. Nothing is written.
    /// </summary>
    public static Outcome<Dictionary<string, object?>> ReadChanges(ItemEntity item, JsonElement body)
    {
        var validation = new Validation();
        var changes = new Dictionary<string, object?>();
        Apply(item, new PatchBody(body, validation), validation, changes);
        return validation.IsValid ? changes : CommandError.Invalid(validation);
    }

    /// <summary>
    /// Applies a PATCH. Movements rewrite the item row (its quantity), so a write that loses to one is read and
    /// applied again - re-checking If-Match, which then fails only if the client named the old version.
    /// </summary>
    public async Task<Outcome<ItemEntity>> UpdateAsync(Caller caller, string id, JsonElement body, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var result = await TryUpdateAsync(caller.Tenant, caller.Actor, id, body, ifMatch, cancellationToken);
            if (result.Error == Lost && attempt < MaxAttempts)
            {
                continue;
            }

            if (result.Failed(out var error, out var change))
            {
                return error == Lost ? CommandError.Stale("item") : error;
            }

            if (change.Changes.Count == 0)
            {
                return change.Item;
            }

            return await SyncAlertsAsync(caller.Tenant, change.Item, cancellationToken);
        }
    }

    /// <summary>Archives (soft-deletes) the item and releases its SKU; its stock and movements stay on record.</summary>
    public async Task<Outcome<ItemEntity>> ArchiveAsync(Caller caller, string id, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var result = await TryArchiveAsync(caller.Tenant, caller.Actor, id, ifMatch, cancellationToken);
            if (result.Error == Lost && attempt < MaxAttempts)
            {
                continue;
            }

            if (result.Failed(out var error, out var item))
            {
                return error == Lost ? CommandError.Stale("item") : error;
            }

            return await SyncAlertsAsync(caller.Tenant, item, cancellationToken);
        }
    }

    /// <summary>Opens or closes the item's alerts after a write; the item's ETag moves when its alert marker does.</summary>
    private async Task<ItemEntity> SyncAlertsAsync(TenantId tenant, ItemEntity item, CancellationToken cancellationToken)
    {
        item.ETag = await alerts.SyncAsync(tenant, item, cancellationToken) ?? item.ETag;
        return item;
    }

    private sealed record ItemChange(ItemEntity Item, Dictionary<string, object?> Changes);

    private const int MaxAttempts = 5;

    /// <summary>A write that lost a race on the item row; the caller reads and tries again.</summary>
    private static readonly CommandError Lost = new(412, "precondition_failed", "The item changed meanwhile.");

    private async Task<Outcome<ItemChange>> TryUpdateAsync(
        TenantId tenant, Actor actor, string id, JsonElement body, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        var item = await GetAsync(tenant, id, cancellationToken);
        if (item is null || item.Status == ItemStatus.Archived)
        {
            return CommandError.NotFound("item");
        }

        if (!ifMatch(item.ETag))
        {
            return CommandError.Stale("item");
        }

        var validation = new Validation();
        var oldSku = item.Sku;
        var changes = new Dictionary<string, object?>();
        Apply(item, new PatchBody(body, validation), validation, changes);
        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        if (changes.Count == 0)
        {
            return new ItemChange(item, changes);
        }

        if (changes.ContainsKey("locationId") && item.LocationId is not null && await locations.GetAsync(tenant, item.LocationId, cancellationToken) is null)
        {
            return LocationNotFound(item.LocationId);
        }

        item.UpdatedAt = time.GetUtcNow();
        var actions = new List<TableTransactionAction> { new(TableTransactionActionType.UpdateReplace, item, item.ETag) };
        var skuChanged = !string.Equals(SkuIndexEntity.KeyFor(oldSku), SkuIndexEntity.KeyFor(item.Sku), StringComparison.Ordinal);
        if (skuChanged)
        {
            actions.Add(new(TableTransactionActionType.Add, new SkuIndexEntity { RowKey = SkuIndexEntity.KeyFor(item.Sku), ItemId = item.Id }));
            actions.Add(new(TableTransactionActionType.Delete, new SkuIndexEntity { RowKey = SkuIndexEntity.KeyFor(oldSku) }, ETag.All));
        }

        try
        {
            var responses = await events.CommitAsync(store.For(tenant), actions, [new PlatformEvent("inventory.item.updated", actor, "item", id, changes)], cancellationToken);
            item.ETag = responses.Value[0].Headers.ETag ?? default;
            projections.Apply(tenant, item);
            return new ItemChange(item, changes);
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 409 && skuChanged && ex.FailedTransactionActionIndex == 1)
        {
            return SkuTaken(item.Sku);
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 404 or 409 or 412)
        {
            return Lost;
        }
    }

    private async Task<Outcome<ItemEntity>> TryArchiveAsync(TenantId tenant, Actor actor, string id, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        var item = await GetAsync(tenant, id, cancellationToken);
        if (item is null || item.Status == ItemStatus.Archived)
        {
            return CommandError.NotFound("item");
        }

        if (!ifMatch(item.ETag))
        {
            return CommandError.Stale("item");
        }

        item.Status = ItemStatus.Archived;
        item.ArchivedAt = item.UpdatedAt = time.GetUtcNow();
        try
        {
            // An archived item no longer counts against the cap: the count moves in the archive's transaction.
            var deleted = new PlatformEvent("inventory.item.deleted", actor, "item", id,
                new Dictionary<string, object?> { ["sku"] = item.Sku, ["quantity"] = item.Quantity });
            var responses = (await events.CommitWithAsync(store.For(tenant), [deleted], (outbox, token) => store.Items.SubmitAsync(tenant, _ => new(
                    [
                        new(TableTransactionActionType.UpdateReplace, item, item.ETag),
                        new(TableTransactionActionType.Delete, new SkuIndexEntity { RowKey = SkuIndexEntity.KeyFor(item.Sku) }, ETag.All),
                        outbox,
                    ],
                    -1),
                token), cancellationToken))!;
            item.ETag = responses.Value[0].Headers.ETag ?? default;
            projections.Apply(tenant, item);
            return item;
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 404 or 409 or 412)
        {
            return Lost;
        }
    }

    /// <summary>Copies the members present in <paramref name="patch"/> onto the item, recording what changed.</summary>
    private static void Apply(ItemEntity item, PatchBody patch, Validation validation, Dictionary<string, object?> changes)
    {
        if (patch.Has("quantity"))
        {
            validation.Add("quantity", "is read-only; record a movement to change it");
        }

        if (patch.OptionalText("sku", MaxSkuLength) is (true, var sku))
        {
            if (sku is null || !IsValidSku(sku))
            {
                validation.Add("sku", "must be 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit");
            }
            else if (sku != item.Sku)
            {
                changes["sku"] = item.Sku = sku;
            }
        }

        if (patch.OptionalText("name", MaxNameLength) is (true, var name))
        {
            if (name is null)
            {
                validation.Add("name", "is required");
            }
            else if (name != item.Name)
            {
                changes["name"] = item.Name = name;
            }
        }

        SetText(patch, "description", MaxDescriptionLength, item.Description, v => item.Description = v, changes);
        SetText(patch, "category", MaxTextLength, item.Category, v => item.Category = v, changes);
        SetText(patch, "unit", MaxTextLength, item.Unit, v => item.Unit = v, changes);
        SetText(patch, "supplier", MaxTextLength, item.Supplier, v => item.Supplier = v, changes);
        if (patch.OptionalText("locationId", 64) is (true, var locationId) && locationId != item.LocationId)
        {
            if (locationId is not null && !InventoryStore.IsPlausibleId(locationId))
            {
                validation.Add("locationId", "must be the id of a location");
            }

            changes["locationId"] = item.LocationId = locationId;
        }

        SetNumber(patch, validation, "unitCost", item.UnitCost, v => item.UnitCost = v, changes);
        SetNumber(patch, validation, "reorderPoint", item.ReorderPoint, v => item.ReorderPoint = v, changes);
        SetNumber(patch, validation, "reorderQuantity", item.ReorderQuantity, v => item.ReorderQuantity = v, changes);
        if (patch.OptionalTimestamp("expiresAt") is (true, var expiresAt) && expiresAt != item.ExpiresAt)
        {
            changes["expiresAt"] = item.ExpiresAt = expiresAt;
        }

        if (patch.Raw("tags") is (true, var tags))
        {
            var list = new List<string>();
            if (tags.ValueKind == JsonValueKind.Array && tags.GetArrayLength() <= MaxTags &&
                tags.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String && t.GetString()!.Trim().Length is > 0 and <= MaxTagLength))
            {
                list.AddRange(tags.EnumerateArray().Select(t => t.GetString()!.Trim()).Distinct(StringComparer.Ordinal));
            }
            else if (tags.ValueKind != JsonValueKind.Null)
            {
                validation.Add("tags", $"must be an array of at most {MaxTags} non-blank strings of at most {MaxTagLength} characters");
            }

            if (!list.SequenceEqual(item.TagList, StringComparer.Ordinal))
            {
                changes["tags"] = list;
                item.TagList = list;
            }
        }

        if (patch.Raw("fields") is (true, var fields))
        {
            var text = fields.ValueKind == JsonValueKind.Null ? "{}" : fields.GetRawText();
            if (fields.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null) || text.Length > MaxFieldsBytes)
            {
                validation.Add("fields", $"must be a JSON object of at most {MaxFieldsBytes} bytes");
            }
            else if (text != item.Fields)
            {
                changes["fields"] = fields.ValueKind == JsonValueKind.Null ? null : fields.Clone();
                item.Fields = text;
            }
        }
    }

    private static void SetText(PatchBody patch, string field, int maxLength, string? current, Action<string?> set, Dictionary<string, object?> changes)
    {
        if (patch.OptionalText(field, maxLength) is (true, var value) && value != current)
        {
            set(value);
            changes[field] = value;
        }
    }

    private static void SetNumber(PatchBody patch, Validation validation, string field, double? current, Action<double?> set, Dictionary<string, object?> changes)
    {
        if (patch.OptionalNumber(field) is not (true, var value))
        {
            return;
        }

        if (value is < 0 or > MaxQuantity)
        {
            validation.Add(field, "must be from 0 to 1000000000");
        }
        else if (value != current)
        {
            set(value);
            changes[field] = value;
        }
    }

    public static bool IsValidSku(string sku) =>
        sku.Length is > 0 and <= MaxSkuLength && char.IsAsciiLetterOrDigit(sku[0]) && sku.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');

    public static CommandError ItemLimitReached(int max) =>
        new(409, "item_limit_reached", $"This tenant has reached its limit of {max} items; archive items it no longer needs.");

    public static CommandError SkuTaken(string sku) => new(409, "sku_taken", $"Another item of this tenant has the SKU {sku}.");

    public static CommandError LocationNotFound(string id) => new(400, "location_not_found", $"There is no location {id} in this tenant.");
}
