using System.Collections.Frozen;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Webhooks;

/// <summary>What a create or a patch may set; null members are left as they are (a patch) or defaulted (a create).</summary>
public sealed record EndpointInput(
    string? Url,
    IReadOnlyList<string>? Events,
    string? Description,
    bool? Enabled,
    IReadOnlyDictionary<string, string>? Headers,
    int? RateLimitPerSecond,
    bool ClearsRateLimit = false);

public sealed record IssuedEndpoint(EndpointEntity Endpoint, string Secret);

/// <summary>Creates, changes, rotates, disables and deletes endpoints; every change is an event on the one event path.</summary>
public sealed class WebhookCommands(
    WebhookDirectory directory,
    OutboundHttp outbound,
    EventPublisher events,
    CallerPermissions callerPermissions,
    IOptions<WebhookOptions> options,
    TimeProvider time)
{
    public const int MaxUrlLength = 2048;
    public const int MaxDescriptionLength = 500;
    public const int MaxEventPatterns = 100;
    public const int MaxHeaders = 20;
    public const int MaxHeaderNameLength = 64;
    public const int MaxHeaderValueLength = 1024;
    public const int MaxHeadersBytes = 4096;
    public const int MaxRateLimitPerSecond = 1000;
    public static readonly TimeSpan MaxGrace = TimeSpan.FromDays(7);
    public const int DefaultGraceSeconds = 86400;

    /// <summary>Headers the delivery itself sets or that would change how the request travels.</summary>
    private static readonly FrozenSet<string> ReservedHeaders = new[]
    {
        "host", "content-length", "content-type", "content-encoding", "transfer-encoding", "connection", "keep-alive", "te",
        "trailer", "upgrade", "expect", "user-agent", "cookie", "date", "via", "forwarded",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    private static readonly string[] ReservedHeaderPrefixes = ["webhook-", "proxy-", "sec-", "x-forwarded-"];

    public async Task<Outcome<IssuedEndpoint>> CreateAsync(Caller caller, EndpointInput input, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        if (input.Url is null)
        {
            validation.Add("url", "is required");
        }

        if (input.Events is null)
        {
            validation.Add("events", "is required: event type names, \"prefix.*\" or [\"*\"]");
        }

        var checkedInput = await CheckAsync(input, validation, cancellationToken);
        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        if (await SecurityEventsRefusalAsync(caller, checkedInput.Events!, cancellationToken) is { } refused)
        {
            return refused;
        }

        var now = time.GetUtcNow();
        var id = Ids.New(time);
        var secret = WebhookSigner.NewSecret();
        var endpoint = new EndpointEntity
        {
            RowKey = WebhookRows.Endpoint(id),
            Id = id,
            Url = checkedInput.Url!,
            Events = JsonSerializer.Serialize(checkedInput.Events),
            Description = checkedInput.Description ?? "",
            Enabled = checkedInput.Enabled ?? true,
            Headers = JsonSerializer.Serialize(checkedInput.Headers ?? new Dictionary<string, string>()),
            RateLimitPerSecond = checkedInput.RateLimitPerSecond,
            Secret = directory.Seal(caller.Tenant, id, WebhookSigner.KeyOf(secret)),
            CreatedAt = now,
            UpdatedAt = now,
        };

        // The count row and the endpoint in one transaction: two creates at once cannot both take the last place.
        var rows = directory.Rows(caller.Tenant);
        for (var attempt = 0; ; attempt++)
        {
            var count = await rows.GetAsync<EndpointCountEntity>(WebhookRows.CountKey, cancellationToken);
            if ((count?.Count ?? 0) >= options.Value.MaxEndpointsPerTenant)
            {
                return CommandError.Conflict("webhook_endpoint_limit_reached",
                    $"A tenant has at most {options.Value.MaxEndpointsPerTenant} webhook endpoints; delete one you no longer use.");
            }

            var counter = new EndpointCountEntity { RowKey = WebhookRows.CountKey, Count = (count?.Count ?? 0) + 1 };
            TableTransactionAction counting = count is null
                ? new(TableTransactionActionType.Add, counter)
                : new(TableTransactionActionType.UpdateReplace, counter, count.ETag);
            try
            {
                // The event commits with the endpoint (its outbox row last).
                var responses = await events.CommitAsync(rows, [counting, new(TableTransactionActionType.Add, endpoint)],
                    [new PlatformEvent("webhook.endpoint.created", caller.Actor, "webhook_endpoint", id,
                        new Dictionary<string, object?> { ["url"] = endpoint.ShownUrl, ["events"] = checkedInput.Events })],
                    cancellationToken);
                endpoint.ETag = responses.Value[1].Headers.ETag ?? default;
                break;
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412 && attempt < 10)
            {
            }
        }

        directory.Forget(caller.Tenant);
        return new IssuedEndpoint(endpoint, secret);
    }

    public async Task<Outcome<EndpointEntity>> UpdateAsync(Caller caller, string id, EndpointInput input, Func<ETag, bool> precondition, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var checkedInput = await CheckAsync(input, validation, cancellationToken);
        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        if (await directory.GetAsync(caller.Tenant, id, cancellationToken) is not { } endpoint)
        {
            return CommandError.NotFound("webhook endpoint");
        }

        if (!precondition(endpoint.ETag))
        {
            return CommandError.Stale("webhook endpoint");
        }

        // Pointing an endpoint that hears security events somewhere new is as good as subscribing it.
        if ((checkedInput.Url is not null || checkedInput.Events is not null) &&
            await SecurityEventsRefusalAsync(caller, checkedInput.Events ?? endpoint.EventList, cancellationToken) is { } refused)
        {
            return refused;
        }

        var changes = new Dictionary<string, object?>();
        if (checkedInput.Url is { } url)
        {
            endpoint.Url = url;
            changes["url"] = endpoint.ShownUrl;
        }

        if (checkedInput.Events is { } patterns)
        {
            endpoint.Events = JsonSerializer.Serialize(patterns);
            changes["events"] = patterns;
        }

        if (checkedInput.Description is { } description)
        {
            endpoint.Description = description;
            changes["description"] = description;
        }

        if (checkedInput.Headers is { } headers)
        {
            endpoint.Headers = JsonSerializer.Serialize(headers);
            changes["headers"] = headers.Keys.ToArray();
        }

        if (checkedInput.RateLimitPerSecond is { } rate)
        {
            endpoint.RateLimitPerSecond = rate;
            changes["rateLimitPerSecond"] = rate;
        }
        else if (input.ClearsRateLimit)
        {
            endpoint.RateLimitPerSecond = null;
            changes["rateLimitPerSecond"] = null;
        }

        if (checkedInput.Enabled is { } enabled && enabled != endpoint.Enabled)
        {
            endpoint.Enabled = enabled;
            endpoint.DisabledReason = enabled ? null : "disabled_by_user";
            endpoint.DisabledAt = enabled ? null : time.GetUtcNow();
            endpoint.EnabledAt = enabled ? time.GetUtcNow() : endpoint.EnabledAt;
            changes["enabled"] = enabled;
        }

        endpoint.UpdatedAt = time.GetUtcNow();
        try
        {
            await events.CommitAsync(directory.Rows(caller.Tenant), new TableTransactionAction(TableTransactionActionType.UpdateReplace, endpoint, endpoint.ETag),
                [new PlatformEvent("webhook.endpoint.updated", caller.Actor, "webhook_endpoint", id, changes)], cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
            return CommandError.Stale("webhook endpoint");
        }

        directory.Forget(caller.Tenant);
        return endpoint;
    }

    public async Task<Outcome<bool>> DeleteAsync(Caller caller, string id, Func<ETag, bool> precondition, CancellationToken cancellationToken)
    {
        if (await directory.GetAsync(caller.Tenant, id, cancellationToken) is not { } endpoint)
        {
            return CommandError.NotFound("webhook endpoint");
        }

        if (!precondition(endpoint.ETag))
        {
            return CommandError.Stale("webhook endpoint");
        }

        var rows = directory.Rows(caller.Tenant);
        for (var attempt = 0; ; attempt++)
        {
            var count = await rows.GetAsync<EndpointCountEntity>(WebhookRows.CountKey, cancellationToken);
            var actions = new List<TableTransactionAction> { new(TableTransactionActionType.Delete, endpoint, endpoint.ETag) };
            if (count is not null)
            {
                actions.Add(new(TableTransactionActionType.UpdateReplace,
                    new EndpointCountEntity { RowKey = WebhookRows.CountKey, Count = Math.Max(0, count.Count - 1) }, count.ETag));
            }

            try
            {
                // The delete is the decisive write (the backlog removed below is cleanup): the event commits with it, last.
                await events.CommitAsync(rows, actions, [new PlatformEvent("webhook.endpoint.deleted", caller.Actor, "webhook_endpoint", id)], cancellationToken);
                break;
            }
            catch (TableTransactionFailedException ex) when (ex.FailedTransactionActionIndex == 0)
            {
                return CommandError.Stale("webhook endpoint");
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 412 && attempt < 10)
            {
            }
        }

        directory.Forget(caller.Tenant);

        // Its backlog goes with it; the log stays until it expires (deliveries already made are history).
        await foreach (var pending in rows.QueryAsync<PendingEntity>(WebhookRows.PendingPrefix(id), cancellationToken: cancellationToken))
        {
            await rows.DeleteAsync(pending.RowKey, cancellationToken: cancellationToken);
        }

        return true;
    }

    public async Task<Outcome<IssuedEndpoint>> RotateSecretAsync(Caller caller, string id, int? graceSeconds, CancellationToken cancellationToken)
    {
        var grace = graceSeconds ?? DefaultGraceSeconds;
        if (grace < 0 || grace > MaxGrace.TotalSeconds)
        {
            return CommandError.Invalid(new Validation().Add("graceSeconds", $"must be from 0 to {(int)MaxGrace.TotalSeconds} (7 days)"));
        }

        if (await directory.GetAsync(caller.Tenant, id, cancellationToken) is not { } endpoint)
        {
            return CommandError.NotFound("webhook endpoint");
        }

        var now = time.GetUtcNow();
        var secret = WebhookSigner.NewSecret();
        endpoint.PreviousSecret = grace > 0 ? endpoint.Secret : null;
        endpoint.PreviousSecretUntil = grace > 0 ? now.AddSeconds(grace) : null;
        endpoint.Secret = directory.Seal(caller.Tenant, id, WebhookSigner.KeyOf(secret));
        endpoint.UpdatedAt = now;
        try
        {
            await events.CommitAsync(directory.Rows(caller.Tenant), new TableTransactionAction(TableTransactionActionType.UpdateReplace, endpoint, endpoint.ETag),
                [new PlatformEvent("webhook.endpoint.secret_rotated", caller.Actor, "webhook_endpoint", id, new Dictionary<string, object?> { ["graceSeconds"] = grace })],
                cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
            return CommandError.Stale("webhook endpoint");
        }

        directory.Forget(caller.Tenant);
        return new IssuedEndpoint(endpoint, secret);
    }

    /// <summary>
    /// Disables an endpoint the system gave up on (410 Gone, or failing for days); false when it was already disabled.
    /// The event goes to the tenant's other endpoints and the audit trail.
    /// </summary>
    public async Task<bool> DisableAsync(TenantId tenant, string id, string reason, DateTimeOffset? failingSince, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            if (await directory.GetAsync(tenant, id, cancellationToken) is not { Enabled: true } endpoint)
            {
                return false;
            }

            endpoint.Enabled = false;
            endpoint.DisabledReason = reason;
            endpoint.DisabledAt = time.GetUtcNow();
            try
            {
                await events.CommitAsync(directory.Rows(tenant), new TableTransactionAction(TableTransactionActionType.UpdateReplace, endpoint, endpoint.ETag),
                    [new PlatformEvent(EventCatalogue.EndpointDisabledEvent, Actor.System, "webhook_endpoint", id,
                        new Dictionary<string, object?> { ["reason"] = reason, ["url"] = endpoint.ShownUrl, ["failingSince"] = failingSince })],
                    cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status == 412)
            {
                continue;
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                return false;
            }

            directory.Forget(tenant);
            return true;
        }

        return false;
    }

    /// <summary>
    /// Event families that are the audit trail's (sign-ins, users, keys, roles, the tenant), with their field-level
    /// changes: an endpoint may receive them only from someone who may read the audit log.
    /// </summary>
    public static readonly IReadOnlyList<string> SecurityPrefixes = ["auth.", "user.", "apikey.", "role.", "tenant."];

    /// <summary>Whether the filter lets any security event through (<c>*</c>, <c>auth.*</c>, <c>user.created</c> ...).</summary>
    public static bool HearsSecurityEvents(IReadOnlyList<string> patterns) =>
        EventCatalogue.Types.Any(type => SecurityPrefixes.Any(p => type.StartsWith(p, StringComparison.Ordinal)) && EventCatalogue.Matches(patterns, type));

    private async Task<CommandError?> SecurityEventsRefusalAsync(Caller caller, IReadOnlyList<string> patterns, CancellationToken cancellationToken)
    {
        if (!HearsSecurityEvents(patterns) || (await callerPermissions.ForAsync(caller, cancellationToken)).Contains(Permissions.AuditRead))
        {
            return null;
        }

        return new CommandError(403, "permission_not_held",
            $"These events include security events (auth, user, apikey, role, tenant) with their changes, which only someone holding {Permissions.AuditRead} may receive.")
        {
            Title = "Permission not held",
        };
    }

    /// <summary>Checks and normalises what is present; the URL is also checked against the SSRF rules.</summary>
    private async Task<EndpointInput> CheckAsync(EndpointInput input, Validation validation, CancellationToken cancellationToken)
    {
        string? url = null;
        if (input.Url is { } rawUrl)
        {
            url = rawUrl.Trim();
            if (url.Length > MaxUrlLength)
            {
                validation.Add("url", $"must be at most {MaxUrlLength} characters");
            }
            else if (await outbound.CheckUrlAsync(url, cancellationToken) is { } refusal)
            {
                validation.Add("url", refusal);
            }
        }

        List<string>? patterns = null;
        if (input.Events is { } requested)
        {
            patterns = [];
            if (requested.Count == 0 || requested.Count > MaxEventPatterns)
            {
                validation.Add("events", $"must list 1 to {MaxEventPatterns} event types (GET /api/v1/webhooks/event-types lists them), \"prefix.*\" or \"*\"");
            }
            else
            {
                foreach (var pattern in requested)
                {
                    if (pattern is null || !EventCatalogue.IsValidPattern(pattern))
                    {
                        validation.Add("events", $"'{Echo(pattern)}' is not an event type, \"prefix.*\" of one, or \"*\"");
                    }
                    else if (!patterns.Contains(pattern))
                    {
                        patterns.Add(pattern);
                    }
                }
            }
        }

        string? description = null;
        if (input.Description is { } rawDescription)
        {
            description = rawDescription.Trim();
            if (description.Length > MaxDescriptionLength)
            {
                validation.Add("description", $"must be at most {MaxDescriptionLength} characters");
            }
        }

        Dictionary<string, string>? headers = null;
        if (input.Headers is { } requestedHeaders)
        {
            headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (requestedHeaders.Count > MaxHeaders)
            {
                validation.Add("headers", $"must hold at most {MaxHeaders} headers");
            }
            else
            {
                foreach (var (name, value) in requestedHeaders)
                {
                    if (HeaderProblem(name, value) is { } problem)
                    {
                        validation.Add("headers", $"'{Echo(name)}' {problem}");
                    }
                    else if (!headers.TryAdd(name, value))
                    {
                        validation.Add("headers", $"'{Echo(name)}' is given twice");
                    }
                }

                if (headers.Sum(h => h.Key.Length + h.Value.Length + 4) > MaxHeadersBytes)
                {
                    validation.Add("headers", $"must total at most {MaxHeadersBytes} bytes");
                }
            }
        }

        if (input.RateLimitPerSecond is { } rate && (rate < 1 || rate > MaxRateLimitPerSecond))
        {
            validation.Add("rateLimitPerSecond", $"must be from 1 to {MaxRateLimitPerSecond} deliveries per second, or null for no limit");
        }

        return new EndpointInput(url, patterns, description, input.Enabled, headers, input.RateLimitPerSecond);
    }

    private static string? HeaderProblem(string name, string? value)
    {
        if (name.Length == 0 || name.Length > MaxHeaderNameLength || !name.All(IsTokenChar))
        {
            return $"is not a header name (1 to {MaxHeaderNameLength} letters, digits and !#$%&'*+-.^_`|~)";
        }

        if (ReservedHeaders.Contains(name) || ReservedHeaderPrefixes.Any(p => name.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
        {
            return "is set by the delivery itself and cannot be overridden";
        }

        if (value is null || value.Length > MaxHeaderValueLength || value.Any(c => c is < ' ' and not '\t' or > '~'))
        {
            return $"needs a value of at most {MaxHeaderValueLength} visible ASCII characters";
        }

        return null;
    }

    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);

    private static string Echo(string? value) => value is null ? "null" : value.Length > 64 ? value[..64] + "…" : value;
}
