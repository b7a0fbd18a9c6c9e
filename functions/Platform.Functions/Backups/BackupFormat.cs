using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Platform.Functions.Backups;

/// <summary>
/// A backup's stored bytes. Every file of a backup (its manifest and each part) is a sequence of sealed segments:
/// <c>PBK1</c>, then per segment <c>[u32 length, top bit set on the last][12-byte nonce][ciphertext][16-byte tag]</c>, AES-256-GCM under the
/// backup's own key. Each segment's associated data names the tenant, the backup, the file, the segment's number and
/// whether it is the last, so a segment moved to another place, file, backup or tenant fails to open, and a file cut
/// after any segment lacks its last one and is reported truncated. A part's plaintext is gzip-compressed NDJSON.
/// </summary>
public static class BackupFormat
{
    public static ReadOnlySpan<byte> Magic => "PBK1"u8;

    /// <summary>Plaintext bytes per segment: what a reader holds in memory at once.</summary>
    public const int SegmentBytes = 1 << 20;

    public const int NonceBytes = 12;
    public const int TagBytes = 16;

    /// <summary>The manifest's layout version; a reader refuses a newer one.</summary>
    public const int FormatVersion = 1;

    /// <summary>The version of the rows' shape that the parts hold; a restore of another version would need mapping.</summary>
    public const int SchemaVersion = 1;

    internal const uint LastFlag = 0x8000_0000;

    internal static byte[] AssociatedData(string context, long segment, bool last) =>
        Encoding.UTF8.GetBytes($"{context}\n{segment}\n{(last ? 1 : 0)}");

    /// <summary>The context that binds a file's segments to where they belong.</summary>
    public static string Context(string tenantId, string backupId, string file) => $"platform-backup\n{tenantId}\n{backupId}\n{file}";
}

/// <summary>Why a backup file cannot be trusted: which file, and what is wrong with it.</summary>
public sealed class BackupIntegrityException(string file, string reason) : Exception($"{file}: {reason}")
{
    public string File { get; } = file;

    public string Reason { get; } = reason;
}

/// <summary>
/// Writes a sealed file: plaintext written to it is cut into segments, each encrypted and authenticated as it fills.
/// Counts the stored bytes and hashes them (SHA-256), which the manifest records.
/// </summary>
public sealed class SealingStream(Stream inner, byte[] key, string context) : Stream
{
    private readonly AesGcm _aes = new(key, BackupFormat.TagBytes);
    private readonly byte[] _buffer = new byte[BackupFormat.SegmentBytes];
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private int _filled;
    private long _segment;
    private bool _started;
    private bool _finished;

    public long StoredBytes { get; private set; }

    /// <summary>The SHA-256 of the stored bytes, lower-case hex; known once the stream is finished.</summary>
    public string? Sha256 { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (buffer.Length > 0)
        {
            var take = Math.Min(buffer.Length, _buffer.Length - _filled);
            buffer[..take].CopyTo(_buffer.AsMemory(_filled));
            _filled += take;
            buffer = buffer[take..];
            if (_filled == _buffer.Length)
            {
                await SealAsync(last: false, cancellationToken);
            }
        }
    }

    /// <summary>Seals the last segment (possibly empty): a file without it reads as truncated.</summary>
    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        if (_finished)
        {
            return;
        }

