using Platform.Functions.Hosting;
using System.Globalization;
using System.Security.Claims;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Triggers;
using Platform.Functions.Users;

namespace Platform.Functions.Audit;

public sealed class AuditOptions
{
    public const string Section = "Platform:Audit";

    [System.ComponentModel.DataAnnotations.Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(365);
}

/// <summary>
/// <c>GET /api/v1/audit</c>: the tenant's audit trail, oldest first within the range. Row keys are ULIDs, so a
/// time range is a row-key range and the other filters are escaped OData conditions on the same partition.
/// </summary>
public static class AuditEndpoints
{
    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/audit").WithTags("Audit");
        group.MapGet("/", ListAudit).RequirePermission(Permissions.AuditRead).WithName("ListAudit").WithSummary("The tenant's audit trail, filtered by time range, actor, target and action.");
        return group;
    }

    public sealed record AuditPosition(string? StorageToken);

    internal static async Task<Results<Ok<PagedList<AuditEntryView>>, ProblemHttpResult>> ListAudit(
        DateTimeOffset? from, DateTimeOffset? to, string? actorId, string? targetId, string? action, string? pageSize, string? continuationToken,
        Caller caller, AuditTrail audit, EventRelay relay, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation);
        foreach (var (name, value) in new[] { ("actorId", actorId), ("targetId", targetId), ("action", action) })
        {
            if (value?.Length > 100)
            {
                validation.Add(name, "must be at most 100 characters");
            }
        }

        if (from > to)
        {
            validation.Add("from", "must not be after to");
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var query = $"{from:O}\n{to:O}\n{actorId}\n{targetId}\n{action}\n{size}";
        AuditPosition? position = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, query, out position))
        {
            return ContinuationTokens.Invalid();
        }

        // The trail shows every change already answered: events still in an outbox are relayed first.
        await relay.CatchUpAsync(caller.Tenant, cancellationToken);

        var low = Ids.Floor(from ?? DateTimeOffset.UnixEpoch);
        var high = Ids.After(to ?? DateTimeOffset.MaxValue);
        // Each optional filter is "(Prop eq value or true)" when absent: one escaped, parameterised condition.
        FormattableString condition =
            $"RowKey ge {low} and RowKey lt {high} and (ActorId eq {actorId ?? ""} or OnBehalfOf eq {actorId ?? ""} or {actorId is null}) and (TargetId eq {targetId ?? ""} or {targetId is null}) and (Action eq {action ?? ""} or {action is null})";

        await foreach (var page in audit.Entries(caller.Tenant).QueryWhereAsync<AuditEntry>(condition, size, cancellationToken).AsPages(position?.StorageToken, size))
        {
            var next = page.ContinuationToken is { } more ? tokens.Create(caller.Tenant, query, new AuditPosition(more)) : null;
            return TypedResults.Ok(new PagedList<AuditEntryView>([.. page.Values.Select(AuditEntryView.From)], next));
        }

        return TypedResults.Ok(new PagedList<AuditEntryView>([], null));
    }
}

/// <summary>The <c>AuditRetention</c> timer: daily, deletes each tenant's audit entries older than the retention.</summary>
public sealed partial class AuditRetention(TenantDirectory tenants, AuditTrail audit, IOptions<AuditOptions> options, TimeProvider time, ILogger<AuditRetention> logger)
    : ITimerHandler
{
    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
    {
        var cutoff = Ids.Floor(time.GetUtcNow() - options.Value.Retention);
        var deleted = 0;
        await foreach (var tenant in tenants.AllIdsAsync(cancellationToken))
        {
            var entries = audit.Entries(tenant);
            var expired = new List<TableTransactionAction>();
            await foreach (var entry in entries.QueryWhereAsync<AuditEntry>($"RowKey lt {cutoff}", 1000, cancellationToken))
            {
                expired.Add(new TableTransactionAction(TableTransactionActionType.Delete, entry, ETag.All));
                if (expired.Count == 100)
                {
                    await entries.SubmitTransactionAsync(expired, cancellationToken);
                    deleted += expired.Count;
                    expired.Clear();
                }
            }

            if (expired.Count > 0)
            {
                await entries.SubmitTransactionAsync(expired, cancellationToken);
                deleted += expired.Count;
            }
        }

        LogDeleted(logger, deleted, options.Value.Retention.TotalDays);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Audit retention deleted {Deleted} entries older than {Days} days")]
    private static partial void LogDeleted(ILogger logger, int deleted, double days);
}
