using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// Sends entity-group transactions (the table service's <c>$batch</c>) with the request written straight into one
/// pooled buffer and the answer read without copying it into strings, over an Azure SDK pipeline built from the same
/// client options (retries, transport, the tests' counting policies) and the same credential as the tables' clients.
/// <para>
/// Why not <see cref="TableClient.SubmitTransactionAsync"/>: for each action it builds a whole HTTP message, turns each
/// action's headers into strings twice (once to compute the length, once to write), and parses the answer line by line
/// into strings. Under a bulk import that was two thirds of everything the app allocated, and the collection it caused
/// about a third of the app's CPU (<c>docs/benchmarks.md</c>, Jobs).
/// </para>
/// <para>
/// The same wire format as the SDK (the SDK's multipart layout, sub-requests and headers, less the headers it adds for
/// its telemetry; entity JSON escapes only what JSON requires, so text beyond ASCII goes as UTF-8), the same property
/// types and <c>@odata.type</c> annotations, the same errors: a failed action is a
/// <see cref="TableTransactionFailedException"/> with its <see cref="TableTransactionFailedException.FailedTransactionActionIndex"/>,
/// any other failure a <see cref="RequestFailedException"/>. Each action's response carries its ETag. A transaction
/// this writer cannot express exactly (a property of a type it does not write, a local time) goes through the SDK, so
/// the result never differs from the SDK's; so does every transaction when <see cref="StorageOptions.Transactions"/>
/// says <c>Sdk</c>.
/// </para>
/// </summary>
public sealed class EntityGroupTransactions
{
    /// <summary>The service version the SDK sends with a batch (and for each action inside it).</summary>
    private const string ServiceVersion = "2020-12-06";

    /// <summary>The table service's limit on a transaction's actions.</summary>
    public const int MaxActions = 100;

    /// <summary>Buffers larger than this are not kept for reuse (a transaction's payload is at most 4 MiB).</summary>
    private const int MaxPooledBytes = 1 << 20;

    private const int MaxPooled = 32;

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly HttpPipeline? _pipeline;
    private readonly string _endpoint = "";
    private readonly Uri? _batchUri;
    private readonly string _host = "";
    private readonly ConcurrentQueue<Buffer> _buffers = new();

    private EntityGroupTransactions()
    {
    }

    private EntityGroupTransactions(HttpPipeline pipeline, Uri endpoint)
    {
        _pipeline = pipeline;
        _endpoint = endpoint.AbsoluteUri.TrimEnd('/');
        _batchUri = new Uri(_endpoint + "/$batch");
        _host = endpoint.Host;
    }

    /// <summary>Every transaction through <see cref="TableClient.SubmitTransactionAsync"/>.</summary>
    public static EntityGroupTransactions ThroughSdk { get; } = new();

    /// <summary>True when transactions are written here rather than by the SDK.</summary>
    public bool IsDirect => _pipeline is not null;

