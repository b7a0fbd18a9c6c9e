using System.Text.Json.Serialization;
using Azure;
using System.Runtime.Serialization;
using Azure.Data.Tables;

namespace Platform.Functions.Jobs;

[JsonConverter(typeof(JsonStringEnumConverter<JobStatus>))]
public enum JobStatus
{
    Queued,
    Running,
    Succeeded,
    CompletedWithErrors,
    Failed,
    Cancelled,
}

/// <summary>
/// One job, a row in the tenant's partition of the <c>jobs</c> table (row key = job id). Its status moves
/// <c>queued → running → succeeded | completed_with_errors | failed | cancelled</c>, every change guarded by the
/// row's ETag so concurrent workers cannot overwrite each other.
/// </summary>
public sealed class JobEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Type { get; set; } = "";

    /// <summary>Stored as text; <see cref="State"/> is the typed view.</summary>
    public string Status { get; set; } = nameof(JobStatus.Queued);

    /// <summary>The parameters the job was started with, as JSON (bounded by the route that starts it).</summary>
    public string? Parameters { get; set; }

    public int Attempts { get; set; }
    public long Total { get; set; }
    public long Processed { get; set; }
    public long Succeeded { get; set; }
    public long Failed { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public string? LastError { get; set; }
    public string? Error { get; set; }

    [IgnoreDataMember]
    public JobStatus State
    {
        get => Enum.Parse<JobStatus>(Status);
        set => Status = value.ToString();
    }

    [IgnoreDataMember]
    public bool IsFinished => State is JobStatus.Succeeded or JobStatus.CompletedWithErrors or JobStatus.Failed or JobStatus.Cancelled;
}
