using System.ComponentModel;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Hosting;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Webhooks.Receivers;

public sealed record CreateReceiverRequest(
    string? Name, string? Action, string? Scheme,
    [property: Description("Any JSON object up to 4 KB, kept and shown with the receiver. For the stripe and github schemes, " +
        "options.secret is the signing secret the sender made (Stripe: the endpoint's whsec_... signing secret; 16 to 256 printable " +
        "ASCII characters): it is used instead of one Platform makes, stored sealed, never shown, and not kept in options.")]
    JsonElement? Options);

public sealed record ReceiverView(string Id, string Name, string Action, string Scheme, JsonElement? Options, string Url, IReadOnlyList<string> Permissions, string CreatedBy, DateTimeOffset CreatedAt)
{
    public static ReceiverView From(ReceiverEntity receiver, Uri publicBaseUrl) => new(
        receiver.Id, receiver.Name, receiver.Action, receiver.Scheme,
        receiver.Options is null ? null : JsonSerializer.Deserialize<JsonElement>(receiver.Options),
        UrlOf(receiver.Id, publicBaseUrl), receiver.ScopeList, receiver.CreatedBy, receiver.CreatedAt);

    public static string UrlOf(string id, Uri publicBaseUrl) => $"{publicBaseUrl.ToString().TrimEnd('/')}{HookEndpoint.Path}/{id}";
}

/// <summary>A receiver right after creation: the only time its <c>secret</c> is shown (null when the sender's own was given).</summary>
public sealed record CreatedReceiverView(
    string Id, string Url,
    [property: Description("The signing secret, shown only here; null when options.secret gave the sender's own, which is never shown.")]
    string? Secret,
    string Name, string Action, string Scheme, JsonElement? Options, IReadOnlyList<string> Permissions, DateTimeOffset CreatedAt);

public sealed record LineError(int Index, string Code, string Message);

public sealed record ReceivedMessageView(
    string Id, string WebhookId, string Status, string? Error, IReadOnlyList<LineError>? Errors, int? LinesApplied, int? LinesFailed, string? JobId,
    long Bytes, int Attempts, DateTimeOffset ReceivedAt, DateTimeOffset? ProcessedAt)
{
    public static ReceivedMessageView From(ReceivedMessageEntity m) => new(
        m.Id, m.WebhookId, m.Status, m.Error, m.Errors is null ? null : JsonSerializer.Deserialize<List<LineError>>(m.Errors, JsonSerializerOptions.Web),
        m.LinesApplied, m.LinesFailed, m.JobId, m.Bytes, m.Attempts, m.ReceivedAt, m.ProcessedAt);
}

/// <summary>
/// <c>/api/v1/webhooks/receivers</c>: create, list, read and delete the tenant's incoming webhook receivers, and list
/// what each received. Reading needs <c>webhooks.read</c>, changing <c>webhooks.manage</c>; creating also needs the
/// permission the receiver's action uses, which becomes the receiver's own (so it never does more than its creator).
/// </summary>
public static class ReceiversEndpoints
{
    public const string Path = "/api/v1/webhooks/receivers";
    private const int MaxOptionsBytes = 4096;

    public static RouteGroupBuilder Map(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Webhooks");
        group.MapPost("/", Create).RequirePermission(Permissions.WebhooksManage).WithIdempotency().WithName("CreateWebhookReceiver")
            .WithSummary("Creates an incoming webhook receiver: its public url and signing secret (shown only here; for stripe and github, options.secret may give the sender's own).");
        group.MapGet("/", List).RequirePermission(Permissions.WebhooksRead).WithName("ListWebhookReceivers").WithSummary("The tenant's webhook receivers, oldest first.");
        group.MapGet("/{id}", Get).RequirePermission(Permissions.WebhooksRead).WithName("GetWebhookReceiver").WithSummary("One webhook receiver, without its secret.");
        group.MapDelete("/{id}", Delete).RequirePermission(Permissions.WebhooksManage).WithName("DeleteWebhookReceiver")
            .WithSummary("Deletes the receiver: its URL stops accepting messages and its messages route is 404 at once; its messages are removed in the background.");
        group.MapGet("/{id}/messages", Messages).RequirePermission(Permissions.WebhooksRead).WithName("ListWebhookReceiverMessages")
            .WithSummary("What the receiver received, newest first: status (received, processing, succeeded, completed_with_errors, failed) and errors.");
        return group;
    }

