using System.Text;
using Platform.Functions.Jobs.Files;

namespace Platform.Tests.Jobs.Files;

/// <summary>Reading and writing whole (small) files in tests.</summary>
internal static class TabularFiles
{
    public static async Task<List<TabularRow>> ReadAsync(Stream stream, TabularFormat format, TabularLimits? limits = null)
    {
        var rows = new List<TabularRow>();
        await foreach (var row in TabularReader.ReadAsync(stream, format, limits ?? TabularLimits.Default, TestContext.Current.CancellationToken))
        {
            rows.Add(row);
        }

        return rows;
    }

    public static Task<List<TabularRow>> ReadAsync(byte[] file, TabularFormat format, TabularLimits? limits = null) =>
        ReadAsync(new MemoryStream(file), format, limits);

    public static Task<List<TabularRow>> ReadCsvAsync(string text, TabularLimits? limits = null) =>
        ReadAsync(Encoding.UTF8.GetBytes(text), TabularFormat.Csv, limits);

    public static Task<List<TabularRow>> ReadJsonAsync(string text, TabularLimits? limits = null) =>
        ReadAsync(Encoding.UTF8.GetBytes(text), TabularFormat.Json, limits);

    public static Task<TabularFileException> RejectsAsync(byte[] file, TabularFormat format, TabularLimits? limits = null) =>
        Assert.ThrowsAsync<TabularFileException>(() => ReadAsync(file, format, limits));

    public static Task<TabularFileException> RejectsCsvAsync(string text, TabularLimits? limits = null) =>
        RejectsAsync(Encoding.UTF8.GetBytes(text), TabularFormat.Csv, limits);

    public static Task<TabularFileException> RejectsJsonAsync(string text, TabularLimits? limits = null) =>
        RejectsAsync(Encoding.UTF8.GetBytes(text), TabularFormat.Json, limits);

    public static async Task<byte[]> WriteAsync(TabularFormat format, IReadOnlyList<string> columns, IEnumerable<IReadOnlyList<string?>> rows)
    {
        var output = new WriteOnlyStream();
        await using (var writer = TabularWriter.Create(output, format, columns))
        {
            foreach (var row in rows)
            {
                await writer.WriteRowAsync(row, TestContext.Current.CancellationToken);
            }
        }

        return output.ToArray();
    }

    /// <summary>Like a blob's write stream: no seeking, no reading, and no synchronous writes.</summary>
    public sealed class WriteOnlyStream : Stream
    {
        private readonly MemoryStream _inner = new();

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public byte[] ToArray() => _inner.ToArray();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            _inner.WriteAsync(buffer, cancellationToken);

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Write(byte[] buffer, int offset, int count) => throw new InvalidOperationException("synchronous write");

        public override void Flush() => throw new InvalidOperationException("synchronous flush");

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>A read-only stream that cannot seek (an upload body), over bytes.</summary>
    public sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>A prefix followed by one repeated byte up to a total length, generated as it is read; counts what
    /// was read so a test can show how far a reader got before it stopped.</summary>
    public sealed class GeneratedStream(byte[] prefix, byte fill, long length) : Stream
    {
        public long BytesRead { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var count = (int)Math.Min(buffer.Length, length - BytesRead);
            var fromPrefix = (int)Math.Clamp(prefix.Length - BytesRead, 0, count);
            prefix.AsSpan((int)Math.Min(BytesRead, prefix.Length), fromPrefix).CopyTo(buffer);
            buffer[fromPrefix..count].Fill(fill);

            BytesRead += count;
            return count;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
