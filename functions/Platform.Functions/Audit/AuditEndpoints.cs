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

    /// <summary>
    /// Where the next page starts: the storage query's continuation, or - when a page ended inside what one storage page
    /// gave (a bundle row gives an entry per event) - the row <paramref name="From"/>, after the first
    /// <paramref name="Skip"/> entries it gives.
    /// </summary>
    public sealed record AuditPosition(string? StorageToken, string? From = null, int Skip = 0);

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

        if (!validation.IsValid || size is not { } pageSizeValue)
        {
            return validation.ToProblem();
        }

        var query = $"{from:O}\n{to:O}\n{actorId}\n{targetId}\n{action}\n{size}";
        AuditPosition? position = null;
        if (continuationToken is not null &&
            (!tokens.TryRead(continuationToken, caller.Tenant, query, out position) || position is null || position.Skip < 0))
        {
            return ContinuationTokens.Invalid();
        }

        // The trail shows every change already answered: events still in an outbox are relayed first.
        await relay.CatchUpAsync(caller.Tenant, cancellationToken);

        var low = Ids.Floor(from ?? DateTimeOffset.UnixEpoch);
        var high = Ids.After(to ?? DateTimeOffset.MaxValue);
        var start = position?.From is { } resume && string.CompareOrdinal(resume, low) > 0 ? resume : low;
        // Each optional filter is "(Prop eq value or true)" when absent: one escaped, parameterised condition. A bundle
        // row has no target of its own: with a target asked for, bundles are read and their events matched here.
        FormattableString condition =
            $"RowKey ge {start} and RowKey lt {high} and (ActorId eq {actorId ?? ""} or OnBehalfOf eq {actorId ?? ""} or {actorId is null}) and (TargetId eq {targetId ?? ""} or Bundled eq true or {targetId is null}) and (Action eq {action ?? ""} or {action is null})";

        // One storage page per request, as ever: a query whose matches are rare may answer few entries, or none, with a
        // continuation. A page ends early, inside the storage page, when it is full.
        await foreach (var page in audit.Entries(caller.Tenant).QueryWhereAsync<AuditEntry>(condition, size, cancellationToken).AsPages(position?.StorageToken, size))
        {
            var items = new List<AuditEntryView>(pageSizeValue);
            AuditPosition? next = null;
            foreach (var row in page.Values)
            {
                var skip = row.RowKey == position?.From ? position.Skip : 0;
                var given = 0;
                foreach (var entry in AuditTrail.Expand(row))
                {
                    if (targetId is not null && entry.TargetId != targetId ||
                        string.CompareOrdinal(entry.RowKey, low) < 0 || string.CompareOrdinal(entry.RowKey, high) >= 0 ||
                        given++ < skip)
                    {
                        continue;
                    }

                    if (items.Count == pageSizeValue)
                    {
                        next = new AuditPosition(null, row.RowKey, given - 1);
                        break;
                    }

                    items.Add(AuditEntryView.From(entry));
                }

                if (next is not null)
                {
                    break;
                }
            }

            next ??= page.ContinuationToken is { } more ? new AuditPosition(more) : null;
            return TypedResults.Ok(new PagedList<AuditEntryView>(items, next is null ? null : tokens.Create(caller.Tenant, query, next)));
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
