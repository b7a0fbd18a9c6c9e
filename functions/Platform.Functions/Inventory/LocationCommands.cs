using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Inventory;

public sealed record LocationInput(string? Name, string? Code, string? ParentId, string? Description);

/// <summary>
/// Changes to locations. The tree stays a tree under concurrency: every write that depends on another location
/// (its parent existing, its ancestors not including it, it having no children or stock) also touches the rows it
/// relied on, conditioned on the ETags it read, in the same entity-group transaction - so a concurrent change to
/// any of them makes one of the two writes fail and re-check, instead of both passing on stale reads.
/// </summary>
public sealed class LocationCommands(InventoryStore store, EventPublisher events, TimeProvider time)
{
    public const int MaxNameLength = 100;
    public const int MaxCodeLength = 50;
    public const int MaxDescriptionLength = 1000;

    /// <summary>Deepest a location may sit (a root is depth 1); it bounds the ancestor walk and the transaction size.</summary>
    public const int MaxDepth = 16;

    private const int MaxAttempts = 5;

    public async Task<LocationEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        InventoryStore.IsPlausibleId(id) ? await store.For(tenant).GetAsync<LocationEntity>(LocationEntity.KeyFor(id), cancellationToken) : null;

    public async Task<List<LocationEntity>> AllAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var all = new List<LocationEntity>();
        await foreach (var location in store.For(tenant).QueryAsync<LocationEntity>(LocationEntity.KeyPrefix, maxPerPage: 1000, cancellationToken))
        {
            all.Add(location);
        }

