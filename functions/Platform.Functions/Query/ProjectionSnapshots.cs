using System.Buffers;
using System.IO.Compression;
using System.Reflection;
using System.Runtime.Serialization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Query;

/// <summary>
/// A large tenant's projected rows saved as one blob next to the <see cref="ChangeLog"/> position they reflect, so an
/// instance that does not hold the tenant yet loads it with one download and a catch-up through the log instead of a
/// partition scan. On Table storage a 100,000-row scan is about a hundred sequential pages; on Azurite every page
/// filters the whole table (the inventory report read 300 pages of a 520,000-row table for 76 s cold). The blob is
/// gzip'd NDJSON: a header line, then one row a line as the table holds it (ETag and timestamp included).
/// <para>
/// A snapshot is only ever a head start, never the truth: its position says which log entries it already reflects,
/// and the loading instance reads every entry after it and re-reads the rows they name, exactly as a held projection
/// catches up. When that cannot be done - the entries were trimmed (the log keeps an hour), more rows changed than a
/// catch-up reads one by one, a lane is behind the snapshot (the log was reset), the header names another tenant,
/// table or row shape, or the blob is unreadable - the snapshot is ignored and the instance scans, then saves a new one.
/// </para>
/// <para>
/// A snapshot only helps while the log still holds every entry after its position (an hour): the
/// <see cref="ProjectionSnapshotRefresh"/> timer brings each snapshot whose tenant changed up to date every 20 minutes,
/// so a tenant nobody listed for a night still loads from its snapshot. A save is gzip'd in memory and uploaded in one
/// call, so readers see the previous snapshot until the new one is whole, and one older than the stored one is not
/// written over it.
/// </para>
/// <para>
/// Only projections that opt in are saved: items and stock. Users are not: their rows carry password hashes and sealed
/// TOTP seeds, which should not gain a second copy, and their cold report already meets its goal. The container is not
/// tenant data (<see cref="StorageLayout.TenantBlobs"/>): a backup must not copy a snapshot, whose position means
/// nothing in another tenant's log.
/// </para>
/// </summary>
public sealed class ProjectionSnapshots(StorageAccount storage, IOptions<ListsOptions> options, IHostApplicationLifetime lifetime, ILogger<ProjectionSnapshots> logger)
{
    public const string SnapshotContainer = "projection-snapshots";

    /// <summary>Changes the header's meaning or the row encoding: older snapshots are ignored.</summary>
    private const int Format = 1;

    /// <summary>Blob metadata: the total of the saved position's lane numbers, so a save or a refresh can tell an older snapshot without reading it.</summary>
    public const string PositionMetadata = "positiontotal";

    private long _saved;
    private long _refused;

    /// <summary>Tenants smaller than this are scanned, not saved: the scan is cheap and the blob would be churn.</summary>
    public int MinRows => options.Value.SnapshotMinRows;

    /// <summary>Snapshots written by this instance since it started.</summary>
    public long Saved => Interlocked.Read(ref _saved);

    /// <summary>Snapshots found but not used (stale beyond the log, another shape, unreadable).</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Where a tenant's snapshot of one projection lives: named by the tenant, never by anything a caller sends.</summary>
    public BlobClient BlobFor(TenantId tenant, string table, string keyPrefix) =>
        storage.Container(SnapshotContainer).GetBlobClient(NameFor(tenant, table, keyPrefix));

    private static string NameFor(TenantId tenant, string table, string keyPrefix) => $"{tenant.Value}/{table}/{Uri.EscapeDataString(keyPrefix)}.ndjson.gz";

