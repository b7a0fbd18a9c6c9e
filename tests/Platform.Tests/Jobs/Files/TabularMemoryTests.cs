using System.Text;
using Platform.Functions.Jobs.Files;

namespace Platform.Tests.Jobs.Files;

// Alone, so that no other test's allocations land in the process-wide heap being sampled.
[CollectionDefinition(nameof(TabularMemoryTests), DisableParallelization = true)]
public sealed class TabularMemoryCollection;

[Collection(nameof(TabularMemoryTests))]
public sealed class TabularMemoryTests(ITestOutputHelper output)
{
    // Far below what holding either file would take (a 50 MB CSV is 100 MB as .NET strings).
    private const long MaxGrowth = 32L * 1024 * 1024;

    // A sample is a full collection of the whole test process's heap, which costs more the more the other tests
    // left alive: a few dozen samples show a heap that grows with the rows as well as a thousand would.
    private const int RowsPerSample = 50_000;

    [Fact]
    public async Task Reading_a_50_MB_csv_keeps_the_live_heap_bounded()
    {
        var csv = new CsvGenerator(50L * 1024 * 1024);
        var heap = new HeapSampler();

        long rows = 0;
        await foreach (var row in TabularReader.ReadAsync(csv, TabularFormat.Csv, TabularLimits.Default, TestContext.Current.CancellationToken))
        {
            Assert.Equal(row.Number.ToString(System.Globalization.CultureInfo.InvariantCulture), row.Values["id"]);
            if (++rows % RowsPerSample == 0)
            {
                heap.Sample();
            }
        }

        Assert.True(csv.BytesRead >= 50L * 1024 * 1024);
        output.WriteLine($"{rows} rows, {csv.BytesRead / (1024 * 1024)} MB read, {heap}");
        Assert.InRange(heap.PeakGrowth, 0, MaxGrowth);
    }

    [Fact]
    public async Task Writing_200_000_xlsx_rows_and_reading_them_back_keeps_the_live_heap_bounded()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tabular-memory-{Guid.NewGuid():N}.xlsx");
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 4096, FileOptions.DeleteOnClose);
        var counting = new CountingStream(file);
        string[] columns = ["sku", "name", "description", "qty", "location"];

        var writing = new HeapSampler();
        await using (var writer = TabularWriter.Create(counting, TabularFormat.Xlsx, columns))
        {
            for (var i = 0; i < 200_000; i++)
            {
                await writer.WriteRowAsync([$"SKU-{i:D7}", $"Item {i}", "A fairly ordinary description, with a comma", $"{i % 97}", "Warehouse 1 / Aisle 4"], TestContext.Current.CancellationToken);
                if (i % RowsPerSample == 0)
                {
                    writing.Sample();
                }
            }
        }

        output.WriteLine($"writer: {counting.BytesWritten / 1024} KB written, {writing}");
        Assert.InRange(writing.PeakGrowth, 0, MaxGrowth);

        file.Position = 0;
        var reading = new HeapSampler();
        long rows = 0;
        await foreach (var row in TabularReader.ReadAsync(file, TabularFormat.Xlsx, TabularLimits.Default, TestContext.Current.CancellationToken))
        {
            if (++rows % RowsPerSample == 0)
            {
                reading.Sample();
            }
        }

        output.WriteLine($"reader: {rows} rows, {reading}");
        Assert.Equal(200_000, rows);
        Assert.InRange(reading.PeakGrowth, 0, MaxGrowth);
    }

    /// <summary>The live managed heap (after a full collection) at each sample, against where it started.</summary>
    private sealed class HeapSampler
    {
        private readonly long _baseline = GC.GetTotalMemory(forceFullCollection: true);
        private long _peak;

        public long PeakGrowth => Math.Max(0, _peak - _baseline);

        public void Sample() => _peak = Math.Max(_peak, GC.GetTotalMemory(forceFullCollection: true));

        public override string ToString() =>
            $"live heap {_baseline / (1024 * 1024)} MB at start, peak {_peak / (1024 * 1024)} MB (+{PeakGrowth / 1024} KB)";
    }

    /// <summary>CSV rows generated as they are read, with quoting and a multi-byte character, never held.</summary>
    private sealed class CsvGenerator(long length) : Stream
    {
        private byte[] _line = Encoding.UTF8.GetBytes("id,name,note\r\n");
        private int _lineAt;
        private long _row = 1;

        public long BytesRead { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var written = 0;
            while (written < buffer.Length && BytesRead < length)
            {
                if (_lineAt == _line.Length)
                {
                    _row++;
                    _line = Encoding.UTF8.GetBytes($"{_row},Name {_row},\"Größe {_row % 100}, \"\"boxed\"\"\"\r\n");
                    _lineAt = 0;
                }

                var take = Math.Min(buffer.Length - written, _line.Length - _lineAt);
                _line.AsSpan(_lineAt, take).CopyTo(buffer[written..]);
                _lineAt += take;
                written += take;
                BytesRead += take;
            }

            // Finish the row in progress so the file ends on a whole row.
            while (written < buffer.Length && _lineAt < _line.Length)
            {
                buffer[written++] = _line[_lineAt++];
                BytesRead++;
            }

            return written;
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

    /// <summary>Counts what passes through to the inner stream; cannot seek, like a blob upload.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long BytesWritten { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            BytesWritten += count;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken);
            BytesWritten += buffer.Length;
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
