using System.ComponentModel.DataAnnotations;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;

namespace Platform.Functions.Workflows;

/// <summary>Settings under <c>Platform:Workflows</c>.</summary>
public sealed class WorkflowOptions
{
    public const string Section = "Platform:Workflows";

    [Range(1, 10_000)]
    public int MaxWorkflowsPerTenant { get; set; } = 100;

    /// <summary>Runs of a tenant not yet finished (running or waiting) at once; a start past it is 429.</summary>
    [Range(1, 10_000)]
    public int MaxRunsInFlightPerTenant { get; set; } = 50;
}

/// <summary>A workflow definition: one row per workflow in the tenant's partition of <c>workflows</c>, keyed by its id.</summary>
public sealed class WorkflowEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";

    public string RowKey { get; set; } = "";

    public DateTimeOffset? Timestamp { get; set; }

    public ETag ETag { get; set; }

    public string Name { get; set; } = "";

    /// <summary>The checked steps as JSON (at most <see cref="WorkflowValidator.MaxDefinitionChars"/> characters).</summary>
    public string Steps { get; set; } = "[]";

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    public string CreatedBy { get; set; } = "";

    /// <summary>Workflow rows share the partition with the event outbox's rows, so they have a prefix of their own.</summary>
    public const string KeyPrefix = "wf:";

    public static string KeyFor(string id) => KeyPrefix + id;

    [System.Runtime.Serialization.IgnoreDataMember]
    public string Id => RowKey[KeyPrefix.Length..];

    public IReadOnlyList<WorkflowStep> StepList() => JsonSerializer.Deserialize<List<WorkflowStep>>(Steps, WorkflowStore.Json) ?? [];
}

public sealed record WorkflowView(string Id, string Name, IReadOnlyList<WorkflowStep> Steps, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static WorkflowView From(WorkflowEntity entity) => new(entity.Id, entity.Name, entity.StepList(), entity.CreatedAt, entity.UpdatedAt);
}

public sealed record WorkflowRequest(string? Name, JsonElement? Steps);

/// <summary>Saves, reads, lists and deletes the workflows of the caller's tenant; saves and deletes are events (audit, webhooks).</summary>
public sealed partial class WorkflowStore(StorageAccount storage, EventPublisher events, WorkflowValidator validator, IOptions<WorkflowOptions> options, TimeProvider time)
{
    public const string TableName = "workflows";

    /// <summary>How steps are stored and shown: camelCase, absent members left out, text kept readable.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>Workflow ids are the tenant's own names: letters, digits, '-' and '_' (never ':', which the run instance ids use).</summary>
    public static bool IsValidId(string? id) => id is not null && WorkflowId().IsMatch(id);

    public async Task<WorkflowEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        IsValidId(id) ? await Rows(tenant).GetAsync<WorkflowEntity>(WorkflowEntity.KeyFor(id), cancellationToken) : null;

    /// <summary>Creates or replaces; <paramref name="ifMatch"/> decides whether the row found may be replaced.</summary>
    public async Task<Outcome<(WorkflowEntity Workflow, bool Created)>> PutAsync(
        Caller caller, string id, WorkflowRequest request, Func<ETag, bool> ifMatch, bool mustExist, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (!IsValidId(id))
        {
            validation.Add("id", "must be 1-64 letters, digits, '-' or '_'");
        }

        var name = validation.Text("name", request.Name, WorkflowValidator.MaxNameLength);
        var steps = validator.Read(request.Steps, validation);
        if (steps is null || !validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        var json = JsonSerializer.Serialize(steps, Json);
        if (json.Length > WorkflowValidator.MaxDefinitionChars)
        {
            return CommandError.Invalid(validation.Add("steps", $"must be at most {WorkflowValidator.MaxDefinitionChars} characters as JSON"));
        }

        var rows = Rows(caller.Tenant);
        var existing = await rows.GetAsync<WorkflowEntity>(WorkflowEntity.KeyFor(id), cancellationToken);
        if ((existing is null && mustExist) || (existing is not null && !ifMatch(existing.ETag)))
        {
            return CommandError.Stale("workflow");
        }

        var now = time.GetUtcNow();
        var entity = new WorkflowEntity
        {
            RowKey = WorkflowEntity.KeyFor(id),
            Name = name,
            Steps = json,
            CreatedAt = existing?.CreatedAt ?? now,
            UpdatedAt = now,
            CreatedBy = existing?.CreatedBy ?? caller.UserId,
        };
        var changes = new Dictionary<string, object?> { ["name"] = name, ["steps"] = steps.Count };
        try
        {
            if (existing is null)
            {
                if (await CountAsync(caller.Tenant, cancellationToken) >= options.Value.MaxWorkflowsPerTenant)
                {
                    return new CommandError(409, "workflow_limit_reached",
                        $"A tenant has at most {options.Value.MaxWorkflowsPerTenant} workflows; delete one you no longer use.");
                }

                await events.CommitAsync(rows, new TableTransactionAction(TableTransactionActionType.Add, entity),
                    [new PlatformEvent("workflow.created", caller.Actor, "workflow", id, changes)], cancellationToken);
            }
            else
            {
                await events.CommitAsync(rows, new TableTransactionAction(TableTransactionActionType.UpdateReplace, entity, existing.ETag),
                    [new PlatformEvent("workflow.updated", caller.Actor, "workflow", id, changes)], cancellationToken);
            }
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412)
        {
            // Another save of this id won the race: this one was made against what it no longer is.
            return CommandError.Stale("workflow");
        }

        return (entity, existing is null);
    }

    public async Task<CommandError?> DeleteAsync(Caller caller, string id, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        if (await GetAsync(caller.Tenant, id, cancellationToken) is not { } existing)
        {
            return CommandError.NotFound("workflow");
        }

        if (!ifMatch(existing.ETag))
        {
            return CommandError.Stale("workflow");
        }

        try
        {
            await events.CommitAsync(Rows(caller.Tenant), new TableTransactionAction(TableTransactionActionType.Delete, existing, existing.ETag),
                [new PlatformEvent("workflow.deleted", caller.Actor, "workflow", id)], cancellationToken);
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 404 or 412)
        {
            return CommandError.Stale("workflow");
        }

        return null;
    }

    /// <summary>A page of the tenant's workflows in id order, after <paramref name="after"/>.</summary>
    public async Task<(List<WorkflowEntity> Items, string? Last)> ListAsync(TenantId tenant, int pageSize, string? after, CancellationToken cancellationToken)
    {
        var items = new List<WorkflowEntity>();
        await foreach (var row in Rows(tenant).QueryAsync<WorkflowEntity>(WorkflowEntity.KeyPrefix, maxPerPage: Math.Min(pageSize + 1, 1000), cancellationToken: cancellationToken))
        {
            if (after is not null && string.CompareOrdinal(row.RowKey, after) <= 0)
            {
                continue;
            }

            if (items.Count == pageSize)
            {
                return (items, items[^1].RowKey);
            }

            items.Add(row);
        }

        return (items, null);
    }

    private async Task<int> CountAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var count = 0;
        await foreach (var page in Rows(tenant).QueryAsync<TableEntity>(WorkflowEntity.KeyPrefix, cancellationToken: cancellationToken).AsPages())
        {
            count += page.Values.Count;
        }

        return count;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex WorkflowId();
}
