using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Roles;

namespace Platform.Functions.Webhooks;

/// <summary>An endpoint as the API shows it: never its secret; custom header values are write-only (shown masked).</summary>
public sealed record EndpointView(
    string Id,
    string Url,
    string Description,
    IReadOnlyList<string> Events,
    bool Enabled,
    string? DisabledReason,
    DateTimeOffset? DisabledAt,
    IReadOnlyDictionary<string, string> Headers,
    int? RateLimitPerSecond,
    DateTimeOffset? PreviousSecretValidUntil,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public const string MaskedValue = "********";

    public static EndpointView From(EndpointEntity e, DateTimeOffset now) => new(
        e.Id, e.Url, e.Description, e.EventList, e.Enabled, e.DisabledReason, e.DisabledAt,
        e.HeaderMap.ToDictionary(h => h.Key, _ => MaskedValue), e.RateLimitPerSecond,
        e.PreviousSecret is not null && e.PreviousSecretUntil > now ? e.PreviousSecretUntil : null, e.CreatedAt, e.UpdatedAt);
}

/// <summary>An endpoint right after creation or rotation: the only time its <c>secret</c> is shown.</summary>
public sealed record EndpointSecretView(
    string Id, string Url, string Description, IReadOnlyList<string> Events, bool Enabled, IReadOnlyDictionary<string, string> Headers,
    int? RateLimitPerSecond, DateTimeOffset? PreviousSecretValidUntil, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, string Secret)
{
    public static EndpointSecretView From(IssuedEndpoint issued, DateTimeOffset now)
    {
        var v = EndpointView.From(issued.Endpoint, now);
        return new(v.Id, v.Url, v.Description, v.Events, v.Enabled, v.Headers, v.RateLimitPerSecond, v.PreviousSecretValidUntil, v.CreatedAt, v.UpdatedAt, issued.Secret);
    }
}

public sealed record DeliveryView(
    string Id,
    string EndpointId,
    string EventId,
    string EventType,
    int Attempt,
    string Status,
    int? ResponseStatus,
    string? ResponseBody,
    string? Error,
    long? DurationMs,
    DateTimeOffset? At,
    DateTimeOffset? NextAttemptAt,
    DateTimeOffset CreatedAt,
    IReadOnlyList<DeliveryAttempt> Attempts)
{
    public static DeliveryView From(DeliveryEntity d) => new(
        d.Id, d.EndpointId, d.EventId, d.EventType, d.Attempt, d.Status, d.ResponseStatus, d.ResponseBody, d.Error, d.DurationMs, d.At,
        d.NextAttemptAt, d.CreatedAt, JsonSerializer.Deserialize<List<DeliveryAttempt>>(d.Attempts) ?? []);
}

public sealed record CreateEndpointRequest(
    string? Url, IReadOnlyList<string?>? Events, string? Description, bool? Enabled, Dictionary<string, string?>? Headers, int? RateLimitPerSecond);

public sealed record RotateSecretRequest(int? GraceSeconds);

public sealed record RecoverRequest(DateTimeOffset? Since);

/// <summary>How many messages a recover sent again; <c>More</c>: others remain, call again.</summary>
public sealed record RecoverResult(int Recovered, bool More);

public sealed record EventTypeList(IReadOnlyList<EventTypeView> Items);

/// <summary><c>/api/v1/webhooks</c>: the event catalogue, endpoints, their deliveries, replay, recover and test.</summary>
public static class WebhookEndpoints
{
    public const string Path = "/api/v1/webhooks";