    /// <summary>Every snapshot stored, with the projection it belongs to (blobs of none of <paramref name="projections"/> are skipped).</summary>
    public async IAsyncEnumerable<(TenantId Tenant, ISnapshottedProjection Projection, long PositionTotal)> StoredAsync(
        IReadOnlyCollection<ISnapshottedProjection> projections, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var blob in storage.Container(SnapshotContainer).GetBlobsAsync(
            new Azure.Storage.Blobs.Models.GetBlobsOptions { Traits = Azure.Storage.Blobs.Models.BlobTraits.Metadata }, cancellationToken))
        {
            var parts = blob.Name.Split('/');
            if (parts.Length != 3 || !TenantId.TryParse(parts[0], out var tenant))
            {
                continue;
            }

            var projection = projections.FirstOrDefault(p => p.Table == parts[1] && NameFor(tenant, p.Table, p.KeyPrefix) == blob.Name);
            if (projection is not null)
            {
                yield return (tenant, projection, PositionTotalOf(blob.Metadata));
            }
        }
    }

    private static long PositionTotalOf(IDictionary<string, string>? metadata) =>
        metadata is not null && metadata.TryGetValue(PositionMetadata, out var text) && long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var total)
            ? total : -1;

    /// <summary>
    /// Reads the tenant's snapshot, handing each row to <paramref name="add"/>. The position the rows reflect and the
    /// blob's version, or null when there is none or it cannot be used: then rows may have been handed over already
    /// and the caller starts over.
    /// </summary>
    public async Task<(LogPosition Position, ETag Version)?> TryLoadAsync<TEntity>(
        TenantId tenant, string table, string keyPrefix, Action<TEntity> add, CancellationToken cancellationToken)
        where TEntity : class, ITableEntity
    {
        var blob = BlobFor(tenant, table, keyPrefix);
        ETag? version = null;
        try
        {
            // The version read is the one a refusal deletes, never a good snapshot saved since.
            version = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value.ETag;
            await using var stored = await blob.OpenReadAsync(new Azure.Storage.Blobs.Models.BlobOpenReadOptions(allowModifications: false)
            {
                Conditions = new Azure.Storage.Blobs.Models.BlobRequestConditions { IfMatch = version },
            }, cancellationToken);
            await using var gzip = new GZipStream(stored, CompressionMode.Decompress);
            using var reader = new StreamReader(gzip, Encoding.UTF8);
            if (await reader.ReadLineAsync(cancellationToken) is not { } first
                || JsonSerializer.Deserialize<Header>(first) is not { } header
                || header.Format != Format || header.Tenant != tenant.Value || header.Table != table || header.Prefix != keyPrefix
                || header.Shape != Shape<TEntity>.Value || header.Position is not { Length: ChangeLog.Lanes } numbers || header.Rows < 0)
            {
                return Refuse(tenant, table, keyPrefix, version, "its header does not describe this projection");
            }

            var info = (JsonTypeInfo<TEntity>)RowJson.GetTypeInfo(typeof(TEntity));
            long rows = 0;
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (JsonSerializer.Deserialize(line, info) is not { } entity
                    || entity.PartitionKey != tenant.Value || !entity.RowKey.StartsWith(keyPrefix, StringComparison.Ordinal))
                {
                    return Refuse(tenant, table, keyPrefix, version, $"row {rows + 1} is not a row of this projection");
                }

                add(entity);
                rows++;
            }

            if (rows != header.Rows)
            {
                return Refuse(tenant, table, keyPrefix, version, $"it holds {rows} rows of the {header.Rows} its header counts");
            }

            return (new LogPosition(numbers), version.Value);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Whatever the bytes make a row or its projection throw (a null where the row type has none, a timeout
            // reading it): a snapshot is never worth failing the request for.
            return Refuse(tenant, table, keyPrefix, version, ex.GetType().Name + ": " + ex.Message);
        }
    }

    /// <summary>
    /// Saves <paramref name="rows"/> as reflecting <paramref name="position"/>, unless the stored snapshot reflects at
    /// least as much of the log already. Each row must be at least as new as the position: the projection's own rows
    /// after a load or catch-up are. Gzip'd in memory first and uploaded in one call, so until it lands readers see the
    /// previous snapshot whole (a blob write stream would empty it first). False when not written.
    /// </summary>
    public async Task<bool> SaveAsync<TEntity>(
        TenantId tenant, string table, string keyPrefix, LogPosition position, IReadOnlyCollection<TEntity> rows, CancellationToken cancellationToken)
        where TEntity : class, ITableEntity
    {
        var blob = BlobFor(tenant, table, keyPrefix);
        try
        {
            var stored = await blob.GetPropertiesAsync(cancellationToken: cancellationToken);
            if (PositionTotalOf(stored.Value.Metadata) >= position.Total)
            {
                return false;
            }
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            // None yet.
        }

        var header = new Header(Format, tenant.Value, table, keyPrefix, Shape<TEntity>.Value, position.ToArray(), rows.Count, DateTimeOffset.UtcNow);
        var info = (JsonTypeInfo<TEntity>)RowJson.GetTypeInfo(typeof(TEntity));
        using var content = new MemoryStream();
        await using (var gzip = new GZipStream(content, CompressionLevel.Fastest, leaveOpen: true))
        {
            var buffer = new ArrayBufferWriter<byte>(4096);
            await using var writer = new Utf8JsonWriter(buffer);
            JsonSerializer.Serialize(writer, header);
            foreach (var row in rows)
            {
                if (buffer.WrittenCount > 64 * 1024)
                {
                    gzip.Write(buffer.WrittenSpan);
                    buffer.ResetWrittenCount();
                }

                buffer.Write("\n"u8);
                writer.Reset();
                JsonSerializer.Serialize(writer, row, info);
            }

            gzip.Write(buffer.WrittenSpan);
        }

        content.Position = 0;
        await blob.UploadAsync(content, new Azure.Storage.Blobs.Models.BlobUploadOptions
        {
            Metadata = new Dictionary<string, string> { [PositionMetadata] = position.Total.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        }, cancellationToken);
        Interlocked.Increment(ref _saved);
        return true;
    }

    /// <summary>
    /// Starts <see cref="SaveAsync"/> without making the caller wait: a snapshot is an optimisation, so a failed save
    /// is logged and left for the next one. Stops with the app.
    /// </summary>
    public Task SaveInBackground<TEntity>(TenantId tenant, string table, string keyPrefix, LogPosition position, IReadOnlyCollection<TEntity> rows)
        where TEntity : class, ITableEntity =>
        Task.Run(async () =>
        {
            try
            {
                await SaveAsync(tenant, table, keyPrefix, position, rows, lifetime.ApplicationStopping);
            }
            catch (Exception ex)
            {
                // Anything at all: nobody awaits this task, and a snapshot not saved costs only the next cold load a scan.
                logger.LogWarning("The {Table} {Prefix} snapshot of tenant {Tenant} was not saved: {Reason}", table, keyPrefix, tenant.Value, ex.GetType().Name + ": " + ex.Message);
            }
        });

    /// <summary>Logs why, and deletes the blob so that no other cold load downloads it again before a scan saves a good one.</summary>
    private (LogPosition, ETag)? Refuse(TenantId tenant, string table, string keyPrefix, ETag? version, string why)
    {
        Forget(tenant, table, keyPrefix, version, why);
        return null;
    }

    /// <summary>
    /// A snapshot that was read but cannot be used (unreadable, or the log after it cannot be followed): logged, and
    /// that version deleted in the background, so no other cold load downloads it before a scan saves a good one.
    /// </summary>
    public void Forget(TenantId tenant, string table, string keyPrefix, ETag? version, string why)
    {
        Interlocked.Increment(ref _refused);
        logger.LogWarning("The {Table} {Prefix} snapshot of tenant {Tenant} is not used, the tenant is scanned instead: {Reason}", table, keyPrefix, tenant.Value, why);
        _ = Task.Run(async () =>
        {
            try
            {
                if (version is { } refused)
                {
                    await BlobFor(tenant, table, keyPrefix).DeleteIfExistsAsync(
                        conditions: new Azure.Storage.Blobs.Models.BlobRequestConditions { IfMatch = refused }, cancellationToken: lifetime.ApplicationStopping);
                }
            }
            catch (Exception ex) when (ex is RequestFailedException or OperationCanceledException)
            {
                // Replaced meanwhile (412: a scan saved a good one), or left for the next refusal.
            }
        });
    }

    /// <summary>Deletes the tenant's snapshot of a projection that no longer needs one (it shrank below <see cref="MinRows"/>).</summary>
    public Task DeleteAsync(TenantId tenant, string table, string keyPrefix, CancellationToken cancellationToken) =>
        BlobFor(tenant, table, keyPrefix).DeleteIfExistsAsync(cancellationToken: cancellationToken);

    private sealed record Header(int Format, string Tenant, string Table, string Prefix, string Shape, long[] Position, long Rows, DateTimeOffset SavedAt);

    /// <summary>
    /// Rows as the Table SDK maps them: public properties with a getter and a setter, not marked
    /// <see cref="IgnoreDataMemberAttribute"/>; the ETag as its text; doubles including NaN and infinities.
    /// </summary>
    private static readonly JsonSerializerOptions RowJson = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new ETagConverter() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver
        {
            Modifiers =
            {
                info =>
                {
                    if (info.Kind != JsonTypeInfoKind.Object || !typeof(ITableEntity).IsAssignableFrom(info.Type))
                    {
                        return;
                    }

                    foreach (var property in info.Properties.ToList())
                    {
                        if (property.Set is null || property.Get is null
                            || property.AttributeProvider?.IsDefined(typeof(IgnoreDataMemberAttribute), inherit: true) == true)
                        {
                            info.Properties.Remove(property);
                        }
                    }
                },
            },
        },
    };

    /// <summary>The stored property names and types of a row: a snapshot of rows of another shape is not read.</summary>
    private static class Shape<TEntity>
    {
        public static readonly string Value = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n',
            RowJson.GetTypeInfo(typeof(TEntity)).Properties.Select(p => $"{p.Name}:{p.PropertyType.FullName}").Order(StringComparer.Ordinal)))))[..16];
    }

    private sealed class ETagConverter : JsonConverter<ETag>
    {
        public override ETag Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.GetString() is { Length: > 0 } text ? new ETag(text) : default;

        // A row never read from storage has no ETag: written as null, not as the text "<null>" ToString gives it.
        public override void Write(Utf8JsonWriter writer, ETag value, JsonSerializerOptions options)
        {
            if (value == default)
            {
                writer.WriteNullValue();
            }
            else
            {
                writer.WriteStringValue(value.ToString());
            }
        }
    }
}

/// <summary>A projection whose tenants' rows are saved as snapshots, as the refresh timer sees it.</summary>
public interface ISnapshottedProjection
{
    string Table { get; }

    string KeyPrefix { get; }

    /// <summary>
    /// Brings the tenant's snapshot up to date when the log moved past <paramref name="storedTotal"/> (the stored
    /// snapshot's position total): loads the tenant as a list would - from that snapshot and the log after it - and saves
    /// it. True when a newer snapshot was saved.
    /// </summary>
    Task<bool> RefreshSnapshotAsync(TenantId tenant, long storedTotal, CancellationToken cancellationToken);
}
