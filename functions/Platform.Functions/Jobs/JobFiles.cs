using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Platform.Functions.Storage;

namespace Platform.Functions.Jobs;

/// <summary>
/// A job's files in the <c>jobs</c> container, all under <c>{tenant}/{jobId}/</c>: the upload, the chunks an import
/// is split into, each chunk's result and failed rows, the error report and an export's result. The container is
/// private: files leave only through the authenticated download routes.
/// </summary>
public sealed class JobFiles(StorageAccount storage)
{
    public const string ContainerName = "jobs";

    private BlobContainerClient Container => storage.Container(ContainerName);

    public BlobClient Upload(TenantId tenant, string jobId) => Blob(tenant, jobId, "upload");

    public BlobClient Chunk(TenantId tenant, string jobId, int chunk) => Blob(tenant, jobId, $"chunks/{chunk:D6}.ndjson");

    public BlobClient ChunkResult(TenantId tenant, string jobId, int chunk) => Blob(tenant, jobId, $"results/{chunk:D6}.json");

    public BlobClient ChunkErrors(TenantId tenant, string jobId, int chunk) => Blob(tenant, jobId, $"errors/{chunk:D6}.ndjson");

    public BlobClient Named(TenantId tenant, string jobId, string name) => Blob(tenant, jobId, name);

    /// <summary>A file a job recorded in its outcome; null when the name is not under this tenant's job (never trusted blindly).</summary>
    public BlobClient? Recorded(TenantId tenant, string jobId, JobFile file) =>
        file.Blob.StartsWith(PrefixOf(tenant, jobId), StringComparison.Ordinal) ? Container.GetBlobClient(file.Blob) : null;

    /// <summary>Deletes every file of a job (retention), or those under <paramref name="folder"/>; returns how many.</summary>
    public async Task<int> DeleteAllAsync(TenantId tenant, string jobId, string folder, CancellationToken cancellationToken)
    {
        var deleted = 0;
        await foreach (var blob in Container.GetBlobsAsync(BlobTraits.None, BlobStates.None, PrefixOf(tenant, jobId) + folder, cancellationToken))
        {
            if ((await Container.DeleteBlobIfExistsAsync(blob.Name, cancellationToken: cancellationToken)).Value)
            {
                deleted++;
            }
        }

        return deleted;
    }

    private static string PrefixOf(TenantId tenant, string jobId) => $"{tenant.Value}/{jobId}/";

    private BlobClient Blob(TenantId tenant, string jobId, string name) => Container.GetBlobClient(PrefixOf(tenant, jobId) + name);
}
