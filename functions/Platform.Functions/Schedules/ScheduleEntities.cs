using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Runtime.Serialization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Schedules;

/// <summary>Settings under <c>Platform:Schedules</c>.</summary>
public sealed class ScheduleOptions
{
    public const string Section = "Platform:Schedules";

    /// <summary>How often the <c>ScheduleSweep</c> timer looks for due occurrences (6-field cron, UTC): how late a run may start.</summary>
    public const string DefaultSweepSchedule = "*/10 * * * * *";

    public string SweepSchedule { get; set; } = DefaultSweepSchedule;

    [Range(1, 10_000)]
    public int MaxSchedulesPerTenant { get; set; } = 100;

    /// <summary>Runs kept per schedule (newest first); older ones are deleted as new ones are added.</summary>
    [Range(1, 10_000)]
    public int RunsKept { get; set; } = 100;

    /// <summary>
    /// A run whose start fails for a passing reason (storage or the engine unreachable) is tried again at every sweep
    /// for this long after it was due, then recorded as failed.
    /// </summary>
    [Range(typeof(TimeSpan), "00:01:00", "7.00:00:00")]
    public TimeSpan GiveUpAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Due occurrences one sweep handles; the rest stay due for the next.</summary>
    [Range(1, 100_000)]
    public int MaxDuePerSweep { get; set; } = 1000;
}

/// <summary>Row keys of the <c>schedules</c> table (partition = tenant).</summary>
public static class ScheduleRows
{
    public const string TableName = "schedules";
    public const string SchedulePrefix = "s:";
    public const string CountKey = "count";

    public static string Schedule(string id) => SchedulePrefix + id;

    public static string RunPrefix(string scheduleId) => $"r:{scheduleId}:";

    /// <summary>A run's row: derived from its occurrence (so one occurrence is one row) and inverted, so runs list newest first.</summary>
    public static string Run(string scheduleId, DateTimeOffset dueAt) =>
        RunPrefix(scheduleId) + (DateTimeOffset.MaxValue.UtcTicks - dueAt.UtcTicks).ToString("D19", CultureInfo.InvariantCulture);

    /// <summary>
    /// The id of the run of one occurrence, which is also the id its job or workflow run is started under: every
    /// instance that handles this occurrence, and every retry after a crash, starts the same id, so it starts once.
    /// </summary>
    public static string RunId(TenantId tenant, string scheduleId, DateTimeOffset dueAt) =>
        Ids.Derived(dueAt, $"schedule:{tenant.Value}:{scheduleId}:{dueAt.UtcTicks}");

    /// <summary>Schedule ids are the app's ULID-style ids; a route id of any other shape names none (and never reaches a row key).</summary>
    public static bool IsWellFormed(string? id) => id is { Length: > 0 and <= 32 } && id.All(char.IsAsciiLetterOrDigit);
}

/// <summary>A schedule: row <c>s:{id}</c>.</summary>
public sealed class ScheduleEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";

    /// <summary>Set for a recurring schedule, with <see cref="TimeZone"/>; null for a one-off.</summary>
    public string? Cron { get; set; }

    public string? TimeZone { get; set; }

    /// <summary>Set for a one-off schedule.</summary>
    public DateTimeOffset? RunAt { get; set; }

    /// <summary><c>job</c> or <c>workflow</c>.</summary>
    public string TargetKind { get; set; } = "";

    public string? JobType { get; set; }

    /// <summary>The job's parameters, or the workflow's input, as JSON.</summary>
    public string? Payload { get; set; }

    public string? WorkflowId { get; set; }

    public bool Enabled { get; set; } = true;

    /// <summary>The occurrence that runs next; null when disabled or a one-off has run.</summary>
    public DateTimeOffset? NextRunAt { get; set; }

    public DateTimeOffset? LastRunAt { get; set; }

    public long RunCount { get; set; }

    public string CreatedBy { get; set; } = "";

    /// <summary>The user runs act for: the creator, or whoever last changed the target.</summary>
    public string RunsAs { get; set; } = "";

    /// <summary>The API key that set the target (runs stop when it is revoked or expires); null when a user did.</summary>
    public string? RunsAsKey { get; set; }

    /// <summary>That key's scopes as JSON (runs never exceed them); null when a user set the target.</summary>
    public string? Scopes { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    [IgnoreDataMember]
    public JsonElement? PayloadJson => Payload is null ? null : JsonSerializer.Deserialize<JsonElement>(Payload);

    [IgnoreDataMember]
    public IReadOnlySet<string>? ScopeSet => Scopes is null ? null : (JsonSerializer.Deserialize<string[]>(Scopes) ?? []).ToHashSet(StringComparer.Ordinal);
}

/// <summary>What happened to one occurrence: row <c>r:{scheduleId}:{inverted due time}</c>.</summary>
public sealed class ScheduleRunEntity : ITableEntity
{
    public const string Pending = "pending";
    public const string Started = "started";
    public const string Failed = "failed";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Id { get; set; } = "";
    public string ScheduleId { get; set; } = "";
    public DateTimeOffset DueAt { get; set; }
    public DateTimeOffset ClaimedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }

    /// <summary><c>pending</c> (claimed, being started), <c>failed</c> (could not start: <see cref="Error"/>), or the job's or workflow run's status.</summary>
    public string Status { get; set; } = Pending;

    public string? JobId { get; set; }
    public string? RunId { get; set; }

    /// <summary>The workflow <see cref="RunId"/> is a run of (the schedule's target may change after the run started).</summary>
    public string? WorkflowId { get; set; }

    public string? Error { get; set; }

    /// <summary>The status is final: the job or workflow run finished, or the run failed to start (no further look at the job is needed).</summary>
    public bool Settled { get; set; }
}

public sealed class ScheduleCountEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = ScheduleRows.CountKey;
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public int Count { get; set; }
}

/// <summary>
/// The due index: table <c>scheduledue</c> (not per tenant), one row per planned occurrence, partitioned by the UTC
/// minute it falls due, so a sweep reads only what is due (a range over past partitions) and never the tenants'
/// schedules. Rows are hints: the schedule row decides, and a row that no longer matches its schedule is dropped.
/// </summary>
public sealed class ScheduleDueEntity : ITableEntity
{
    public const string TableName = "scheduledue";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Tenant { get; set; } = "";
    public string ScheduleId { get; set; } = "";
    public DateTimeOffset DueAt { get; set; }

    public static string Bucket(DateTimeOffset at) => at.UtcDateTime.ToString("yyyyMMddHHmm", CultureInfo.InvariantCulture);

    public static ScheduleDueEntity For(TenantId tenant, string scheduleId, DateTimeOffset dueAt) => new()
    {
        PartitionKey = Bucket(dueAt),
        RowKey = $"{tenant.Value}:{scheduleId}:{dueAt.UtcTicks.ToString("D19", CultureInfo.InvariantCulture)}",
        Tenant = tenant.Value,
        ScheduleId = scheduleId,
        DueAt = dueAt,
    };
}
