using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Query;
using Platform.Functions.Roles;

namespace Platform.Functions.Inventory;

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

    internal static RouteGroupBuilder MapRoutes(RouteGroupBuilder inventory)
    {
        var group = inventory.MapGroup("/alerts");
        group.MapGet("/", ListAlerts).RequirePermission(Permissions.InventoryRead).WithName("ListAlerts").WithSummary("Low-stock and expiry alerts.");
        group.MapPost("/{id}/acknowledge", Acknowledge).RequirePermission(Permissions.InventoryWrite).WithName("AcknowledgeAlert").WithSummary("Acknowledges an alert.");
        return group;
    }

    /// <param name="status">open (the default: open and acknowledged, i.e. not yet cleared), acknowledged, closed or all.</param>
    internal static async Task<Results<Ok<PagedList<AlertView>>, ProblemHttpResult>> ListAlerts(
        string? status, string? filter, string? q, string? sort, string? pageSize, string? continuationToken,
        Caller caller, InventoryStore store, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
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
        string id, Caller caller, AlertMonitor alerts, CancellationToken cancellationToken) =>
        (await alerts.AcknowledgeAsync(caller, id, cancellationToken)).ToResult(alert => TypedResults.Ok(AlertView.From(alert)));

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