    internal static void Map(RouteGroupBuilder group)
    {
        group.MapGet("/event-types", EventTypes).RequirePermission(Permissions.WebhooksRead).WithName("ListWebhookEventTypes")
            .WithSummary("Every event type endpoints can subscribe to, with a description and an example body.");
        var endpoints = group.MapGroup("/endpoints");
        endpoints.MapGet("/", List).RequirePermission(Permissions.WebhooksRead).WithName("ListWebhookEndpoints").WithSummary("The tenant's webhook endpoints, oldest first.");
        endpoints.MapPost("/", Create).RequirePermission(Permissions.WebhooksManage).WithIdempotency().WithName("CreateWebhookEndpoint")
            .WithSummary("Creates an endpoint; its signing secret (whsec_...) is in the response, and only there. At most 50 per tenant (409 webhook_endpoint_limit_reached).");
        endpoints.MapGet("/{id}", Get).RequirePermission(Permissions.WebhooksRead).WithName("GetWebhookEndpoint").WithSummary("One endpoint, without its secret.");
        endpoints.MapPatch("/{id}", Update).RequirePermission(Permissions.WebhooksManage).WithName("UpdateWebhookEndpoint")
            .WithSummary("Changes url, events, description, enabled, headers (replaced whole) or rateLimitPerSecond.");
        endpoints.MapDelete("/{id}", Delete).RequirePermission(Permissions.WebhooksManage).WithName("DeleteWebhookEndpoint").WithSummary("Deletes an endpoint and its pending deliveries.");
        endpoints.MapPost("/{id}/rotate-secret", Rotate).RequirePermission(Permissions.WebhooksManage).WithName("RotateWebhookSecret")
            .WithSummary("Gives the endpoint a new secret; the old one also signs for graceSeconds (default 86400, at most 604800).");
        endpoints.MapPost("/{id}/test", Test).RequirePermission(Permissions.WebhooksManage).WithName("TestWebhookEndpoint").WithSummary("Sends a webhook.test event to the endpoint.");
        endpoints.MapPost("/{id}/recover", Recover).RequirePermission(Permissions.WebhooksManage).WithName("RecoverWebhookEndpoint")
            .WithSummary("Sends again every message whose latest delivery failed since `since` (at most 30 days back), oldest first, at most 1,000 per call (`more: true` when others remain).");
        endpoints.MapGet("/{id}/deliveries", Deliveries).RequirePermission(Permissions.WebhooksRead).WithName("ListWebhookDeliveries")
            .WithSummary("The endpoint's deliveries, newest first, with their attempts; kept 30 days.");
        group.MapPost("/deliveries/{id}/replay", Replay).RequirePermission(Permissions.WebhooksManage).WithName("ReplayWebhookDelivery")
            .WithSummary("Sends a delivery again (a new delivery with the same event and webhook-id).");
    }

    internal static Ok<EventTypeList> EventTypes() => TypedResults.Ok(new EventTypeList(EventCatalogue.All));

