using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Platform.Functions.Http;

namespace Platform.Functions.Triggers;

/// <summary>
/// <c>POST /{FunctionName}</c>: how the Functions host runs a timer or queue function in a custom handler. The host
/// sends <c>{"Data":{...},"Metadata":{...}}</c> and needs a JSON object back; a non-2xx answer fails the
/// invocation, so the host retries a queue message and eventually poisons it. These routes are outside
/// <c>/api</c>, which is all the proxied <c>api</c> function forwards, and they answer loopback callers only.
/// </summary>
public static class InvocationEndpoints
{
    /// <summary>Timer payloads are tiny and a queue message is at most 64 KiB before JSON escaping.</summary>
    public const long MaxPayloadBytes = 512 * 1024;

    /// <summary>
    /// One literal route per declared function, so that <c>/{FunctionName}</c> does not swallow other single-segment
    /// paths: an unknown name is an unknown route (404), not a 405 for some other method.
    /// </summary>
    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("").ExcludeFromDescription().WithMetadata(new RequestSizeLimitAttribute(MaxPayloadBytes));
        foreach (var function in app.ServiceProvider.GetRequiredService<FunctionCatalog>().All)
        {
            group.MapPost("/" + function.Name, InvokeFunction).WithName("Invoke" + function.Name);
        }

        return group;
    }

    internal static async Task<Results<Ok<InvocationResult>, JsonHttpResult<InvocationResult>, ProblemHttpResult>> InvokeFunction(
        InvocationRequest request,
        HttpContext context,
        FunctionCatalog catalog,
        FunctionInvoker invoker,
        TimeProvider time)
    {
        var remote = context.Connection.RemoteIpAddress;
        if (remote is not null && !System.Net.IPAddress.IsLoopback(remote))
        {
            return Problems.NotFound();
        }

        var function = catalog.Find(context.Request.Path.Value!.TrimStart('/'));
        if (function is null)
        {
            return Problems.NotFound();
        }

        if (request.Data is null || request.Data.Count == 0)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, "invalid_invocation", "Invalid invocation",
                "The payload must be {\"Data\":{...},\"Metadata\":{...}} with the trigger's binding in Data.");
        }

        var trigger = request.Data.Values.First();
        try
        {
            switch (function)
            {
                case TimerFunction timer:
                    await invoker.RunTimerAsync(timer, ReadTimer(trigger, time), context.RequestAborted);
                    break;
                case QueueFunction queue:
                    await invoker.RunQueueAsync(queue, ReadQueueMessage(trigger, request.Metadata), context.RequestAborted);
                    break;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
        {
            // The host logs what comes back in Logs; 500 makes it count the invocation as failed and retry.
            return TypedResults.Json(new InvocationResult { Logs = [$"{function.Name} failed: {ex.GetType().Name}: {ex.Message}"] },
                statusCode: StatusCodes.Status500InternalServerError);
        }

        return TypedResults.Ok(new InvocationResult());
    }

    private static TimerInvocation ReadTimer(JsonElement timer, TimeProvider time)
    {
        var pastDue = Property(timer, "IsPastDue") is { ValueKind: JsonValueKind.True };
        var status = Property(timer, "ScheduleStatus");
        return new TimerInvocation(
            pastDue,
            status is { } s ? Time(Property(s, "Last")) : null,
            status is { } s2 ? Time(Property(s2, "Next")) : time.GetUtcNow());
    }

    private static QueueInvocation ReadQueueMessage(JsonElement message, Dictionary<string, JsonElement>? metadata)
    {
        var dequeueCount = 1L;
        var id = "";
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata)
            {
                if (key.Equals("DequeueCount", StringComparison.OrdinalIgnoreCase))
                {
                    dequeueCount = value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) ? n
                        : long.TryParse(QueueMessageText.Decode(value), CultureInfo.InvariantCulture, out var parsed) ? parsed : 1;
                }
                else if (key.Equals("Id", StringComparison.OrdinalIgnoreCase))
                {
                    id = QueueMessageText.Decode(value);
                }
            }
        }

        return new QueueInvocation(id, QueueMessageText.Decode(message), dequeueCount);
    }

    private static JsonElement? Property(JsonElement element, string name)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        foreach (var property in element.EnumerateObject())
        {
            if (property.NameEquals(name) || property.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return property.Value;
            }
        }

        return null;
    }

    private static DateTimeOffset? Time(JsonElement? value) =>
        value is { ValueKind: JsonValueKind.String } v && DateTimeOffset.TryParse(v.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            ? at : null;
}

/// <summary>The host's invocation request; both members are keyed by binding name.</summary>
public sealed record InvocationRequest(Dictionary<string, JsonElement>? Data, Dictionary<string, JsonElement>? Metadata);

/// <summary>The response shape the host requires, in its own (Pascal) casing.</summary>
public sealed class InvocationResult
{
    [JsonPropertyName("Outputs")]
    public Dictionary<string, object?> Outputs { get; init; } = [];

    [JsonPropertyName("Logs")]
    public IReadOnlyList<string> Logs { get; init; } = [];

    [JsonPropertyName("ReturnValue")]
    public object? ReturnValue { get; init; }
}
