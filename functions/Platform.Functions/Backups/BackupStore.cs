using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Platform.Functions.Auth;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;

namespace Platform.Functions.Backups;

/// <summary>
/// One backup of a tenant in the <c>backups</c> table: partition = tenant, row <c>b:{inverted id}</c> (ids are ULIDs,
/// inverted so the partition reads newest first). The row is the backup's index entry: what the list shows, its
/// wrapped key, and the outcome of the last verification. Its files are in the <c>backups</c> container.
/// </summary>
public sealed class BackupEntity : ITableEntity
{
    public const string KeyPrefix = "b:";

    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Id { get; set; } = "";

    /// <summary><c>manual</c>, <c>scheduled</c> or <c>pre-restore</c>.</summary>
    public string Kind { get; set; } = BackupParameters.Manual;

    public string Status { get; set; } = Running;
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public int Tables { get; set; }
    public long Entities { get; set; }
    public long Bytes { get; set; }

    /// <summary>SHA-256 of the stored manifest, which holds every part's SHA-256: one digest for the whole backup.</summary>
    public string? Sha256 { get; set; }

    public bool Verified { get; set; }
    public DateTimeOffset? VerifiedAt { get; set; }

    /// <summary>The part the last verification found damaged, and why.</summary>
    public string? FailedPart { get; set; }

    public string? Error { get; set; }

    /// <summary>The backup's own key, sealed under the key-wrapping key derived from the data-encryption key.</summary>
    public string WrappedKey { get; set; } = "";

    /// <summary>The parts as the manifest lists them (JSON), for <c>GET /api/v1/backups/{id}</c>.</summary>
    public string? Parts { get; set; }

    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    public static string KeyFor(string id) =>
        KeyPrefix + new string([.. id.Select(c => Alphabet.IndexOf(c, StringComparison.Ordinal) is var i and >= 0 ? Alphabet[Alphabet.Length - 1 - i] : c)]);

    public IReadOnlyList<BackupPart> PartList() =>
        Parts is null ? [] : JsonSerializer.Deserialize<List<BackupPart>>(Parts, BackupManifest.Json) ?? [];
}

/// <summary>One file of a backup: a tenant table's partition, a container's blobs of the tenant, or the tenant's own row.</summary>
/// <param name="Kind"><c>table</c>, <c>blobs</c> or <c>tenant</c>.</param>
/// <param name="Count">Rows (or blobs) in the part.</param>
public sealed record BackupPart(string Name, string Kind, string File, long Count, long Bytes, string Sha256);

/// <summary>What a backup holds; stored sealed as the backup's <c>manifest</c> file.</summary>
public sealed record BackupManifest(int FormatVersion, int SchemaVersion, string TenantId, string BackupId, DateTimeOffset CreatedAt, IReadOnlyList<BackupPart> Parts)
{
    public const string File = "manifest";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
}

/// <summary>
/// The backups' index rows and files. Files are under <c>{tenant}/{backupId}/</c> in the <c>backups</c> container,
/// which no route serves: backups leave storage only through verify and restore, as the tenant.
/// </summary>
public sealed class BackupStore(StorageAccount storage, KeyMaterial keys)
{
    public const string TableName = "backups";
    public const string ContainerName = "backups";

    /// <summary>The label of the key-wrapping key (HKDF of the data-encryption key): changing it orphans every backup.</summary>
    private const string WrapPurpose = "platform-backup-key-wrap-v1";

    public TenantPartition Rows(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    public BlobContainerClient Container => storage.Container(ContainerName);

    public BlobClient File(TenantId tenant, string backupId, string file) => Container.GetBlobClient($"{tenant.Value}/{backupId}/{file}");

    public async Task<BackupEntity?> GetAsync(TenantId tenant, string id, CancellationToken cancellationToken) =>
        JobIds.IsWellFormed(id) ? await Rows(tenant).GetAsync<BackupEntity>(BackupEntity.KeyFor(id), cancellationToken) : null;

    /// <summary>The tenant's backups, newest first (bounded: retention keeps a few dozen).</summary>
    public async Task<List<BackupEntity>> ListAsync(TenantId tenant, int max, CancellationToken cancellationToken)
    {
        var list = new List<BackupEntity>();
        await foreach (var row in Rows(tenant).QueryAsync<BackupEntity>(BackupEntity.KeyPrefix, cancellationToken: cancellationToken))
        {
            list.Add(row);
            if (list.Count >= max)
            {
                break;
            }
        }

        return list;
    }

    /// <summary>A new random key for one backup, and that key sealed for its row (bound to the tenant and backup).</summary>
    public (byte[] Key, string Wrapped) NewKey(TenantId tenant, string backupId)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        return (key, Wrap(tenant, backupId, key));
    }

