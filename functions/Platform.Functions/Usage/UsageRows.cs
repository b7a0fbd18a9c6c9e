using System.Globalization;
using Azure.Data.Tables;
using HdrHistogram;
using HdrHistogram.Utilities;

namespace Platform.Functions.Usage;

/// <summary>The requests of one caller on one endpoint in one period, as stored: counts by status class and latency (µs).</summary>
public sealed class UsageSlice(string caller, string endpoint)
{
    public string Caller { get; } = caller;

    public string Endpoint { get; } = endpoint;

    /// <summary>2xx, 3xx, 4xx, 5xx.</summary>
    public long[] Counts { get; } = new long[4];

    public HistogramBase Latency { get; private set; } = UsageHistograms.New();

    public long Requests => Counts[0] + Counts[1] + Counts[2] + Counts[3];

    /// <summary>4xx and 5xx answers.</summary>
    public long Errors => Counts[2] + Counts[3];

    public void Add(UsageSlice other)
    {
        for (var i = 0; i < Counts.Length; i++)
        {
            Counts[i] += other.Counts[i];
        }

        Latency.Add(other.Latency);
    }

    internal void Add(UsageCounter counter)
    {
        for (var i = 0; i < Counts.Length; i++)
        {
            Counts[i] += counter.Count(i);
        }

        Latency.Add(counter.Latency);
    }

    internal static UsageSlice Read(BinaryReader reader)
    {
        var slice = new UsageSlice(reader.ReadString(), reader.ReadString());
        for (var i = 0; i < slice.Counts.Length; i++)
        {
            slice.Counts[i] = reader.Read7BitEncodedInt64();
        }

        var encoded = reader.ReadBytes(reader.Read7BitEncodedInt());
        slice.Latency = HistogramEncoding.DecodeFromCompressedByteBuffer(ByteBuffer.Allocate(encoded), 0);
        return slice;
    }

    internal void Write(BinaryWriter writer)
    {
        writer.Write(Caller);
        writer.Write(Endpoint);
        foreach (var count in Counts)
        {
            writer.Write7BitEncodedInt64(count);
        }

        // HdrHistogram's own compressed form (deflated V2 encoding): a few dozen bytes for a typical minute, and
        // mergeable across minutes and instances without loss at the histogram's precision.
        var buffer = ByteBuffer.Allocate(Latency.GetNeededByteBufferCapacity() + 64);
        var length = HistogramEncoding.EncodeIntoCompressedByteBuffer(Latency, buffer);
        writer.Write7BitEncodedInt(length);
        buffer.Position = 0;
        for (var i = 0; i < length; i++)
        {
            writer.Write(buffer.Get());
        }
    }
}

/// <summary>
/// The <c>usage</c> table: one partition per tenant; each row holds the slices of one period packed into binary
/// properties <c>D0</c>..<c>D11</c> (each under Table storage's 64 KiB per property, together under its 1 MiB per row).
/// Row keys sort by time:
/// <list type="bullet">
/// <item><c>m:{yyyyMMddHHmm}:{instance}:{seq}:{part}</c>: what one instance gathered for one minute in one flush;</item>
/// <item><c>h:{yyyyMMddHH}:{part}</c>: an hour, merged from its minute rows by <see cref="UsageRollup"/>.</item>
/// </list>
/// </summary>
public static class UsageRows
{
    public const string MinutePrefix = "m:";
    public const string HourPrefix = "h:";
    public const string MinuteFormat = "yyyyMMddHHmm";
    public const string HourFormat = "yyyyMMddHH";

    private const byte Version = 1;
    private const int ChunkBytes = 60_000;
    private const int MaxChunks = 15;
    // Azurite (unlike the service, which counts binary by its length) measures an entity as sent, base64 and all:
    // 700 KB packed is 933 KB on the wire, under 1 MiB for both.
    private const int MaxRowBytes = 700_000;

    public static string MinuteKey(DateTimeOffset minute) => MinutePrefix + minute.UtcDateTime.ToString(MinuteFormat, CultureInfo.InvariantCulture);

