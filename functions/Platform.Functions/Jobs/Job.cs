using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Serialization;
using Platform.Functions.Auth;
using Platform.Functions.Storage;

namespace Platform.Functions.Jobs;

/// <summary>
/// A job is an orchestration instance of one tenant. Its instance id carries the tenant (<c>job:{tenant}:{id}</c>),
/// so a job id from another tenant names an instance the caller's tenant cannot form: every route reaches instances
/// only through <see cref="InstanceId"/> with the caller's tenant.
/// </summary>
public static class JobIds
{
    private const string Prefix = "job:";

    public static string InstanceId(TenantId tenant, string jobId) => $"{Prefix}{tenant.Value}:{jobId}";

    /// <summary>The prefix every job instance of a tenant starts with (the tenant id is alphanumeric, so no tenant's prefix is another's).</summary>
    public static string TenantPrefix(TenantId tenant) => $"{Prefix}{tenant.Value}:";

    public static bool IsJobInstance(string instanceId) => instanceId.StartsWith(Prefix, StringComparison.Ordinal);

    public static bool TryParse(string instanceId, out TenantId tenant, [NotNullWhen(true)] out string? jobId)
    {
        tenant = default;
        jobId = null;
        if (!IsJobInstance(instanceId))
        {
            return false;
        }

        var rest = instanceId.AsSpan(Prefix.Length);
        var colon = rest.IndexOf(':');
        if (colon <= 0 || !TenantId.TryParse(rest[..colon].ToString(), out tenant) || !IsWellFormed(rest[(colon + 1)..].ToString()))
        {
            return false;
        }

        jobId = rest[(colon + 1)..].ToString();
        return true;
    }

    /// <summary>Job ids are the app's ULID-style ids: a route id of any other shape names no job.</summary>
    public static bool IsWellFormed(string? jobId) => jobId is { Length: > 0 and <= 32 } && jobId.All(char.IsAsciiLetterOrDigit);
}

/// <summary>Who started a job: its work is done, and its events are attributed, as that caller.</summary>
public sealed record JobActor(string UserId, string SessionId, string? Ip, IReadOnlyList<string>? Scopes)
{
    public static JobActor From(Caller caller) => new(caller.UserId, caller.SessionId, caller.Ip, caller.Scopes?.Order(StringComparer.Ordinal).ToList());

    public Caller ToCaller(TenantId tenant) => new(tenant, UserId, SessionId)
    {
        Ip = Ip,
        Scopes = Scopes?.ToHashSet(StringComparer.Ordinal),
    };
}

/// <summary>What every job orchestration is started with: its tenant, id, starter and its type's parameters.</summary>
public sealed record JobInput<TParameters>(string TenantId, string JobId, JobActor Actor, TParameters Parameters)
{
    [JsonIgnore]
    public TenantId Tenant => new(TenantId);

    [JsonIgnore]
    public Caller Caller => Actor.ToCaller(Tenant);
}

/// <summary>Counts of a job's rows (or items), as the API shows them.</summary>
public sealed record JobProgress(long Total, long Processed, long Succeeded, long Failed)
{
    public static JobProgress None { get; } = new(0, 0, 0, 0);
}

/// <summary>The orchestration's custom status while it runs: progress, and when work started.</summary>
public sealed record JobRunningStatus(JobProgress Progress, DateTimeOffset StartedAt, string Phase);

/// <summary>A file a finished job produced (a result or an error report), kept in the jobs container.</summary>
public sealed record JobFile(string Blob, string ContentType, string FileName);

/// <summary>
/// The orchestration's output. <see cref="Status"/> is the job status the API shows for a finished job
/// (<c>succeeded</c>, <c>completed_with_errors</c>, <c>failed</c>, <c>cancelled</c>).
/// </summary>
public sealed record JobOutcome(
    string Status,
    JobProgress Progress,
    DateTimeOffset? StartedAt = null,
    JobFile? Result = null,
    JobFile? ErrorReport = null,
    string? Error = null,
    string? Note = null,
    IReadOnlyDictionary<string, double>? Figures = null)
{
    public const string Succeeded = "succeeded";
    public const string CompletedWithErrors = "completed_with_errors";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    /// <summary>What a job terminated for a poisoned message shows.</summary>
    public static JobOutcome Poisoned(string reason) => new(Failed, JobProgress.None, Error: reason);
}
