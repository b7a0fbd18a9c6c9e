using System.Runtime.CompilerServices;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Query;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Audit;

/// <summary>
/// The <c>audit</c> export: the tenant's audit trail, oldest first, read a page at a time through
/// <see cref="AuditTrail"/> (which owns the table). The filter language applies to the entry's fields; comparisons of
/// <c>at</c> joined by <c>and</c> at the top level narrow the scan to a row-key range (keys are time-ordered ids), the
/// rest is evaluated on each entry.
/// </summary>
public sealed class AuditExport(AuditTrail audit, EventRelay relay, CallerPermissions permissions) : IExportKind
{
    public const string Kind = "audit";

    public const int PageSize = 1000;

    /// <summary>
    /// How far an entry's key may be from its <c>at</c>: both are read from the clock when an event is recorded, the
    /// key a moment later. The range is widened by this and <c>at</c> itself is then compared exactly.
    /// </summary>
    private static readonly TimeSpan KeySkew = TimeSpan.FromMinutes(1);

    public static FilterSchema FilterSchema { get; } = new(new Dictionary<string, FieldType>(StringComparer.Ordinal)
    {
        ["id"] = FieldType.String,
        ["at"] = FieldType.Timestamp,
        ["action"] = FieldType.String,
        ["actorType"] = FieldType.String,
        ["actorId"] = FieldType.String,
        ["onBehalfOf"] = FieldType.String,
        ["ip"] = FieldType.String,
        ["targetType"] = FieldType.String,
        ["targetId"] = FieldType.String,
    });

    /// <summary>The fields of an entry, with its recorded changes as their JSON text.</summary>
    public IReadOnlyList<string> Columns { get; } = ["id", "at", "action", "actorType", "actorId", "onBehalfOf", "ip", "targetType", "targetId", "changes"];

    public string? CheckFilter(string? filter)
    {
        try
        {
            FilterParser.ParseOptional(filter, FilterSchema);
            return null;
        }
        catch (FilterException ex)
        {
            return ex.Message;
        }
    }

    /// <exception cref="FilterException">The filter does not check out.</exception>
    /// <exception cref="UnauthorizedAccessException">The caller no longer holds <c>audit.read</c>.</exception>
    public async IAsyncEnumerable<IReadOnlyList<string?>> RowsAsync(Caller caller, string? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!(await permissions.ForAsync(caller, cancellationToken)).Contains(Permissions.AuditRead))
        {
            throw new UnauthorizedAccessException("Exporting the audit trail needs the audit.read permission.");
        }

        var where = FilterParser.ParseOptional(filter, FilterSchema);
        var (from, to) = FilterFields.TimeRange(where, "at");
        if (from > to)
        {
            yield break;
        }

        await relay.CatchUpAsync(caller.Tenant, cancellationToken);
        var low = from is { } start && start > DateTimeOffset.UnixEpoch + KeySkew ? Ids.Floor(start - KeySkew) : Ids.Floor(DateTimeOffset.UnixEpoch);
        var high = Ids.After(to is { } end && end < DateTimeOffset.MaxValue - KeySkew ? end + KeySkew : DateTimeOffset.MaxValue);
        await foreach (var row in audit.Entries(caller.Tenant).QueryWhereAsync<AuditEntry>($"RowKey ge {low} and RowKey lt {high}", PageSize, cancellationToken))
        foreach (var entry in AuditTrail.Expand(row))
        {
            if (where is null || where.Evaluate(field => ValueOf(entry, field)))
            {
                yield return
                [
                    entry.RowKey,
                    Users.UserExport.Timestamp(entry.At),
                    entry.Action,
                    entry.ActorType,
                    entry.ActorId,
                    entry.OnBehalfOf,
                    entry.Ip,
                    entry.TargetType,
                    entry.TargetId,
                    entry.Changes,
                ];
            }
        }
    }

    private static object? ValueOf(AuditEntry entry, string field) => field switch
    {
        "id" => entry.RowKey,
        "at" => entry.At,
        "action" => entry.Action,
        "actorType" => entry.ActorType,
        "actorId" => entry.ActorId,
        "onBehalfOf" => entry.OnBehalfOf,
        "ip" => entry.Ip,
        "targetType" => entry.TargetType,
        "targetId" => entry.TargetId,
        _ => null,
    };
}