        return all;
    }

    public Task<Outcome<LocationEntity>> CreateAsync(Caller caller, LocationInput input, CancellationToken cancellationToken) =>
        CreateAsync(caller, input, importKey: null, cancellationToken);

    /// <param name="importKey">The import row creating it (kept on the row, see <see cref="LocationEntity.ImportKey"/>); null over HTTP.</param>
    public async Task<Outcome<LocationEntity>> CreateAsync(Caller caller, LocationInput input, string? importKey, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        if (Read(input).Failed(out var invalid, out var location))
        {
            return invalid;
        }

        location.ImportKey = importKey;
        var parentId = location.ParentId;
        for (var attempt = 1; ; attempt++)
        {
            var actions = new List<TableTransactionAction> { new(TableTransactionActionType.Add, location) };
            if (parentId is not null)
            {
                var (ancestors, error) = await AncestorsAsync(tenant, parentId, location.Id, cancellationToken);
                if (error is not null)
                {
                    return error;
                }

                // Only the parent is relied on here: it must still exist when the child is added.
                actions.Add(Touch(ancestors[0]));
            }

            try
            {
                // The event commits with the location (its outbox row last, after the parent's touch).
                var responses = await events.CommitAsync(store.For(tenant), actions,
                    [new PlatformEvent("inventory.location.created", caller.Actor, "location", location.Id,
                        new Dictionary<string, object?> { ["name"] = location.Name, ["parentId"] = location.ParentId })],
                    cancellationToken);
                location.ETag = responses.Value[0].Headers.ETag ?? default;
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 404 or 412 && attempt < MaxAttempts)
            {
                // The parent changed or went away meanwhile: look again.
                continue;
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 404 or 412)
            {
                return ParentNotFound(parentId!);
            }

            return location;
        }
    }

    /// <summary>
    /// Reads a create body as POST does, without touching storage: the location it describes (a new id, not stored
    /// yet; its parent not checked), or the validation failure.
    /// </summary>
    public Outcome<LocationEntity> Read(LocationInput input)
    {
        var validation = new Validation();
        var name = validation.Text("name", input.Name, MaxNameLength);
        var code = Optional(validation, "code", input.Code, MaxCodeLength);
        var description = Optional(validation, "description", input.Description, MaxDescriptionLength);
        var parentId = string.IsNullOrWhiteSpace(input.ParentId) ? null : input.ParentId.Trim();
        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        var now = time.GetUtcNow();
        return new LocationEntity
        {
            RowKey = LocationEntity.KeyFor(Ids.New(time)),
            Name = name,
            Code = code,
            ParentId = parentId,
            Description = description,
            CreatedAt = now,
            UpdatedAt = now,
        };
    }

    /// <summary>
    /// Applies a PATCH body to <paramref name="location"/> in memory as PATCH does: what changed (empty when nothing
    /// did), or the validation failure. Nothing is written and no other location is checked.
    /// </summary>
    public static Outcome<Dictionary<string, object?>> ReadChanges(LocationEntity location, JsonElement body)
    {
        var validation = new Validation();
        if (body.ValueKind != JsonValueKind.Object)
        {
            return CommandError.Invalid(validation.Add("body", "must be a JSON object"));
        }

        var patch = new PatchBody(body, validation);
        var changes = new Dictionary<string, object?>();
        if (patch.Has("name"))
        {
            var (_, text) = patch.OptionalText("name", MaxNameLength);
            if (text is null)
            {
                validation.Add("name", "is required");
            }
            else if (text != location.Name)
            {
                changes["name"] = location.Name = text;
            }
        }

        if (patch.OptionalText("code", MaxCodeLength) is (true, var code) && code != location.Code)
        {
            changes["code"] = location.Code = code;
        }

        if (patch.OptionalText("description", MaxDescriptionLength) is (true, var description) && description != location.Description)
        {
            changes["description"] = location.Description = description;
        }

        if (patch.OptionalText("parentId", 64) is (true, var parentId) && parentId != location.ParentId)
        {
            changes["parentId"] = location.ParentId = parentId;
        }

        return validation.IsValid ? changes : CommandError.Invalid(validation);
    }

    public async Task<Outcome<LocationEntity>> UpdateAsync(Caller caller, string id, JsonElement body, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        var validation = new Validation();
        if (body.ValueKind != JsonValueKind.Object)
        {
            return CommandError.Invalid(validation.Add("body", "must be a JSON object"));
        }

        var location = await GetAsync(tenant, id, cancellationToken);
        if (location is null)
        {
            return CommandError.NotFound("location");
        }

        if (!ifMatch(location.ETag))
        {
            return CommandError.Stale("location");
        }

        if (ReadChanges(location, body).Failed(out var invalid, out var changes))
        {
            return invalid;
        }

        var parentChanged = changes.ContainsKey("parentId");
        if (changes.Count == 0)
        {
            return location;
        }

        location.UpdatedAt = time.GetUtcNow();
        var actions = new List<TableTransactionAction> { new(TableTransactionActionType.UpdateReplace, location, location.ETag) };
        if (parentChanged && location.ParentId is not null)
        {
            var (ancestors, error) = await AncestorsAsync(tenant, location.ParentId, location.Id, cancellationToken);
            if (error is not null)
            {
                return error;
            }

            // Every ancestor is relied on (none of them may become a descendant of this one meanwhile).
            actions.AddRange(ancestors.Select(Touch));
        }

        try
        {
            // At most 1 + 15 ancestors, and the event's outbox row last.
            var responses = await events.CommitAsync(store.For(tenant), actions,
                [new PlatformEvent("inventory.location.updated", caller.Actor, "location", location.Id, changes)], cancellationToken);
            location.ETag = responses.Value[0].Headers.ETag ?? default;
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 404 or 409 or 412)
        {
            return CommandError.Stale("location or one of its new ancestors");
        }

        return location;
    }

    public async Task<Outcome<string>> DeleteAsync(Caller caller, string id, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        for (var attempt = 1; ; attempt++)
        {
            var location = await GetAsync(tenant, id, cancellationToken);
            if (location is null)
            {
                return CommandError.NotFound("location");
            }

            if (!ifMatch(location.ETag))
            {
                return CommandError.Stale("location");
            }

            var partition = store.For(tenant);
            await foreach (var _ in partition.QueryWhereAsync<LocationEntity>(
                $"RowKey ge {LocationEntity.KeyPrefix} and RowKey lt {"l;"} and ParentId eq {id}", maxPerPage: 1, cancellationToken))
            {
                return CommandError.Conflict("location_has_children", "This location contains other locations; move or delete them first.");
            }

            await foreach (var _ in partition.QueryWhereAsync<StockEntity>(
                $"RowKey ge {StockEntity.KeyPrefix} and RowKey lt {"s;"} and LocationId eq {id} and Quantity gt {0.0}", maxPerPage: 1, cancellationToken))
            {
                return CommandError.Conflict("location_not_empty", "This location holds stock; move it elsewhere (a transfer) first.");
            }

            try
            {
                // Conditioned on the ETag read before the checks: adding a child or moving stock in touches this
                // row, so either of them happening meanwhile fails the delete and the checks run again.
                await events.CommitAsync(partition, new TableTransactionAction(TableTransactionActionType.Delete, location, location.ETag),
                    [new PlatformEvent("inventory.location.deleted", caller.Actor, "location", id)], cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 412 && attempt < MaxAttempts)
            {
                continue;
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                return ex.Status == 404 ? CommandError.NotFound("location") : CommandError.Stale("location");
            }

            return id;
        }
    }

    /// <summary>
    /// The location <paramref name="parentId"/> and its ancestors, nearest first; an error when it does not exist,
    /// when <paramref name="childId"/> is among them (a cycle), or when the chain is too deep.
    /// </summary>
    private async Task<(List<LocationEntity> Ancestors, CommandError? Error)> AncestorsAsync(
        TenantId tenant, string parentId, string childId, CancellationToken cancellationToken)
    {
        var chain = new List<LocationEntity>();
        var nextId = parentId;
        while (nextId is not null)
        {
            if (nextId == childId)
            {
                return (chain, CommandError.Conflict("location_cycle", "A location cannot be placed inside itself or one of its own descendants."));
            }

            if (chain.Count >= MaxDepth - 1)
            {
                return (chain, new CommandError(400, "location_too_deep", $"Locations nest at most {MaxDepth} levels deep."));
            }

            var next = await GetAsync(tenant, nextId, cancellationToken);
            if (next is null)
            {
                return (chain, chain.Count == 0
                    ? ParentNotFound(parentId)
                    : CommandError.Conflict("location_tree_changed", "The location tree changed meanwhile; try again."));
            }

            chain.Add(next);
            nextId = next.ParentId;
        }

        return (chain, null);
    }

    /// <summary>A merge that changes nothing but fails unless the row still has the ETag it was read with.</summary>
    internal static TableTransactionAction Touch(ITableEntity row) =>
        new(TableTransactionActionType.UpdateMerge, new TableEntity(row.PartitionKey, row.RowKey), row.ETag);

    private static CommandError ParentNotFound(string parentId) =>
        new(400, "parent_not_found", $"There is no location {parentId} in this tenant to be the parent.");

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