    internal static async Task<Results<Created<CreatedReceiverView>, ProblemHttpResult>> Create(
        CreateReceiverRequest request, Caller caller, HttpContext http, ReceiverStore store, CallerPermissions callerPermissions,
        IOptions<ImportKindCatalog> imports, IOptions<ExportKindCatalog> exports, IOptions<ReceiverOptions> options, IOptions<PlatformOptions> platform,
        CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var name = validation.Text("name", request.Name, ReceiverStore.MaxNameLength);
        var action = request.Action;
        if (action is null || !ReceiverActions.All.Contains(action))
        {
            validation.Add("action", "must be inventory.movements, jobs.start or workflows.event");
        }

        var scheme = request.Scheme ?? ReceiverSchemes.Standard;
        if (!ReceiverSchemes.All.Contains(scheme))
        {
            validation.Add("scheme", "must be standard, github or stripe");
        }

        string? optionsJson = null;
        string? givenSecret = null;
        if (request.Options is { } given && given.ValueKind != JsonValueKind.Null)
        {
            optionsJson = given.GetRawText();
            if (given.ValueKind != JsonValueKind.Object)
            {
                validation.Add("options", "must be an object");
            }
            else if (optionsJson.Length > MaxOptionsBytes)
            {
                validation.Add("options", $"must be at most {MaxOptionsBytes} characters as JSON");
            }
            else if (!ReceiverStore.IsValidText(given))
            {
                validation.Add("options", "must hold valid Unicode text (no unpaired surrogate escapes)");
            }
            else if (given.TryGetProperty("secret", out _))
            {
                (optionsJson, givenSecret) = ReceiverSignatures.TakeGivenSecret(scheme, given, validation);
            }
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var held = await callerPermissions.ForAsync(caller, cancellationToken);
        var needed = action switch
        {
            ReceiverActions.InventoryMovements => Permissions.InventoryWrite,
            ReceiverActions.WorkflowsEvent => Permissions.WorkflowsManage,
            _ => Permissions.JobsWrite,
        };
        if (!held.Contains(needed))
        {
            return TypedResults.Problem(
                $"A receiver acts with its creator's permissions; {action} needs {needed}, which you do not hold.",
                statusCode: StatusCodes.Status403Forbidden, title: "Permission not held",
                extensions: new Dictionary<string, object?> { ["code"] = "permission_not_held", ["permissions"] = new[] { needed } });
        }

        // A jobs.start receiver may start the imports and exports its creator may start now, and no others.
        var scopes = new SortedSet<string>(StringComparer.Ordinal) { needed };
        if (action == ReceiverActions.JobsStart)
        {
            scopes.UnionWith(imports.Value.Kinds.Values.Concat(exports.Value.Kinds.Values).Where(held.Contains));
        }

        if (await store.CreateAsync(caller, name, action!, scheme, optionsJson, givenSecret, [.. scopes], cancellationToken) is not var (receiver, secret))
        {
            return Problems.Create(409, "receiver_limit_reached", "Too many receivers",
                $"A tenant has at most {options.Value.MaxReceiversPerTenant} webhook receivers; delete one you no longer use.");
        }

        http.Response.Headers.CacheControl = "no-store";
        var view = ReceiverView.From(receiver, platform.Value.PublicBaseUrl);
        return TypedResults.Created($"{Path}/{receiver.Id}",
            new CreatedReceiverView(view.Id, view.Url, secret, view.Name, view.Action, view.Scheme, view.Options, view.Permissions, view.CreatedAt));
    }

    internal static async Task<Results<Ok<PagedList<ReceiverView>>, ProblemHttpResult>> List(
        string? pageSize, string? continuationToken, Caller caller, ReceiverStore store, ContinuationTokens tokens, IOptions<PlatformOptions> platform,
        CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation);
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var query = $"receivers\n{size}";
        string? after = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, query, out after))
        {
            return ContinuationTokens.Invalid();
        }

        // A tenant has at most a few dozen receivers: one read of them all, paged in memory by id.
        var rest = (await store.ListAsync(caller.Tenant, cancellationToken)).Where(r => after is null || string.CompareOrdinal(r.Id, after) > 0).ToList();
        var page = rest.Take(size ?? Paging.DefaultPageSize).Select(r => ReceiverView.From(r, platform.Value.PublicBaseUrl)).ToList();
        var next = rest.Count > page.Count ? tokens.Create(caller.Tenant, query, page[^1].Id) : null;
        return TypedResults.Ok(new PagedList<ReceiverView>(page, next));
    }

    internal static async Task<Results<Ok<ReceiverView>, ProblemHttpResult>> Get(
        string id, Caller caller, HttpContext http, ReceiverStore store, IOptions<PlatformOptions> platform, CancellationToken cancellationToken) =>
        await store.GetAsync(caller.Tenant, id, cancellationToken) is { } receiver
            ? TypedResults.Ok(http.Tagged(receiver.ETag, ReceiverView.From(receiver, platform.Value.PublicBaseUrl)))
            : CommandError.NotFound("webhook receiver").ToProblem();

    internal static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        string id, Caller caller, HttpContext http, ReceiverStore store, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(caller.Tenant, id, cancellationToken) is not { } receiver)
        {
            return CommandError.NotFound("webhook receiver").ToProblem();
        }

        if (!ETags.IfMatchAllows(http.Request, receiver.ETag) || !await store.DeleteAsync(caller, receiver, cancellationToken))
        {
            return CommandError.Stale("webhook receiver").ToProblem();
        }

        return TypedResults.NoContent();
    }

    public sealed record MessagePosition(string? StorageToken);

    internal static async Task<Results<Ok<PagedList<ReceivedMessageView>>, ProblemHttpResult>> Messages(
        string id, string? pageSize, string? continuationToken, Caller caller, ReceiverStore store, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = Paging.Parse(pageSize, validation) ?? Paging.DefaultPageSize;
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        if (await store.GetAsync(caller.Tenant, id, cancellationToken) is null)
        {
            return CommandError.NotFound("webhook receiver").ToProblem();
        }

        var query = $"receiver-messages\n{id}\n{size}";
        MessagePosition? position = null;
        if (continuationToken is not null && !tokens.TryRead(continuationToken, caller.Tenant, query, out position))
        {
            return ContinuationTokens.Invalid();
        }

        var rows = store.Rows(caller.Tenant).QueryAsync<ReceivedMessageEntity>(ReceivedMessageEntity.PrefixFor(id), size, cancellationToken);
        await foreach (var page in rows.AsPages(position?.StorageToken, size))
        {
            var next = page.ContinuationToken is { } more ? tokens.Create(caller.Tenant, query, new MessagePosition(more)) : null;
            return TypedResults.Ok(new PagedList<ReceivedMessageView>([.. page.Values.Select(ReceivedMessageView.From)], next));
        }

        return TypedResults.Ok(new PagedList<ReceivedMessageView>([], null));
    }
}