    internal static async Task<Results<Ok<PagedList<EndpointView>>, ProblemHttpResult>> List(
        string? pageSize, string? continuationToken, Caller caller, WebhookDirectory directory, ContinuationTokens tokens, TimeProvider time, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (Paging.Parse(pageSize, validation) is not { } size)
        {
            return validation.ToProblem();
        }

        string? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, "webhook-endpoints", out after))
        {
            return ContinuationTokens.Invalid();
        }

        var now = time.GetUtcNow();
        var rest = (await directory.ListAsync(caller.Tenant, cancellationToken)).Where(e => after is null || string.CompareOrdinal(e.Id, after) > 0).ToList();
        var page = rest.Take(size).Select(e => EndpointView.From(e, now)).ToList();
        return TypedResults.Ok(new PagedList<EndpointView>(page, rest.Count > size ? tokens.Create(caller.Tenant, "webhook-endpoints", page[^1].Id) : null));
    }

    internal static async Task<Results<Created<EndpointSecretView>, ProblemHttpResult>> Create(
        CreateEndpointRequest request, Caller caller, HttpContext http, WebhookCommands commands, TimeProvider time, CancellationToken cancellationToken)
    {
        var headers = request.Headers?.ToDictionary(h => h.Key, h => h.Value!);
        var input = new EndpointInput(request.Url, request.Events?.Select(e => e!).ToList(), request.Description, request.Enabled, headers, request.RateLimitPerSecond);
        return (await commands.CreateAsync(caller, input, cancellationToken)).ToResult(issued =>
        {
            http.Response.Headers.CacheControl = "no-store";
            return TypedResults.Created($"{Path}/endpoints/{issued.Endpoint.Id}", http.Tagged(issued.Endpoint.ETag, EndpointSecretView.From(issued, time.GetUtcNow())));
        });
    }

    internal static async Task<Results<Ok<EndpointView>, ProblemHttpResult>> Get(
        string id, Caller caller, HttpContext http, WebhookDirectory directory, TimeProvider time, CancellationToken cancellationToken) =>
        await directory.GetAsync(caller.Tenant, id, cancellationToken) is { } endpoint
            ? TypedResults.Ok(http.Tagged(endpoint.ETag, EndpointView.From(endpoint, time.GetUtcNow())))
            : CommandError.NotFound("webhook endpoint").ToProblem();

    internal static async Task<Results<Ok<EndpointView>, ProblemHttpResult>> Update(
        string id, JsonElement request, Caller caller, HttpContext http, WebhookCommands commands, TimeProvider time, CancellationToken cancellationToken)
    {
        if (EndpointPatch.Read(request) is not { } input)
        {
            return EndpointPatch.Errors(request).ToProblem();
        }

        return (await commands.UpdateAsync(caller, id, input, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken))
            .ToResult(endpoint => TypedResults.Ok(http.Tagged(endpoint.ETag, EndpointView.From(endpoint, time.GetUtcNow()))));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        string id, Caller caller, HttpContext http, WebhookCommands commands, CancellationToken cancellationToken) =>
        (await commands.DeleteAsync(caller, id, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken)).ToResult(_ => TypedResults.NoContent());

    internal static async Task<Results<Ok<EndpointSecretView>, ProblemHttpResult>> Rotate(
        string id, RotateSecretRequest? request, Caller caller, HttpContext http, WebhookCommands commands, TimeProvider time, CancellationToken cancellationToken) =>
        (await commands.RotateSecretAsync(caller, id, request?.GraceSeconds, cancellationToken)).ToResult(issued =>
        {
            http.Response.Headers.CacheControl = "no-store";
            return TypedResults.Ok(http.Tagged(issued.Endpoint.ETag, EndpointSecretView.From(issued, time.GetUtcNow())));
        });

    internal static async Task<Results<Accepted<DeliveryView>, ProblemHttpResult>> Test(
        string id, Caller caller, WebhookDirectory directory, WebhookDeliveries deliveries, CancellationToken cancellationToken)
    {
        if (await EnabledEndpointAsync(caller, id, directory, cancellationToken) is { } problem)
        {
            return problem;
        }

        var endpoint = (await directory.GetAsync(caller.Tenant, id, cancellationToken))!;
        var delivery = await deliveries.TestAsync(caller.Tenant, endpoint, caller.Actor, cancellationToken);
        return TypedResults.Accepted($"{Path}/endpoints/{id}/deliveries", DeliveryView.From(delivery));
    }

    internal static async Task<Results<Accepted<RecoverResult>, ProblemHttpResult>> Recover(
        string id, RecoverRequest? request, Caller caller, WebhookDirectory directory, WebhookDeliveries deliveries, TimeProvider time, CancellationToken cancellationToken)
    {
        if (request?.Since is not { } since || since > time.GetUtcNow())
        {
            return new Validation().Add("since", "is required: a time in the past (ISO 8601)").ToProblem();
        }

        if (await EnabledEndpointAsync(caller, id, directory, cancellationToken) is { } problem)
        {
            return problem;
        }

        var (count, more) = await deliveries.RecoverAsync(caller.Tenant, id, since, cancellationToken);
        return TypedResults.Accepted($"{Path}/endpoints/{id}/deliveries", new RecoverResult(count, more));
    }

    internal static async Task<Results<Ok<PagedList<DeliveryView>>, ProblemHttpResult>> Deliveries(
        string id, string? pageSize, string? continuationToken, Caller caller, WebhookDirectory directory, WebhookDeliveries deliveries,
        ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (Paging.Parse(pageSize, validation) is not { } size)
        {
            return validation.ToProblem();
        }

        string? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, "webhook-deliveries:" + id, out after))
        {
            return ContinuationTokens.Invalid();
        }

        if (await directory.GetAsync(caller.Tenant, id, cancellationToken) is null)
        {
            return CommandError.NotFound("webhook endpoint").ToProblem();
        }

        var (items, next) = await deliveries.PageAsync(caller.Tenant, id, size, after, cancellationToken);
        return TypedResults.Ok(new PagedList<DeliveryView>([.. items.Select(DeliveryView.From)],
            next is null ? null : tokens.Create(caller.Tenant, "webhook-deliveries:" + id, next)));
    }

    internal static async Task<Results<Accepted<DeliveryView>, ProblemHttpResult>> Replay(
        string id, Caller caller, WebhookDirectory directory, WebhookDeliveries deliveries, CancellationToken cancellationToken)
    {
        if (await deliveries.FindAsync(caller.Tenant, id, cancellationToken) is not { } original)
        {
            return CommandError.NotFound("webhook delivery").ToProblem();
        }

        if (await EnabledEndpointAsync(caller, original.EndpointId, directory, cancellationToken) is { } problem)
        {
            return problem;
        }

        var replay = await deliveries.ReplayAsync(caller.Tenant, original, cancellationToken);
        return TypedResults.Accepted($"{Path}/endpoints/{original.EndpointId}/deliveries", DeliveryView.From(replay));
    }

    private static async Task<ProblemHttpResult?> EnabledEndpointAsync(Caller caller, string id, WebhookDirectory directory, CancellationToken cancellationToken) =>
        await directory.GetAsync(caller.Tenant, id, cancellationToken) switch
        {
            null => CommandError.NotFound("webhook endpoint").ToProblem(),
            { Enabled: false } => Problems.Create(StatusCodes.Status409Conflict, "webhook_endpoint_disabled", "Endpoint disabled",
                "The endpoint is disabled; enable it (PATCH enabled: true) first."),
            _ => null,
        };
}

