using Azure;
using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Jobs;

/// <summary>
/// Jobs the engine gave up on: a message of theirs kept coming back unprocessed (poison). Terminating such an instance
/// is not always possible (a message no worker can process blocks the terminate behind it), so the verdict is kept
/// here, in the tenant's partition of the <c>jobfailures</c> table, and the job reads as <c>failed</c> with the reason.
/// </summary>
public sealed class JobFailures(StorageAccount storage)
{
    public const string TableName = "jobfailures";

    private TenantPartition For(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>Records the verdict; false when one was recorded already (by this or another instance).</summary>
    public async Task<bool> RecordAsync(TenantId tenant, string jobId, string reason, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var row = new JobFailureEntity { RowKey = jobId, Reason = reason, At = at };
        try
        {
            await For(tenant).AddAsync(row, cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return false;
        }
    }

    public Task<JobFailureEntity?> GetAsync(TenantId tenant, string jobId, CancellationToken cancellationToken) =>
        For(tenant).GetAsync<JobFailureEntity>(jobId, cancellationToken);

    public async Task DeleteAsync(TenantId tenant, string jobId, CancellationToken cancellationToken) =>
        await For(tenant).DeleteAsync(jobId, ETag.All, cancellationToken);
}

public sealed class JobFailureEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Reason { get; set; } = "";
    public DateTimeOffset At { get; set; }
}