        await SealAsync(last: true, cancellationToken);
        _finished = true;
        await inner.FlushAsync(cancellationToken);
        Sha256 = Convert.ToHexStringLower(_hash.GetHashAndReset());
    }

    private async Task SealAsync(bool last, CancellationToken cancellationToken)
    {
        if (!_started)
        {
            await EmitAsync(BackupFormat.Magic.ToArray(), cancellationToken);
            _started = true;
        }

        var header = new byte[4 + BackupFormat.NonceBytes];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)_filled | (last ? BackupFormat.LastFlag : 0));
        RandomNumberGenerator.Fill(header.AsSpan(4));
        var cipher = new byte[_filled + BackupFormat.TagBytes];
        _aes.Encrypt(header.AsSpan(4), _buffer.AsSpan(0, _filled), cipher.AsSpan(0, _filled), cipher.AsSpan(_filled),
            BackupFormat.AssociatedData(context, _segment, last));
        await EmitAsync(header, cancellationToken);
        await EmitAsync(cipher, cancellationToken);
        _segment++;
        _filled = 0;
    }

    private async Task EmitAsync(byte[] bytes, CancellationToken cancellationToken)
    {
        await inner.WriteAsync(bytes, cancellationToken);
        _hash.AppendData(bytes);
        StoredBytes += bytes.Length;
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _aes.Dispose();
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// Reads a sealed file back: each segment is checked before its plaintext is handed on, so a flipped byte, a swapped
/// segment or a cut file is a <see cref="BackupIntegrityException"/> naming the file, never silently wrong rows. Hashes
/// the stored bytes as it goes, for the manifest's check.
/// </summary>
public sealed class OpeningStream(Stream inner, byte[] key, string context, string file) : Stream
{
    private readonly AesGcm _aes = new(key, BackupFormat.TagBytes);
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private byte[] _plain = [];
    private int _offset;
    private int _length;
    private long _segment;
    private bool _sawLast;
    private bool _started;

    public long StoredBytes { get; private set; }

    /// <summary>The SHA-256 of the stored bytes, once the whole file was read.</summary>
    public string? Sha256 { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_offset == _length)
        {
            if (_sawLast)
            {
                return 0;
            }

            await NextSegmentAsync(cancellationToken);
        }

        var take = Math.Min(buffer.Length, _length - _offset);
        _plain.AsMemory(_offset, take).CopyTo(buffer);
        _offset += take;
        return take;
    }

    /// <summary>Reads to the end (a reader that stopped early still needs every segment checked and hashed).</summary>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        var sink = new byte[81920];
        while (await ReadAsync(sink, cancellationToken) > 0)
        {
        }
    }

    private async Task NextSegmentAsync(CancellationToken cancellationToken)
    {
        if (!_started)
        {
            var magic = new byte[4];
            if (!await FillAsync(magic, cancellationToken) || !magic.AsSpan().SequenceEqual(BackupFormat.Magic))
            {
                throw new BackupIntegrityException(file, "not a backup file (bad header)");
            }

            _started = true;
        }

        var header = new byte[4 + BackupFormat.NonceBytes];
        if (!await FillAsync(header, cancellationToken))
        {
            throw new BackupIntegrityException(file, $"truncated: the file ends after segment {_segment} without its last segment");
        }

        var word = BinaryPrimitives.ReadUInt32BigEndian(header);
        var last = (word & BackupFormat.LastFlag) != 0;
        var length = word & ~BackupFormat.LastFlag;
        if (length > BackupFormat.SegmentBytes)
        {
            throw new BackupIntegrityException(file, $"segment {_segment} is damaged (length {length})");
        }

        var cipher = new byte[length + BackupFormat.TagBytes];
        if (!await FillAsync(cipher, cancellationToken))
        {
            throw new BackupIntegrityException(file, $"truncated inside segment {_segment}");
        }

        if (_plain.Length < length)
        {
            _plain = new byte[BackupFormat.SegmentBytes];
        }

        try
        {
            _aes.Decrypt(header.AsSpan(4), cipher.AsSpan(0, (int)length), cipher.AsSpan((int)length), _plain.AsSpan(0, (int)length),
                BackupFormat.AssociatedData(context, _segment, last));
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new BackupIntegrityException(file, $"segment {_segment} failed authentication (altered, moved from another file, backup or tenant, or sealed with another key)");
        }

        if (last)
        {
            _sawLast = true;
            if (await inner.ReadAsync(new byte[1], cancellationToken) > 0)
            {
                throw new BackupIntegrityException(file, "bytes follow the last segment");
            }

            Sha256 = Convert.ToHexStringLower(_hash.GetHashAndReset());
        }

        _segment++;
        _offset = 0;
        _length = (int)length;
    }

    private async Task<bool> FillAsync(byte[] target, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < target.Length)
        {
            var n = await inner.ReadAsync(target.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                return false;
            }

            _hash.AppendData(target, read, n);
            StoredBytes += n;
            read += n;
        }

        return true;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _aes.Dispose();
            _hash.Dispose();
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
