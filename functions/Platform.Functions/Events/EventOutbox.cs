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
public static class EventOutbox
{
    public const string KeyPrefix = "~outbox:";

    /// <summary>
    /// Characters of JSON per property (storage allows 32 Ki). Short parts, because the SDK writes each as a JSON string
    /// (every quote escaped) and sizes its buffer for the worst case first, up to 18 bytes a character: a 30,000-character
    /// part made every such write allocate a buffer on the large object heap, about 5 MB a second under an import. Rows
    /// read the same whatever the part size.
    /// </summary>
    private const int CharsPerProperty = 2_000;

    /// <summary>Properties one row may use: a row holds at most 1 MiB (and 252 properties).</summary>
    private const int MaxProperties = 225;

    public static string KeyFor(string firstEventId) => KeyPrefix + firstEventId;

    /// <summary>The outbox row of one transaction's events.</summary>
    public static TableEntity Row(IReadOnlyList<PublishedEvent> events)
    {
        var json = JsonSerializer.Serialize(events, JsonSerializerOptions.Web);
        var parts = (json.Length + CharsPerProperty - 1) / CharsPerProperty;
        if (parts > MaxProperties)
        {
            throw new InvalidOperationException($"The events of one transaction take {json.Length} characters of JSON; commit them in smaller batches.");
        }

        var row = new TableEntity { RowKey = KeyFor(events[0].Id), ["Count"] = events.Count, ["Parts"] = parts };
        for (var part = 0; part < parts; part++)
        {
            row[$"Events{part}"] = json.Substring(part * CharsPerProperty, Math.Min(CharsPerProperty, json.Length - part * CharsPerProperty));
        }

        return row;
    }

    /// <summary>The events a row holds; none for a row that cannot be read (it is relayed as nothing and deleted).</summary>
    public static IReadOnlyList<PublishedEvent> EventsOf(TableEntity row)
    {
        var parts = row.GetInt32("Parts") ?? 0;
        var json = new StringBuilder();
        for (var part = 0; part < parts; part++)
        {
            json.Append(row.GetString($"Events{part}"));
        }

        try
        {
            return JsonSerializer.Deserialize<List<PublishedEvent>>(json.ToString(), JsonSerializerOptions.Web) ?? [];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    /// <summary>The partition's outbox rows, oldest first, a page at a time.</summary>
    public static AsyncPageable<TableEntity> PendingAsync(TenantPartition partition, int maxPerPage, CancellationToken cancellationToken) =>
        partition.QueryAsync<TableEntity>(KeyPrefix, maxPerPage, cancellationToken);
}
