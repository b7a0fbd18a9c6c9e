using Azure.Storage;
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

    /// <summary>Bytes of an upload held in memory per block staged (<see cref="StreamedUpload"/>).</summary>
    public const int UploadBlockBytes = 4 * 1024 * 1024;

    /// <summary>
    /// How an upload of unknown length (a request body) goes to its blob: in blocks of <see cref="UploadBlockBytes"/>,
    /// two staged at a time, so at most about three blocks are in memory whatever the file. The SDK's default reads an
    /// unseekable stream into memory up to 256 MB first (to try one put) and stages 8 MiB blocks of that: a 100 MB import
    /// held all of it in pooled buffers, which stayed in the process after the upload (about 110 MB of its large-object
    /// heap, and 50 MiB of the memory figure's peak).
    /// </summary>
    public static BlobUploadOptions StreamedUpload() => new()
    {
        TransferOptions = new StorageTransferOptions
        {
            InitialTransferSize = UploadBlockBytes,
            MaximumTransferSize = UploadBlockBytes,
            MaximumConcurrency = 2,
        },
    };

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
