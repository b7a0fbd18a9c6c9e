using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// Reads the table service's answer to an entity-group transaction: a multipart body with one HTTP response per action
/// when all succeeded, or the one that failed (its message starts with the failed action's index, "3:...").
/// Only each response's status and ETag are kept; nothing else is turned into strings.
/// </summary>
internal static class TransactionAnswer
{
    private static ReadOnlySpan<byte> StatusLine => "HTTP/1.1 "u8;
    private static ReadOnlySpan<byte> ETagHeader => "etag:"u8;

    /// <summary>The responses in the actions' order; throws as <see cref="TableClient.SubmitTransactionAsync"/> does on a failure.</summary>
    public static IReadOnlyList<Response> Read(Response answer, int actions)
    {
        var body = answer.Content.ToMemory().Span;
        var responses = new List<Response>(actions);
        var requestId = answer.ClientRequestId;
        while (true)
        {
            var at = body.IndexOf(StatusLine);
            if (at < 0)
            {
                break;
            }

            body = body[(at + StatusLine.Length)..];
            if (body.Length < 3 || !TryStatus(body[..3], out var status))
            {
                throw Unreadable(answer, "a response line without a status");
            }

            // Headers up to the empty line; the ETag is the one kept.
            string? etag = null;
            var lineEnd = body.IndexOf("\r\n"u8);
            if (lineEnd < 0)
            {
                throw Unreadable(answer, "a response line without its end");
            }

            var reason = status switch
            {
                204 => "No Content",
                201 => "Created",
                _ => Encoding.ASCII.GetString(lineEnd > 4 ? body[4..lineEnd] : []),
            };
            body = body[(lineEnd + 2)..];
            while (true)
            {
                lineEnd = body.IndexOf("\r\n"u8);
                if (lineEnd < 0)
                {
                    throw Unreadable(answer, "headers without their end");
                }

                var line = body[..lineEnd];
                body = body[(lineEnd + 2)..];
                if (line.IsEmpty)
                {
                    break;
                }

                if (line.Length > ETagHeader.Length && Ascii.EqualsIgnoreCase(line[..ETagHeader.Length], ETagHeader))
                {
                    etag = Encoding.ASCII.GetString(line[ETagHeader.Length..].Trim(" \t"u8));
                }
            }

            if (status >= 400)
            {
                // The body runs to the next boundary line.
                var end = body.IndexOf("\r\n--"u8);
                throw Failed(status, reason, end < 0 ? body : body[..end]);
            }

            responses.Add(new ActionResponse(status, reason, etag, requestId));
            if (responses.Count > actions)
            {
                throw Unreadable(answer, $"more responses than the {actions} actions");
            }

            // Past a body, if any, to the next boundary: JSON holds no raw line break, so its text cannot end it early.
            var next = body.IndexOf("\r\n--"u8);
            body = next < 0 ? [] : body[next..];
        }

        if (responses.Count != actions)
        {
            throw Unreadable(answer, $"{responses.Count} responses for {actions} actions");
        }

        return responses;
    }

    private static bool TryStatus(ReadOnlySpan<byte> digits, out int status)
    {
        status = 0;
        foreach (var digit in digits)
        {
            if (digit is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            status = status * 10 + (digit - '0');
        }

        return true;
    }

    /// <summary>
    /// A whole request refused (not 202: a bad key, a body too large, the service busy), with the service's error code and
    /// message as the SDK reads them from <c>odata.error</c> (Azure.Core's own reader looks for <c>error</c>).
    /// </summary>
    public static RequestFailedException Refused(Response response)
    {
        var (code, message) = ErrorOf(response.Content.ToMemory().Span);
        if (code is null && response.Headers.TryGetValue("x-ms-error-code", out var header))
        {
            code = header;
        }

        message ??= response.ReasonPhrase;
        return new RequestFailedException(response.Status, $"{message}\nStatus: {response.Status} ({response.ReasonPhrase})\nErrorCode: {code}", code, null);
    }

    /// <summary>As the SDK: the service's code and message, the failed action's index from the message's "N:" prefix.</summary>
    private static TableTransactionFailedException Failed(int status, string reason, ReadOnlySpan<byte> body)
    {
        var (code, message) = ErrorOf(body);
        message ??= $"{status} {reason}";
        var failed = new RequestFailedException(status, $"{message}\nStatus: {status} ({reason})\nErrorCode: {code}", code, null);
        var colon = message.IndexOf(':');
        if (colon > 0 && int.TryParse(message.AsSpan(0, colon), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
        {
            failed.Data["FailedEntity"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return new TableTransactionFailedException(failed);
    }

    private static (string? Code, string? Message) ErrorOf(ReadOnlySpan<byte> body)
    {
        string? code = null, message = null;
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("odata.error", out var error) && error.ValueKind == JsonValueKind.Object)
            {
                code = error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                message = error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.Object
                    && m.TryGetProperty("value", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // An error without a readable body (not JSON, not UTF-8) keeps its status.
        }

        return (code, message);
    }

    private static RequestFailedException Unreadable(Response answer, string what) =>
        new(answer.Status, $"The table service's answer to a transaction could not be read: {what}.");

    /// <summary>One action's response: its status and ETag.</summary>
    private sealed class ActionResponse(int status, string reason, string? etag, string requestId) : Response
    {
        public override int Status => status;

        public override string ReasonPhrase => reason;

        public override Stream? ContentStream { get => null; set { } }

        public override string ClientRequestId { get; set; } = requestId;

        public override void Dispose()
        {
        }

        protected override bool ContainsHeader(string name) => etag is not null && IsETag(name);

        protected override IEnumerable<HttpHeader> EnumerateHeaders() => etag is null ? [] : [new HttpHeader(HttpHeader.Names.ETag, etag)];

        protected override bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
        {
            value = etag is not null && IsETag(name) ? etag : null;
            return value is not null;
        }

        protected override bool TryGetHeaderValues(string name, [NotNullWhen(true)] out IEnumerable<string>? values)
        {
            values = etag is not null && IsETag(name) ? [etag] : null;
            return values is not null;
        }

        private static bool IsETag(string name) => name.Equals(HttpHeader.Names.ETag, StringComparison.OrdinalIgnoreCase);
    }
}
