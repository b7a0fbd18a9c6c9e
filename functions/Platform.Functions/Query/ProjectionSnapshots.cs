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

    private long _saved;
    private long _loaded;
    private long _refused;

    /// <summary>Tenants smaller than this are scanned, not saved: the scan is cheap and the blob would be churn.</summary>
    public int MinRows => options.Value.SnapshotMinRows;

    /// <summary>Snapshots written by this instance since it started.</summary>
    public long Saved => Interlocked.Read(ref _saved);

    /// <summary>Snapshots this instance loaded instead of scanning.</summary>
    public long Loaded => Interlocked.Read(ref _loaded);

    /// <summary>Snapshots found but not used (stale beyond the log, another shape, unreadable).</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Where a tenant's snapshot of one projection lives: named by the tenant, never by anything a caller sends.</summary>
    public BlobClient BlobFor(TenantId tenant, string table, string keyPrefix) =>
        storage.Container(SnapshotContainer).GetBlobClient($"{tenant.Value}/{table}/{Uri.EscapeDataString(keyPrefix)}.ndjson.gz");

    /// <summary>
    /// Reads the tenant's snapshot, handing each row to <paramref name="add"/>. The position the rows reflect, or null
    /// when there is none or it cannot be used: then rows may have been handed over already and the caller starts over.
    /// </summary>
    public async Task<LogPosition?> TryLoadAsync<TEntity>(
        TenantId tenant, string table, string keyPrefix, Action<TEntity> add, CancellationToken cancellationToken)
        where TEntity : class, ITableEntity
    {
        var blob = BlobFor(tenant, table, keyPrefix);
        try
        {
            await using var stored = await blob.OpenReadAsync(new Azure.Storage.Blobs.Models.BlobOpenReadOptions(allowModifications: false), cancellationToken);
            await using var gzip = new GZipStream(stored, CompressionMode.Decompress);
            using var reader = new StreamReader(gzip, Encoding.UTF8);
            if (await reader.ReadLineAsync(cancellationToken) is not { } first
                || JsonSerializer.Deserialize<Header>(first) is not { } header
                || header.Format != Format || header.Tenant != tenant.Value || header.Table != table || header.Prefix != keyPrefix
                || header.Shape != Shape<TEntity>.Value || header.Position is not { Length: ChangeLog.Lanes } numbers || header.Rows < 0)
            {
                return Refuse(tenant, table, keyPrefix, "its header does not describe this projection");
            }

            var info = (JsonTypeInfo<TEntity>)RowJson.GetTypeInfo(typeof(TEntity));
            long rows = 0;
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (JsonSerializer.Deserialize(line, info) is not { } entity
                    || entity.PartitionKey != tenant.Value || !entity.RowKey.StartsWith(keyPrefix, StringComparison.Ordinal))
                {
                    return Refuse(tenant, table, keyPrefix, $"row {rows + 1} is not a row of this projection");
                }

                add(entity);
                rows++;
            }

            if (rows != header.Rows)
            {
                return Refuse(tenant, table, keyPrefix, $"it holds {rows} rows of the {header.Rows} its header counts");
            }

            Interlocked.Increment(ref _loaded);
            return new LogPosition(numbers);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException or RequestFailedException or DecoderFallbackException or IOException)
        {
            return Refuse(tenant, table, keyPrefix, ex.GetType().Name + ": " + ex.Message);
        }
    }

    /// <summary>
    /// Saves <paramref name="rows"/> as reflecting <paramref name="position"/> once this returns (a block blob is
    /// committed whole at the end, so a crash mid-write leaves the previous snapshot). Each row must be at least as
    /// new as the position: the projection's own rows after a load or catch-up are.
    /// </summary>
    public async Task SaveAsync<TEntity>(
        TenantId tenant, string table, string keyPrefix, LogPosition position, IReadOnlyCollection<TEntity> rows, CancellationToken cancellationToken)
        where TEntity : class, ITableEntity
    {
        var header = new Header(Format, tenant.Value, table, keyPrefix, Shape<TEntity>.Value, position.ToArray(), rows.Count, DateTimeOffset.UtcNow);
        var info = (JsonTypeInfo<TEntity>)RowJson.GetTypeInfo(typeof(TEntity));
        var blob = BlobFor(tenant, table, keyPrefix);
        await using (var output = await blob.OpenWriteAsync(overwrite: true, cancellationToken: cancellationToken))
        await using (var gzip = new GZipStream(output, CompressionLevel.Fastest))
        {
            var buffer = new ArrayBufferWriter<byte>(4096);
            await using var writer = new Utf8JsonWriter(buffer);
            JsonSerializer.Serialize(writer, header);
            foreach (var row in rows)
            {
                // A page of rows per write: the stream below is the blob's upload, written asynchronously.
                if (buffer.WrittenCount > 64 * 1024)
                {
                    await gzip.WriteAsync(buffer.WrittenMemory, cancellationToken);
                    buffer.ResetWrittenCount();
                }

                buffer.Write("\n"u8);
                writer.Reset();
                JsonSerializer.Serialize(writer, row, info);
            }

            await gzip.WriteAsync(buffer.WrittenMemory, cancellationToken);
        }

        Interlocked.Increment(ref _saved);
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
            catch (Exception ex) when (ex is RequestFailedException or IOException or OperationCanceledException)
            {
                logger.LogWarning("The {Table} {Prefix} snapshot of tenant {Tenant} was not saved: {Reason}", table, keyPrefix, tenant.Value, ex.Message);
            }
        });

    private LogPosition? Refuse(TenantId tenant, string table, string keyPrefix, string why)
    {
        Interlocked.Increment(ref _refused);
        logger.LogWarning("The {Table} {Prefix} snapshot of tenant {Tenant} is not used, the tenant is scanned instead: {Reason}", table, keyPrefix, tenant.Value, why);
        return null;
    }

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

        public override void Write(Utf8JsonWriter writer, ETag value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
    }
}
