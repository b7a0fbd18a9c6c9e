using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Reflection;
using System.Runtime.Serialization;
using System.Text.Json;
using Azure.Data.Tables;

namespace Platform.Benchmarks;

/// <summary>
/// Client of <c>infra/bench/preloadable-table.js</c>, the Azurite table service that takes a seed straight into its
/// store (its REST insert walks the whole partition per row, so millions of rows in one partition take hours). Rows go
/// as NDJSON in the shape the Azure.Data.Tables SDK sends on insert: the entity's public properties, null ones left
/// out, with the SDK's <c>@odata.type</c> annotations. <see cref="VerifyAsync"/> proves the shape on sample rows: it
/// writes them both ways and compares what the SDK reads back. Set by <c>infra/bench/movements.sh</c> through
/// <see cref="Variable"/>; without it the figures write their seed with the SDK (any storage account).
/// </summary>
internal sealed class TablePreload(HttpClient http, Uri control)
{
    public const string Variable = "PLATFORM_BENCH_TABLE_PRELOAD";

    /// <summary>About 30 MB a request; the service rebuilds its two key indexes once per request.</summary>
    private const int RowsPerRequest = 50_000;

    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> Properties = new();

    public static TablePreload? FromEnvironment(HttpClient http) =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } url ? new TablePreload(http, new Uri(url)) : null;

    /// <summary>Adds the rows to <paramref name="table"/> (which must exist), in requests that each add all their rows or none.</summary>
    public async Task<long> LoadAsync(string table, IEnumerable<ITableEntity> rows, Action<long>? progress = null)
    {
        var loaded = 0L;
        using var body = new MemoryStream();
        using var writer = new Utf8JsonWriter(body);
        var pending = 0;
        foreach (var row in rows)
        {
            Write(writer, row);
            writer.Flush();
            body.WriteByte((byte)'\n');
            writer.Reset(body);
            if (++pending == RowsPerRequest)
            {
                loaded += await SendAsync(table, body);
                pending = 0;
                progress?.Invoke(loaded);
            }
        }

        if (pending > 0)
        {
            loaded += await SendAsync(table, body);
        }

        return loaded;
    }

    /// <summary>
    /// Writes each sample row twice into two scratch partitions of <paramref name="table"/>, once with the SDK and once
    /// preloaded, reads both back with the SDK and throws unless every property reads back the same; then deletes them.
    /// </summary>
    public async Task VerifyAsync(TableClient table, IReadOnlyList<ITableEntity> samples)
    {
        const string BySdk = "preload-check-sdk";
        const string ByPreload = "preload-check-preload";
        foreach (var sample in samples)
        {
            sample.PartitionKey = BySdk;
            await table.AddEntityAsync(sample);
        }

        foreach (var sample in samples)
        {
            sample.PartitionKey = ByPreload;
        }

        await LoadAsync(table.Name, samples);
        try
        {
            foreach (var sample in samples)
            {
                var expected = (await table.GetEntityAsync<TableEntity>(BySdk, sample.RowKey)).Value;
                var actual = (await table.GetEntityAsync<TableEntity>(ByPreload, sample.RowKey)).Value;
                foreach (var name in expected.Keys.Union(actual.Keys).Where(n => n is not ("PartitionKey" or "Timestamp" or "odata.etag")))
                {
                    var want = expected.TryGetValue(name, out var e) ? e : null;
                    var got = actual.TryGetValue(name, out var a) ? a : null;
                    if (!Equals(want, got))
                    {
                        throw new InvalidOperationException(
                            $"a preloaded {sample.GetType().Name} reads back {name} = {got ?? "(none)"} ({got?.GetType().Name}); written by the SDK it reads {want ?? "(none)"} ({want?.GetType().Name})");
                    }
                }
            }
        }
        finally
        {
            foreach (var sample in samples)
            {
                await table.DeleteEntityAsync(BySdk, sample.RowKey);
                await table.DeleteEntityAsync(ByPreload, sample.RowKey);
            }
        }
    }

    private async Task<long> SendAsync(string table, MemoryStream body)
    {
        using var content = new ByteArrayContent(body.GetBuffer(), 0, (int)body.Length);
        using var response = await http.PostAsync(new Uri(control, $"preload?table={Uri.EscapeDataString(table)}"), content);
        body.SetLength(0);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"preloading {table} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("inserted").GetInt64();
    }

    /// <summary>The entity as the SDK's insert body carries it (the types these figures store; anything else throws).</summary>
    private static void Write(Utf8JsonWriter writer, ITableEntity entity)
    {
        writer.WriteStartObject();
        foreach (var property in Properties.GetOrAdd(entity.GetType(), PropertiesOf))
        {
            var name = property.Name;
            switch (property.GetValue(entity))
            {
                case null:
                    break;
                case string text:
                    writer.WriteString(name, text);
                    break;
                case bool flag:
                    writer.WriteBoolean(name, flag);
                    break;
                case int number:
                    writer.WriteNumber(name, number);
                    break;
                case long number:
                    writer.WriteString(name, number.ToString(CultureInfo.InvariantCulture));
                    writer.WriteString(name + "@odata.type", "Edm.Int64");
                    break;
                case double number when double.IsFinite(number):
                    writer.WriteNumber(name, number);
                    writer.WriteString(name + "@odata.type", "Edm.Double");
                    break;
                case DateTimeOffset moment:
                    writer.WriteString(name, moment.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
                    writer.WriteString(name + "@odata.type", "Edm.DateTime");
                    break;
                case var other:
                    throw new NotSupportedException($"{entity.GetType().Name}.{name}: {other.GetType().Name} values are not preloaded");
            }
        }

        writer.WriteEndObject();
    }

    private static PropertyInfo[] PropertiesOf(Type type) =>
        [.. type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanRead && p.GetIndexParameters().Length == 0 && p.GetCustomAttribute<IgnoreDataMemberAttribute>() is null
                && p.Name is not (nameof(ITableEntity.Timestamp) or nameof(ITableEntity.ETag)))];
}
