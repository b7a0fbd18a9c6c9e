using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Events;

/// <summary>
/// Events waiting to be relayed, kept in the very partition of the change they describe: a change and its events
/// commit in one entity-group transaction (<see cref="EventPublisher.CommitAsync"/>), so a crash can lose neither
/// without the other. One row holds the events of one transaction, keyed by the first event's id (a ULID), so a
/// partition's outbox reads in the order the events happened. <see cref="EventRelay"/> hands them to the subscribers
/// and deletes the row.
/// </summary>
/// <remarks>
/// A row holds its events as JSON compressed with zlib, in binary parts (<c>Events0</c>, <c>Events1</c>, ...). The
/// events of one transaction repeat themselves (the same type, actor, time and target type; 48 items of an import
/// differ in their ids, SKU and name), so a row of 48 <c>inventory.item.created</c> events takes about 2 KB instead of
/// about 18 KB of JSON text, every quote escaped, that the table service had to parse and keep until the relay deleted
/// it (docs/benchmarks.md, jobs figure). Rows written as JSON text before (under <see cref="TextKeyPrefix"/>) are
/// still read and relayed; packed rows have a prefix of their own so that an instance of the earlier version, still
/// running during a deployment, never takes one for a row it cannot read (it would relay nothing and delete it).
/// </remarks>
public static class EventOutbox
{
    /// <summary>Rows written now: packed events.</summary>
    public const string KeyPrefix = "~outbox~";

    /// <summary>Rows of an earlier version (events as JSON text in <c>Parts</c> string parts): read, never written.</summary>
    public const string TextKeyPrefix = "~outbox:";

    /// <summary>
    /// The lowest outbox key: every outbox row's key is at least this and less than <see cref="KeyEnd"/> (text rows sort
    /// first), so rows before it in a partition are not the outbox's.
    /// </summary>
    public const string KeyStart = TextKeyPrefix;

    private const string KeyEnd = KeyPrefix + "\uffff";

    /// <summary>
    /// Bytes per binary part. The SDK writes a binary property as a base64 JSON string and sizes its buffer for the
    /// worst case first (several bytes a character): parts this small keep that buffer off the large object heap.
    /// </summary>
    private const int BytesPerPart = 4_096;

    /// <summary>Parts one row may use: a row holds at most 1 MiB (and 252 properties).</summary>
    private const int MaxParts = 225;

    /// <summary>
    /// The most a row's events may unpack to. The app's events are small (a bulk import's 48 come to about 10 KB); this
    /// only stops a damaged row from inflating without end.
    /// </summary>
    internal const int MaxUnpackedBytes = 16 * 1024 * 1024;

    public static string KeyFor(string firstEventId) => KeyPrefix + firstEventId;

    /// <summary>Whether a row key is an outbox row's (packed or text).</summary>
    public static bool IsOutboxKey(string rowKey) =>
        rowKey.StartsWith(KeyPrefix, StringComparison.Ordinal) || rowKey.StartsWith(TextKeyPrefix, StringComparison.Ordinal);

    /// <summary>The outbox row of one transaction's events.</summary>
    public static TableEntity Row(IReadOnlyList<PublishedEvent> events)
    {
        var packed = new MemoryStream();
        using (var zlib = new ZLibStream(packed, CompressionLevel.Fastest, leaveOpen: true))
        {
            JsonSerializer.Serialize(zlib, events, JsonSerializerOptions.Web);
        }

        var length = (int)packed.Length;
        var parts = (length + BytesPerPart - 1) / BytesPerPart;
        if (parts > MaxParts)
        {
            throw new InvalidOperationException($"The events of one transaction take {length} bytes packed; commit them in smaller batches.");
        }

        var bytes = packed.GetBuffer();
        var row = new TableEntity { RowKey = KeyFor(events[0].Id), ["Count"] = events.Count, ["Packed"] = parts };
        for (var part = 0; part < parts; part++)
        {
            row[$"Events{part}"] = bytes.AsSpan(part * BytesPerPart, Math.Min(BytesPerPart, length - part * BytesPerPart)).ToArray();
        }

        return row;
    }

    /// <summary>The events a row holds; none for a row that cannot be read (it is relayed as nothing and deleted).</summary>
    public static IReadOnlyList<PublishedEvent> EventsOf(TableEntity row)
    {
        try
        {
            if (row.GetInt32("Packed") is { } parts)
            {
                if (parts is < 1 or > MaxParts)
                {
                    return [];
                }

                var packed = new MemoryStream();
                for (var part = 0; part < parts; part++)
                {
                    packed.Write(row.GetBinary($"Events{part}") ?? throw new InvalidDataException($"Part {part} is missing."));
                }

                packed.Position = 0;
                return JsonSerializer.Deserialize<List<PublishedEvent>>(PackedJson.Unpack(packed, MaxUnpackedBytes).Span, JsonSerializerOptions.Web) ?? [];
            }

            var textParts = row.GetInt32("Parts") ?? 0;
            var json = new StringBuilder();
            for (var part = 0; part < Math.Min(textParts, MaxParts); part++)
            {
                json.Append(row.GetString($"Events{part}"));
            }

            return JsonSerializer.Deserialize<List<PublishedEvent>>(json.ToString(), JsonSerializerOptions.Web) ?? [];
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or InvalidOperationException)
        {
            return [];
        }
    }

    /// <summary>The partition's outbox rows, oldest first (text rows of an earlier version, then packed rows), a page at a time.</summary>
    public static AsyncPageable<TableEntity> PendingAsync(TenantPartition partition, int maxPerPage, CancellationToken cancellationToken) =>
        partition.QueryWhereAsync<TableEntity>($"RowKey ge {KeyStart} and RowKey lt {KeyEnd}", maxPerPage, cancellationToken);
}
