using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Platform.Functions.Jobs;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>
/// How an import's file is taken in by <c>POST /api/v1/jobs/imports</c>, before any job runs (no worker here, so the
/// job stays queued and its upload stays where the route put it).
/// </summary>
public sealed class ImportUploadTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    [Fact]
    public async Task A_large_upload_is_stored_in_blocks_as_it_arrives_instead_of_whole_in_memory()
    {
        // The SDK's default transfer of an unseekable body first buffers up to 256 MB of it, then stores that in 8 MiB
        // blocks; blocks of the set size show the body went through a block or two at a time.
        var file = new byte[(2 * JobFiles.UploadBlockBytes) + 12_345];
        Random.Shared.NextBytes(file);
        using var content = new ByteArrayContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/csv");

        var response = await Admin.PostAsync("/api/v1/jobs/imports?kind=inventory-items", content, Ct);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString();
        var upload = App.Storage.Container(JobFiles.ContainerName).GetBlockBlobClient($"{Tenant.Id}/{id}/upload");
        var blocks = (await upload.GetBlockListAsync(BlockListTypes.Committed, cancellationToken: Ct)).Value.CommittedBlocks.Select(b => b.SizeLong);
        Assert.Equal([JobFiles.UploadBlockBytes, JobFiles.UploadBlockBytes, 12_345L], blocks);
        Assert.Equal(file, (await upload.DownloadContentAsync(Ct)).Value.Content.ToArray());
    }
}
