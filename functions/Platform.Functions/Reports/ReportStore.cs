using Azure;
using Azure.Data.Tables;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;

namespace Platform.Functions.Reports;

/// <summary>
/// A finished report in the <c>reports</c> table: partition = tenant, row <c>r:{inverted id}</c>. Report ids are job
/// ids (ULIDs, which sort by time), and inverting each character turns ascending into descending, so the partition
/// reads newest first and a report is still found by its id with a point read. The file itself is the job's result
/// in the jobs container; the row goes when job retention purges the job (<see cref="IJobPurgeListener"/>).
/// </summary>
public sealed class ReportEntity : ITableEntity
{
    public const string KeyPrefix = "r:";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Id { get; set; } = "";
    public string Type { get; set; } = "";
    public string Format { get; set; } = "";
    public string Title { get; set; } = "";
    public DateTimeOffset From { get; set; }
    public DateTimeOffset To { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public long Bytes { get; set; }
    public string Blob { get; set; } = "";
    public string ContentType { get; set; } = "";
    public string FileName { get; set; } = "";

    /// <summary>What the type needed when the report was made (besides <c>reports.read</c>); downloading needs it too.</summary>
    public string Permission { get; set; } = "";

    /// <summary>The document's headline figures, as a JSON object.</summary>
    public string? Figures { get; set; }

    public JobFile ToJobFile() => new(Blob, ContentType, FileName);

    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    public static string KeyFor(string id) =>
        KeyPrefix + new string([.. id.Select(c => Alphabet.IndexOf(c, StringComparison.Ordinal) is var i and >= 0 ? Alphabet[Alphabet.Length - 1 - i] : c)]);
}

public sealed class ReportStore(StorageAccount storage) : IJobPurgeListener
{
    public const string TableName = "reports";

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    /// <summary>Upserts: a publish activity run twice writes the same row.</summary>
    public Task RecordAsync(TenantId tenant, ReportEntity report, CancellationToken cancellationToken)
    {
        report.PartitionKey = tenant.Value;
        report.RowKey = ReportEntity.KeyFor(report.Id);
        return Rows(tenant).UpsertAsync(report, cancellationToken);
    }

    public async Task<ReportEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        JobIds.IsWellFormed(id) ? await Rows(tenant).GetAsync<ReportEntity>(ReportEntity.KeyFor(id), cancellationToken) : null;

    public async Task PurgingAsync(TenantId tenant, string jobId, CancellationToken cancellationToken)
    {
        if (JobIds.IsWellFormed(jobId))
        {
            await Rows(tenant).DeleteAsync(ReportEntity.KeyFor(jobId), cancellationToken: cancellationToken);
        }
    }
}