    /// <summary>
    /// The backup's key; a wrapped key of another tenant or backup, or under a data-encryption key this deployment
    /// does not hold (current or previous), does not open.
    /// </summary>
    public byte[] Unwrap(TenantId tenant, string backupId, string wrapped) =>
        Open(tenant, backupId, wrapped).Key;

    /// <summary>
    /// The backup's key sealed under the current data-encryption key when it is sealed under a previous one (a
    /// rotation since the backup was made), else null: what the retention sweep writes back, so that the previous key
    /// can be retired once every backup has been swept.
    /// </summary>
    public string? RewrappedKey(TenantId tenant, string backupId, string wrapped)
    {
        var (key, current) = Open(tenant, backupId, wrapped);
        return current ? null : Wrap(tenant, backupId, key);
    }

    private string Wrap(TenantId tenant, string backupId, byte[] key)
    {
        var sealedKey = new byte[BackupFormat.NonceBytes + key.Length + BackupFormat.TagBytes];
        var nonce = sealedKey.AsSpan(0, BackupFormat.NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(keys.DeriveKey(WrapPurpose), BackupFormat.TagBytes);
        aes.Encrypt(nonce, key, sealedKey.AsSpan(BackupFormat.NonceBytes, key.Length), sealedKey.AsSpan(BackupFormat.NonceBytes + key.Length), WrapContext(tenant, backupId));
        return Convert.ToBase64String(sealedKey);
    }

    private (byte[] Key, bool Current) Open(TenantId tenant, string backupId, string wrapped)
    {
        byte[] sealedKey;
        try
        {
            sealedKey = Convert.FromBase64String(wrapped);
        }
        catch (FormatException)
        {
            throw new BackupIntegrityException("key", "the backup's key is damaged");
        }

        if (sealedKey.Length != BackupFormat.NonceBytes + 32 + BackupFormat.TagBytes)
        {
            throw new BackupIntegrityException("key", "the backup's key is damaged");
        }

        var key = new byte[32];
        var current = true;
        foreach (var wrapping in keys.DerivePreviousKeys(WrapPurpose).Prepend(keys.DeriveKey(WrapPurpose)))
        {
            using var aes = new AesGcm(wrapping, BackupFormat.TagBytes);
            try
            {
                aes.Decrypt(sealedKey.AsSpan(0, BackupFormat.NonceBytes), sealedKey.AsSpan(BackupFormat.NonceBytes, 32), sealedKey.AsSpan(BackupFormat.NonceBytes + 32), key,
                    WrapContext(tenant, backupId));
                return (key, current);
            }
            catch (AuthenticationTagMismatchException)
            {
                current = false;
            }
        }

        throw new BackupIntegrityException("key", "the backup's key does not open with this deployment's data-encryption key (nor a previous one it was given)");
    }

    /// <summary>Deletes the backup's files, then its row; true when there was a row.</summary>
    public async Task<bool> DeleteAsync(TenantId tenant, string backupId, CancellationToken cancellationToken)
    {
        await foreach (var blob in Container.GetBlobsAsync(BlobTraits.None, BlobStates.None, $"{tenant.Value}/{backupId}/", cancellationToken))
        {
            await Container.DeleteBlobIfExistsAsync(blob.Name, cancellationToken: cancellationToken);
        }

        try
        {
            await Rows(tenant).DeleteAsync(BackupEntity.KeyFor(backupId), cancellationToken: cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }

    private static byte[] WrapContext(TenantId tenant, string backupId) => Encoding.UTF8.GetBytes($"platform-backup-key\n{tenant.Value}\n{backupId}");
}