/// <summary>Reads a PATCH body: present members change, absent ones stay; a wrong type is a field error.</summary>
internal static class EndpointPatch
{
    public static EndpointInput? Read(JsonElement body) => Parse(body, new Validation());

    public static CommandError Errors(JsonElement body)
    {
        var validation = new Validation();
        Parse(body, validation);
        return CommandError.Invalid(validation.IsValid ? validation.Add("body", "must be a JSON object") : validation);
    }

    private static EndpointInput? Parse(JsonElement body, Validation validation)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            validation.Add("body", "must be a JSON object");
            return null;
        }

        string? url = null, description = null;
        List<string>? events = null;
        bool? enabled = null;
        Dictionary<string, string>? headers = null;
        int? rate = null;
        var clearsRate = false;
        foreach (var property in body.EnumerateObject())
        {
            var value = property.Value;
            switch (property.Name)
            {
                case "url" when value.ValueKind == JsonValueKind.String:
                    url = value.GetString();
                    break;
                case "description" when value.ValueKind is JsonValueKind.String or JsonValueKind.Null:
                    description = value.GetString() ?? "";
                    break;
                case "enabled" when value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    enabled = value.GetBoolean();
                    break;
                case "events" when value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String):
                    events = [.. value.EnumerateArray().Select(e => e.GetString()!)];
                    break;
                case "headers" when value.ValueKind == JsonValueKind.Null:
                    headers = [];
                    break;
                case "headers" when value.ValueKind == JsonValueKind.Object && value.EnumerateObject().All(h => h.Value.ValueKind == JsonValueKind.String):
                    headers = value.EnumerateObject().GroupBy(h => h.Name).ToDictionary(g => g.Key, g => g.Last().Value.GetString()!);
                    break;
                case "rateLimitPerSecond" when value.ValueKind == JsonValueKind.Null:
                    clearsRate = true;
                    break;
                case "rateLimitPerSecond" when value.ValueKind == JsonValueKind.Number:
                    rate = value.TryGetInt32(out var r) ? r : -1;
                    break;
                case "url" or "description" or "enabled" or "events" or "headers" or "rateLimitPerSecond":
                    validation.Add(property.Name, "has the wrong type");
                    break;
                default:
                    // Read-only or unknown members (id, createdAt, secret ...) are ignored, so a GET body can be sent back.
                    break;
            }
        }

        return validation.IsValid ? new EndpointInput(url, events, description, enabled, headers, rate, clearsRate) : null;
    }
}