    /// <summary>
    /// For an account reached with a connection string that holds the account key, or names development storage (the
    /// emulator's published account): signed with the key (SharedKeyLite, as the SDK signs table requests). Null when the
    /// connection string has no key (a SAS): the SDK then sends the transactions.
    /// </summary>
    public static EntityGroupTransactions? WithAccountKey(string connectionString, Uri tableEndpoint, ClientOptions options)
    {
        string? name = null, key = null;
        foreach (var part in connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = part.IndexOf('=');
            if (equals <= 0)
            {
                continue;
            }

            var setting = part[..equals];
            if (setting.Equals("AccountName", StringComparison.OrdinalIgnoreCase))
            {
                name = part[(equals + 1)..];
            }
            else if (setting.Equals("AccountKey", StringComparison.OrdinalIgnoreCase))
            {
                key = part[(equals + 1)..];
            }
        }

        if (IsDevelopmentStorage(connectionString))
        {
            // The emulator's one account, whose name and key are published with it (the SDK expands this setting to them).
            (name, key) = ("devstoreaccount1", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==");
        }

        if (name is not { Length: > 0 } || key is not { Length: > 0 })
        {
            return null;
        }

        byte[] secret;
        try
        {
            secret = Convert.FromBase64String(key);
        }
        catch (FormatException)
        {
            return null;
        }

        return IsCosmos(tableEndpoint) ? null : new(HttpPipelineBuilder.Build(options, new SharedKeyLitePolicy(name, secret)), tableEndpoint);
    }

    private static bool IsDevelopmentStorage(string connectionString) =>
        connectionString.Replace(" ", "", StringComparison.Ordinal).Contains("UseDevelopmentStorage=true", StringComparison.OrdinalIgnoreCase)
        && !connectionString.Contains("DevelopmentStorageProxyUri", StringComparison.OrdinalIgnoreCase);

    /// <summary>For an account reached with Entra ID (managed identity): a bearer token for storage, as the SDK asks for.</summary>
    public static EntityGroupTransactions WithToken(TokenCredential credential, Uri tableEndpoint, ClientOptions options) =>
        IsCosmos(tableEndpoint)
            ? ThroughSdk
            : new(HttpPipelineBuilder.Build(options, new BearerTokenAuthenticationPolicy(credential, "https://storage.azure.com/.default")), tableEndpoint);

    /// <summary>Cosmos DB's table API takes a batch's merges in another form (the SDK rewrites them): the SDK sends there.</summary>
    private static bool IsCosmos(Uri endpoint) =>
        endpoint.Host.Contains(".cosmos.", StringComparison.OrdinalIgnoreCase) || endpoint.Host.Contains(".cosmosdb.", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Submits the actions as one transaction on <paramref name="table"/>: all succeed or none. The same contract as
    /// <see cref="TableClient.SubmitTransactionAsync"/>: responses in the actions' order, a failed action's index on the
    /// exception.
    /// </summary>
    public async Task<Response<IReadOnlyList<Response>>> SubmitAsync(
        TableClient table, IReadOnlyCollection<TableTransactionAction> actions, CancellationToken cancellationToken = default)
    {
        if (_pipeline is null || actions.Count is 0 or > MaxActions)
        {
            return await table.SubmitTransactionAsync(actions, cancellationToken);
        }

        var buffer = Rent();
        var sending = false;
        try
        {
            var batch = Guid.NewGuid();
            if (!buffer.TryWrite(_endpoint, _host, table.Name, batch, actions))
            {
                return await table.SubmitTransactionAsync(actions, cancellationToken);
            }

            // Not disposed: the response returned is the message's own (as the SDK leaves it).
            var message = _pipeline.CreateMessage();
            var request = message.Request;
            request.Method = RequestMethod.Post;
            request.Uri.Reset(_batchUri!);
            request.Headers.Add("x-ms-version", ServiceVersion);
            request.Headers.Add("DataServiceVersion", "3.0");
            request.Headers.Add("Accept", "application/json");
            request.Headers.Add("Content-Type", $"multipart/mixed; boundary=batch_{batch}");
            request.Content = new BufferContent(buffer.Written);
            sending = true;
            await _pipeline.SendAsync(message, cancellationToken);
            sending = false;

            var response = message.Response;
            if (response.Status != 202)
            {
                throw TransactionAnswer.Refused(response);
            }

            return Response.FromValue(TransactionAnswer.Read(response, actions.Count), response);
        }
        finally
        {
            // A send that ended in an exception (a timeout, a cancellation) is not trusted to have stopped reading the
            // body: its buffer is left to the collector rather than handed to the next transaction. (Retries within one
            // send resend the same bytes after the attempt before them has ended, so they need no such care.)
            if (!sending)
            {
                Return(buffer);
            }
        }
    }

    private Buffer Rent() => _buffers.TryDequeue(out var buffer) ? buffer : new Buffer();

    private void Return(Buffer buffer)
    {
        if (buffer.Capacity <= MaxPooledBytes && _buffers.Count < MaxPooled)
        {
            buffer.Clear();
            _buffers.Enqueue(buffer);
        }
        else
        {
            buffer.Dispose();
        }
    }

    /// <summary>One transaction's request body, and the JSON writer that writes its entities into it.</summary>
    private sealed class Buffer : IDisposable
    {
        private const string Format = "?$format=application%2Fjson%3Bodata%3Dminimalmetadata";

        private readonly ArrayBufferWriter<byte> _bytes = new(64 * 1024);
        private readonly Utf8JsonWriter _json;

        public Buffer() => _json = new Utf8JsonWriter(_bytes, JsonOptions);

        public int Capacity => _bytes.Capacity;

        public void Dispose() => _json.Dispose();

        public ReadOnlyMemory<byte> Written => _bytes.WrittenMemory;

        public void Clear()
        {
            _bytes.ResetWrittenCount();
            _json.Reset(_bytes);
        }

        /// <summary>False when an entity holds something only the SDK writes (or refuses): the caller sends it through the SDK.</summary>
        public bool TryWrite(string endpoint, string host, string table, Guid batch, IReadOnlyCollection<TableTransactionAction> actions)
        {
            var changeset = Guid.NewGuid();
            var tableUrl = endpoint + "/" + Uri.EscapeDataString(table);
            Ascii("--batch_"); Id(batch); Ascii("\r\nContent-Type: multipart/mixed; boundary=changeset_"); Id(changeset); Ascii("\r\n\r\n");
            var first = true;
            foreach (var action in actions)
            {
                if (!first)
                {
                    Ascii("\r\n");
                }

                first = false;
                Ascii("--changeset_"); Id(changeset); Ascii("\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n");
                var entity = action.Entity;
                if (entity.PartitionKey is null || entity.RowKey is null)
                {
                    return false;
                }

                switch (action.ActionType)
                {
                    case TableTransactionActionType.Add:
                        RequestLine("POST ", tableUrl, addressed: null, host);
                        Ascii("Prefer: return-no-content\r\nAccept: application/json;odata=minimalmetadata\r\nContent-Type: application/json;odata=nometadata\r\n\r\n");
                        if (!TryWriteEntity(entity))
                        {
                            return false;
                        }

                        break;
                    case TableTransactionActionType.UpdateReplace or TableTransactionActionType.UpsertReplace
                        or TableTransactionActionType.UpdateMerge or TableTransactionActionType.UpsertMerge:
                        var replace = action.ActionType is TableTransactionActionType.UpdateReplace or TableTransactionActionType.UpsertReplace;
                        var conditional = action.ActionType is TableTransactionActionType.UpdateReplace or TableTransactionActionType.UpdateMerge;
                        RequestLine(replace ? "PUT " : "PATCH ", tableUrl, entity, host);
                        // As the SDK: an update without an ETag is sent without a condition.
                        if (conditional && action.ETag != default)
                        {
                            Ascii("If-Match: "); Text(action.ETag.ToString()); Ascii("\r\n");
                        }

                        Ascii("Accept: application/json\r\nContent-Type: application/json\r\n\r\n");
                        if (!TryWriteEntity(entity))
                        {
                            return false;
                        }

                        break;
                    case TableTransactionActionType.Delete:
                        RequestLine("DELETE ", tableUrl, entity, host);
                        Ascii("If-Match: ");
                        Text(action.ETag == default ? ETag.All.ToString() : action.ETag.ToString());
                        Ascii("\r\nAccept: application/json;odata=minimalmetadata\r\n\r\n");
                        break;
                    default:
                        return false;
                }
            }

            Ascii("\r\n--changeset_"); Id(changeset); Ascii("--\r\n\r\n--batch_"); Id(batch); Ascii("--\r\n");
            return true;
        }

        /// <summary>
        /// An action's request line and the headers every action has: the table's URL, or an entity's when the action
        /// addresses one (keys quoted and escaped as the SDK does).
        /// </summary>
        private void RequestLine(string method, string tableUrl, ITableEntity? addressed, string host)
        {
            Ascii(method);
            Text(tableUrl);
            if (addressed is not null)
            {
                Ascii("(PartitionKey='"); Text(Uri.EscapeDataString(addressed.PartitionKey.Replace("'", "''", StringComparison.Ordinal)));
                Ascii("',RowKey='"); Text(Uri.EscapeDataString(addressed.RowKey.Replace("'", "''", StringComparison.Ordinal)));
                Ascii("')");
            }

            Ascii(Format); Ascii(" HTTP/1.1\r\nHost: "); Text(host);
            Ascii("\r\nx-ms-version: " + ServiceVersion + "\r\nDataServiceVersion: 3.0\r\n");
        }

        private void Ascii(string text)
        {
            var span = _bytes.GetSpan(text.Length);
            var written = Encoding.ASCII.GetBytes(text, span);
            _bytes.Advance(written);
        }

        private void Text(string text)
        {
            var span = _bytes.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
            _bytes.Advance(Encoding.UTF8.GetBytes(text, span));
        }

        private void Id(Guid value)
        {
            var span = _bytes.GetSpan(36);
            value.TryFormat(span, out var written, "D");
            _bytes.Advance(written);
        }

        /// <summary>Writes the entity's JSON after what is written so far (the JSON writer flushes into the same buffer).</summary>
        private bool TryWriteEntity(ITableEntity entity)
        {
            try
            {
                _json.Reset();
                if (!EntityProperties.TryWrite(_json, entity))
                {
                    return false;
                }

                _json.Flush();
                return true;
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or NotSupportedException or FormatException)
            {
                // What the SDK refuses (a lone surrogate, an infinite number) it refuses in its own words.
                return false;
            }
        }
    }

    /// <summary>A request body that is already written: its length is known and it is sent as it is on every retry.</summary>
    private sealed class BufferContent(ReadOnlyMemory<byte> bytes) : RequestContent
    {
        public override bool TryComputeLength(out long length)
        {
            length = bytes.Length;
            return true;
        }

        public override void WriteTo(Stream stream, CancellationToken cancellationToken) => stream.Write(bytes.Span);

        public override async Task WriteToAsync(Stream stream, CancellationToken cancellationToken) =>
            await stream.WriteAsync(bytes, cancellationToken);

        public override void Dispose()
        {
        }
    }

    /// <summary>Signs a request as the SDK's table clients do with an account key (SharedKeyLite over date and resource).</summary>
    private sealed class SharedKeyLitePolicy(string account, byte[] key) : HttpPipelineSynchronousPolicy
    {
        public override void OnSendingRequest(HttpMessage message)
        {
            var date = DateTimeOffset.UtcNow.ToString("r", CultureInfo.InvariantCulture);
            message.Request.Headers.SetValue("x-ms-date", date);
            var uri = message.Request.Uri.ToUri();
            var resource = "/" + account + (uri.AbsolutePath.Length > 0 ? uri.AbsolutePath : "/");
            var signature = Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(date + "\n" + resource)));
            message.Request.Headers.SetValue("Authorization", $"SharedKeyLite {account}:{signature}");
        }
    }
}
