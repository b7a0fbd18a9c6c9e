using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// Counts the requests an app sends to storage (every client of its <c>StorageAccount</c>, retries included), each
/// with its kind, its table, queue or container, and the route of the HTTP request it was sent for (null: background
/// work). A counter, not a fake: every request still goes to Azurite. <see cref="Register"/> adds it to an app's services.
/// </summary>
public sealed partial class StorageCalls(Azurite azurite, IHttpContextAccessor http) : HttpPipelinePolicy
{
    private readonly ConcurrentQueue<StorageCall> _calls = new();

    /// <summary>Adds a counter to the app's storage clients; <paramref name="counter"/> gets it once the app built it.</summary>
    public static void Register(IServiceCollection services, Azurite azurite, Action<StorageCalls> counter)
    {
        services.AddHttpContextAccessor();
        services.AddSingleton(sp =>
        {
            var calls = new StorageCalls(azurite, sp.GetRequiredService<IHttpContextAccessor>());
            counter(calls);
            return calls;
        });
        services.AddSingleton<HttpPipelinePolicy>(sp => sp.GetRequiredService<StorageCalls>());
    }

    public IReadOnlyList<StorageCall> All => [.. _calls];

    public void Clear() => _calls.Clear();

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        var call = Record(message);
        ProcessNext(message, pipeline);
        Answered(call, message);
    }

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        var call = Record(message);
        await ProcessNextAsync(message, pipeline);
        Answered(call, message);
    }

    /// <summary>A table query's answer, kept for telling which rows it returned (the SDK buffers it, so reading it here costs nothing else).</summary>
    private static void Answered(StorageCall call, HttpMessage message)
    {
        if (call is { Service: "table", Kind: "query" } && message.HasResponse && message.Response.ContentStream is { CanSeek: true } buffered)
        {
            var at = buffered.Position;
            buffered.Position = 0;
            using var reader = new StreamReader(buffered, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
            call.Answer = reader.ReadToEnd();
            buffered.Position = at;
        }
    }

    private StorageCall Record(HttpMessage message)
    {
        var request = message.Request;
        var uri = request.Uri.ToUri();
        var context = http.HttpContext;
        var route = context is null ? null
            : context.GetEndpoint() is RouteEndpoint endpoint ? $"{context.Request.Method} {endpoint.RoutePattern.RawText}"
            : $"{context.Request.Method} {context.Request.Path}";
        var service = uri.Port == azurite.TablePort ? "table" : uri.Port == azurite.QueuePort ? "queue" : uri.Port == azurite.BlobPort ? "blob" : uri.Authority;
        var segments = Uri.UnescapeDataString(uri.AbsolutePath).Trim('/').Split('/');
        var method = request.Method.ToString();
        var text = Uri.UnescapeDataString(uri.PathAndQuery);
        string kind;
        string resource;
        var actions = 1;
        if (service == "table")
        {
            var last = segments.Length > 1 ? segments[1] : "";
            if (last == "$batch")
            {
                // The body names each action's table; an entity-group transaction touches one partition of one table.
                var body = BodyOf(request);
                text += "\n" + Uri.UnescapeDataString(body);
                var lines = BatchAction().Matches(body);
                actions = lines.Count;
                kind = "transaction";
                resource = lines.Count > 0 ? lines[0].Groups["table"].Value : "";
            }
            else
            {
                var open = last.IndexOf('(', StringComparison.Ordinal);
                resource = open < 0 ? last : last[..open];
                var point = open >= 0 && last.Contains("RowKey=", StringComparison.Ordinal);
                kind = method switch
                {
                    "GET" when point => "read",
                    "GET" => "query",
                    "POST" when resource == "Tables" => "create-table",
                    "POST" => "insert",
                    "PUT" or "MERGE" or "PATCH" => "update",
                    "DELETE" => "delete",
                    _ => method,
                };
                if (method is "POST" or "PUT" or "MERGE" or "PATCH")
                {
                    text += "\n" + BodyOf(request);
                }
            }
        }
        else
        {
            resource = segments.Length > 1 ? segments[1] : "";
            var messages = segments.Length > 2 && segments[2] == "messages";
            kind = (service, method, messages) switch
            {
                ("queue", "POST", true) => "send",
                ("queue", "GET", true) => "receive",
                ("queue", "DELETE", true) => "delete-message",
                ("queue", "PUT", true) => "update-message",
                _ => method,
            };
            if (service == "queue" && method is "POST" or "PUT")
            {
                text += "\n" + QueueText(BodyOf(request));
            }
        }

        var call = new StorageCall(service, kind, resource, actions, route, context?.TraceIdentifier, text);
        _calls.Enqueue(call);
        return call;
    }

    private static string BodyOf(Request request)
    {
        if (request.Content is null)
        {
            return "";
        }

        using var stream = new MemoryStream();
        request.Content.WriteTo(stream, CancellationToken.None);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>A queue message's text (the app sends base64) next to the raw XML.</summary>
    private static string QueueText(string xml)
    {
        var match = MessageText().Match(xml);
        if (!match.Success)
        {
            return xml;
        }

        try
        {
            return xml + "\n" + Encoding.UTF8.GetString(Convert.FromBase64String(match.Groups[1].Value));
        }
        catch (FormatException)
        {
            return xml;
        }
    }

    [GeneratedRegex(@"^(?:POST|PUT|MERGE|PATCH|DELETE|GET) https?://[^/]+/[^/]+/(?<table>[A-Za-z0-9]+)", RegexOptions.Multiline)]
    private static partial Regex BatchAction();

    [GeneratedRegex("<MessageText>([^<]*)</MessageText>")]
    private static partial Regex MessageText();
}

/// <param name="Service">table, queue or blob.</param>
/// <param name="Kind">
/// For tables: read (one row by its keys), query, insert, update, delete, transaction (an entity-group transaction, of
/// <paramref name="Actions"/> actions); for queues: send, receive, delete-message, update-message; else the HTTP method.
/// </param>
/// <param name="Resource">The table, queue or container, with the app's prefix.</param>
/// <param name="Route">The route of the HTTP request the call was made for (method and pattern); null for background work.</param>
/// <param name="Request">The HTTP request's trace identifier, telling apart calls of two requests to one route.</param>
/// <param name="Text">The decoded path and query, and the body of a write, for telling whose rows a call touches.</param>
public sealed record StorageCall(string Service, string Kind, string Resource, int Actions, string? Route, string? Request, string Text)
{
    /// <summary>The body of a table query's answer (the rows it returned); null for other calls, or before it was answered.</summary>
    public string? Answer { get; set; }

    /// <summary>The resource without the app's prefix.</summary>
    public string Table(string prefix) => Resource.StartsWith(prefix, StringComparison.Ordinal) ? Resource[prefix.Length..] : Resource;

    public string Describe(string prefix) => $"{Service} {Kind} {Table(prefix)}{(Kind == "transaction" ? $" ({Actions} actions)" : "")}";
}