    public static string HourKey(DateTimeOffset hour) => HourPrefix + hour.UtcDateTime.ToString(HourFormat, CultureInfo.InvariantCulture);

    /// <summary>The start of the period a row covers (its minute or hour), or null for a key of neither form.</summary>
    public static DateTimeOffset? PeriodOf(string rowKey)
    {
        var (format, length) = rowKey.StartsWith(MinutePrefix, StringComparison.Ordinal) ? (MinuteFormat, 12)
            : rowKey.StartsWith(HourPrefix, StringComparison.Ordinal) ? (HourFormat, 10)
            : (null, 0);
        return format is not null && rowKey.Length >= 2 + length &&
               DateTime.TryParseExact(rowKey.AsSpan(2, length), format, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var at)
            ? new DateTimeOffset(at, TimeSpan.Zero)
            : null;
    }

    /// <summary>
    /// The slices packed into as few rows as fit, each row's key made by <paramref name="keyOf"/> from its part number.
    /// </summary>
    public static List<TableEntity> Pack(IEnumerable<UsageSlice> slices, Func<int, string> keyOf)
    {
        var rows = new List<TableEntity>();
        using var row = new MemoryStream();
        using var slice = new MemoryStream();
        long rowRequests = 0, rowErrors = 0;
        var count = 0;

        void Finish()
        {
            var entity = new TableEntity("", keyOf(rows.Count)) { ["Requests"] = rowRequests, ["Errors"] = rowErrors, ["Slices"] = count };
            var bytes = new byte[row.Length + 1];
            bytes[0] = Version;
            row.Position = 0;
            row.ReadExactly(bytes, 1, (int)row.Length);
            for (var i = 0; i * ChunkBytes < bytes.Length; i++)
            {
                entity["D" + i.ToString(CultureInfo.InvariantCulture)] = bytes[(i * ChunkBytes)..Math.Min(bytes.Length, (i + 1) * ChunkBytes)];
            }

            rows.Add(entity);
            row.SetLength(0);
            rowRequests = rowErrors = 0;
            count = 0;
        }

        foreach (var s in slices)
        {
            slice.SetLength(0);
            using (var writer = new BinaryWriter(slice, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                s.Write(writer);
            }

            if (row.Length + slice.Length + 1 > MaxRowBytes && count > 0)
            {
                Finish();
            }

            slice.Position = 0;
            slice.CopyTo(row);
            count++;
            rowRequests += s.Requests;
            rowErrors += s.Errors;
        }

        if (count > 0)
        {
            Finish();
        }

        return rows;
    }

    /// <summary>
    /// The most packed bytes one entity-group transaction carries: Table storage takes at most 4 MiB a transaction, and
    /// binary properties travel base64-encoded (4/3 larger).
    /// </summary>
    public const int MaxTransactionBytes = 2_500_000;

    /// <summary>The packed bytes a row carries.</summary>
    public static long SizeOf(TableEntity row) => row.Sum(p => p.Value is byte[] bytes ? bytes.Length : p.Value is BinaryData data ? data.ToMemory().Length : 0);

    /// <summary>The slices of one stored row.</summary>
    public static IEnumerable<UsageSlice> Unpack(TableEntity row)
    {
        using var bytes = new MemoryStream();
        for (var i = 0; i < MaxChunks && row.GetBinary("D" + i.ToString(CultureInfo.InvariantCulture)) is { } chunk; i++)
        {
            bytes.Write(chunk);
        }

        if (bytes.Length == 0)
        {
            yield break;
        }

        bytes.Position = 0;
        if (bytes.ReadByte() != Version)
        {
            throw new InvalidDataException($"Usage row {row.RowKey} has an unknown format.");
        }

        using var reader = new BinaryReader(bytes, System.Text.Encoding.UTF8);
        while (bytes.Position < bytes.Length)
        {
            yield return UsageSlice.Read(reader);
        }
    }
}
