using System.Text.Json;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Inventory;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>What an action did with a message.</summary>
internal sealed record ActionResult(string Status, string? Error = null, IReadOnlyList<LineError>? Errors = null, int? Applied = null, int? Failed = null, string? JobId = null)
{
    public static ActionResult Fail(string error) => new(MessageStatus.Failed, error);
}

/// <summary>
/// The <c>WebhookReceipts</c> queue function: runs a received message's action as its receiver - the receiver's
/// creator narrowed to the receiver's permissions, named in the audit trail as the receiver (<c>actorType</c>
/// <c>receiver</c>) - and records the outcome on the message row. Delivery is at least once, so every action is
/// idempotent per message: movement lines record under <c>webhook:{receiver}:{message}#{index}</c> (the marker commits
/// with the movement), a job starts under an id derived from the message, and a message already finished is left
/// alone. A message that keeps failing is recorded as failed on its last attempt.
/// </summary>
/// <remarks>
/// One run at a time: the message row moves to <c>processing</c> under the ETag it was read with, so of two runs that
/// read it together one wins and the other stops. A run that finds it <c>processing</c> by another queue message leaves
/// it to that one (whose queue message is deleted only once the row is final, so it comes back after a crash) and
/// looks again when <see cref="ReceiverOptions.ProcessingLease"/> ends, taking it over if it is still not final then.
/// Its own queue message, handed out again after a crash, takes it over at once.
/// </remarks>
public sealed partial class ReceiptProcessor(
    ReceiverStore store,
    MovementCommands movements,
    InventoryStore inventory,
    JobCommands jobs,
    CallerPermissions permissions,
    ApiKeys.ApiKeyStore apiKeys,
    OutboundHttp outbound,
    EventPublisher events,
    IServiceProvider services,
    IOptions<ImportKindCatalog> imports,
    IOptions<ExportKindCatalog> exports,
    IOptions<ReceiverOptions> options,
    IOptions<TriggerOptions> triggers,
    TimeProvider time,
    ILogger<ReceiptProcessor> logger) : IQueueHandler
{
    public const string FunctionName = "WebhookReceipts";

    /// <summary>Errors kept per message; the counts tell how many there were in all.</summary>
    private const int MaxErrorsKept = 100;

    public async Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
    {
        var work = Read(message.Text);
        var dequeueCount = message.DequeueCount;
        var tenant = new TenantId(work.Tenant);
        var receiver = await store.GetAsync(tenant, work.ReceiverId, cancellationToken);
        var rows = store.Rows(tenant);
        var received = receiver is null ? null : await rows.GetAsync<ReceivedMessageEntity>(work.MessageKey, cancellationToken);
        if (receiver is null || received is null || MessageStatus.IsFinal(received.Status))
        {
            // Deleted with its receiver, or done by an earlier delivery of this queue message.
            return;
        }

        var now = time.GetUtcNow();
        var lease = options.Value.ProcessingLease;
        if (received.Status == MessageStatus.Processing && !(received.ProcessingBy is { Length: > 0 } by && by == message.Id) &&
            received.ProcessingSince + lease is { } leasedUntil && leasedUntil > now)
        {
            // Another run holds it. Look again once its lease ends, in case that run and its queue message are gone.
            await store.EnqueueAsync(tenant, received, cancellationToken, leasedUntil - now + TimeSpan.FromSeconds(1));
            return;
        }

        received.Status = MessageStatus.Processing;
        received.Attempts++;
        received.ProcessingBy = message.Id;
        received.ProcessingSince = now;
        try
        {
            await rows.UpdateAsync(received, received.ETag, cancellationToken);
        }
        catch (Azure.RequestFailedException ex) when (ex.Status == 412)
        {
            // Another run moved it first: that one acts on it.
            return;
        }

        ActionResult result;
        try
        {
            result = await RunAsync(tenant, receiver, received, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && dequeueCount >= triggers.Value.MaxDequeueCount)
        {
            LogGaveUp(logger, received.Id, receiver.Id, ex.Message);
            result = ActionResult.Fail($"The message could not be processed after {dequeueCount} attempts.");
        }

        received.Status = result.Status;
        received.Error = result.Error;
        received.Errors = result.Errors is { Count: > 0 } errors ? JsonSerializer.Serialize(errors.Take(MaxErrorsKept), JsonSerializerOptions.Web) : null;
        received.LinesApplied = result.Applied;
        received.LinesFailed = result.Failed;
        received.JobId = result.JobId;
        received.ProcessedAt = time.GetUtcNow();
        // The final status is the decisive write (a message found final is never handled again): the event commits with
        // it, conditioned on the row this run holds.
        try
        {
            await events.CommitAsync(rows, new Azure.Data.Tables.TableTransactionAction(Azure.Data.Tables.TableTransactionActionType.UpdateReplace, received, received.ETag),
                [new PlatformEvent("webhook.message.processed", ActorOf(receiver), "receiver", receiver.Id,
                    new Dictionary<string, object?> { ["messageId"] = received.Id, ["webhookId"] = received.WebhookId, ["status"] = received.Status, ["jobId"] = received.JobId })],
                cancellationToken);
        }
        catch (Azure.RequestFailedException ex) when (ex.Status == 412)
        {
            // Taken over after the lease ran out: the run that holds it now records the outcome (its actions are the
            // same, applied once).
        }
    }

    /// <summary>The receiver as a caller: its creator, through a sessionless credential narrowed to the receiver's scopes.</summary>
    public static Caller CallerOf(TenantId tenant, ReceiverEntity receiver) =>
        new(tenant, receiver.CreatedBy, SessionGuard.SessionlessPrefix + Caller.ReceiverKeyPrefix + receiver.Id)
        {
            Scopes = receiver.ScopeList.ToHashSet(StringComparer.Ordinal),
        };

    private static Actor ActorOf(ReceiverEntity receiver) => new("receiver", receiver.Id, null) { OnBehalfOf = receiver.CreatedBy };

    private async Task<ActionResult> RunAsync(TenantId tenant, ReceiverEntity receiver, ReceivedMessageEntity message, CancellationToken cancellationToken)
    {
        if (await store.PayloadAsync(tenant, message, cancellationToken) is not { } payload)
        {
            return ActionResult.Fail("The message body is no longer stored.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(payload.ToMemory(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            return ActionResult.Fail("The message is not JSON.");
        }

        using (document)
        {
            // The payload itself, or the Standard Webhooks envelope's data.
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object)
            {
                root = data;
            }

            // Like a schedule set by an API key: what the key set up stops acting when the key is revoked or expires.
            if (receiver.CreatedByKey is { } keyId && !await apiKeys.IsActiveAsync(tenant, keyId, time.GetUtcNow(), cancellationToken))
            {
                return ActionResult.Fail($"The API key that created this receiver ({keyId}) was revoked or has expired, so the receiver cannot act.");
            }

            var caller = CallerOf(tenant, receiver);
            var held = await permissions.ForAsync(caller, cancellationToken);
            return receiver.Action switch
            {
                ReceiverActions.InventoryMovements when !held.Contains(Permissions.InventoryWrite) => NotHeld(Permissions.InventoryWrite),
                ReceiverActions.InventoryMovements => await MovementsAsync(caller, receiver, message, root, cancellationToken),
                ReceiverActions.JobsStart when !held.Contains(Permissions.JobsWrite) => NotHeld(Permissions.JobsWrite),
                ReceiverActions.JobsStart => await StartJobAsync(caller, receiver, message, root, held, cancellationToken),
                ReceiverActions.WorkflowsEvent when !held.Contains(Permissions.WorkflowsManage) => NotHeld(Permissions.WorkflowsManage),
                ReceiverActions.WorkflowsEvent => await RaiseWorkflowEventAsync(caller, root, cancellationToken),
                _ => ActionResult.Fail($"The action {receiver.Action} is not available."),
            };
        }
    }

    private static ActionResult NotHeld(string permission) =>
        ActionResult.Fail($"The receiver's creator no longer holds {permission} (or is no longer active), so the receiver cannot act.");

    private async Task<ActionResult> MovementsAsync(Caller caller, ReceiverEntity receiver, ReceivedMessageEntity message, JsonElement root, CancellationToken cancellationToken)
    {
        var max = options.Value.MaxMovementLines;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("movements", out var lines) || lines.ValueKind != JsonValueKind.Array)
        {
            return ActionResult.Fail("The message needs movements: an array of movement lines (in the body or its data).");
        }

        if (lines.GetArrayLength() is var count && (count == 0 || count > max))
        {
            return ActionResult.Fail($"movements must hold 1 to {max} lines.");
        }

        var errors = new List<LineError>();
        var applied = 0;
        var index = 0;
        foreach (var line in lines.EnumerateArray())
        {
            var error = await MovementLineAsync(caller, line, $"webhook:{receiver.Id}:{message.Id}#{index}", cancellationToken);
            if (error is null)
            {
                applied++;
            }
            else
            {
                errors.Add(new LineError(index, error.Code, Describe(error)));
            }

            index++;
        }

        var status = errors.Count == 0 ? MessageStatus.Succeeded : applied == 0 ? MessageStatus.Failed : MessageStatus.CompletedWithErrors;
        return new ActionResult(status, errors.Count == 0 ? null : $"{errors.Count} of {index} lines failed.", errors, applied, errors.Count);
    }

    /// <summary>Records one line (once per key); the error that refused it, or null.</summary>
    private async Task<CommandError?> MovementLineAsync(Caller caller, JsonElement line, string key, CancellationToken cancellationToken)
    {
        if (line.ValueKind != JsonValueKind.Object)
        {
            return new CommandError(400, "invalid_line", "A movement line must be an object.");
        }

        var itemId = Text(line, "itemId");
        var sku = Text(line, "sku");
        if (itemId is null && sku is not null)
        {
            itemId = sku.Length > ItemCommands.MaxSkuLength ? null
                : (await inventory.For(caller.Tenant).GetAsync<SkuIndexEntity>(SkuIndexEntity.KeyFor(sku), cancellationToken))?.ItemId;
            if (itemId is null)
            {
                return new CommandError(404, "not_found", $"No item of this tenant has the SKU {Echo(sku)}.");
            }
        }

        if (!InventoryStore.IsPlausibleId(itemId))
        {
            return itemId is null ? new CommandError(400, "invalid_line", "A movement line needs sku or itemId.") : CommandError.NotFound("item");
        }

        var input = new MovementInput(
            Text(line, "type"),
            line.TryGetProperty("quantity", out var quantity) && quantity.ValueKind == JsonValueKind.Number && quantity.TryGetDouble(out var q) ? q : null,
            Text(line, "reason"), Text(line, "fromLocationId"), Text(line, "toLocationId"), Text(line, "batch"), Text(line, "supplier"), Text(line, "reference"));
        var outcome = await movements.RecordAsync(caller, itemId!, input, key, cancellationToken);
        return outcome.Failed(out var error, out _) ? error : null;
    }

    private async Task<ActionResult> StartJobAsync(
        Caller caller, ReceiverEntity receiver, ReceivedMessageEntity message, JsonElement root, IReadOnlySet<string> held, CancellationToken cancellationToken)
    {
        var type = root.ValueKind == JsonValueKind.Object ? Text(root, "type") : null;
        var parameters = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("parameters", out var p) && p.ValueKind == JsonValueKind.Object ? p : default;
        if (parameters.ValueKind != JsonValueKind.Object)
        {
            return ActionResult.Fail("The message needs type (import or export) and a parameters object.");
        }

        // One job per message, whatever how often it is delivered: its id derives from the receiver and message.
        var jobId = Ids.Derived(message.ReceivedAt, $"webhook:{receiver.Id}:{message.Id}");
        if (await jobs.GetAsync(caller.Tenant, jobId, cancellationToken) is not null)
        {
            return new ActionResult(MessageStatus.Succeeded, JobId: jobId);
        }

        var kind = Text(parameters, "kind");
        return type switch
        {
            "import" => await StartImportAsync(caller, parameters, kind, held, jobId, cancellationToken),
            "export" => await StartExportAsync(caller, parameters, kind, held, jobId, cancellationToken),
            _ => ActionResult.Fail("type must be import or export."),
        };
    }

    private async Task<ActionResult> StartImportAsync(Caller caller, JsonElement parameters, string? kind, IReadOnlySet<string> held, string jobId, CancellationToken cancellationToken)
    {
        if (kind is null || !imports.Value.Kinds.TryGetValue(kind, out var permission))
        {
            return ActionResult.Fail($"parameters.kind must be one of: {string.Join(", ", imports.Value.Kinds.Keys)}.");
        }

        if (!held.Contains(permission))
        {
            return ActionResult.Fail($"Importing {kind} needs the {permission} permission, which this receiver does not have.");
        }

        var mode = Text(parameters, "mode") switch { null or "create" => ImportMode.Create, "upsert" => ImportMode.Upsert, _ => (ImportMode?)null };
        var dryRun = parameters.TryGetProperty("dryRun", out var d) && d.ValueKind == JsonValueKind.True;
        if (mode is null)
        {
            return ActionResult.Fail("parameters.mode must be create or upsert.");
        }

        var url = Text(parameters, "url");
        if (await outbound.CheckUrlAsync(url, cancellationToken) is { } refusal)
        {
            return ActionResult.Fail($"parameters.url {refusal}.");
        }

        var limit = Math.Min(options.Value.MaxFetchBytes, jobs.Options.MaxUploadBytes);
        var upload = jobs.Files.Upload(caller.Tenant, jobId);
        string? format;
        try
        {
            using var response = await outbound.SendAsync(new HttpRequestMessage(HttpMethod.Get, url), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return ActionResult.Fail($"Fetching the file answered HTTP {(int)response.StatusCode}.");
            }

            format = FormatOf(Text(parameters, "format"), response.Content.Headers.ContentType?.MediaType, new Uri(url!).AbsolutePath);
            if (format is null)
            {
                return ActionResult.Fail("The file's format is unknown: give parameters.format (csv, json, ndjson or xlsx).");
            }

            if (response.Content.Headers.ContentLength > limit)
            {
                return ActionResult.Fail($"The file is larger than {limit} bytes.");
            }

            await using var body = new BoundedStream(await response.Content.ReadAsStreamAsync(cancellationToken), limit);
            try
            {
                // Never over a file already there: a job started from it may be reading it. One is there only when an
                // earlier run of this message uploaded it (the job's id is this message's), so it is the same file.
                await upload.UploadAsync(body, new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = Azure.ETag.All } }, cancellationToken);
            }
            catch (Azure.RequestFailedException ex) when (ex.Status is 409 or 412)
            {
                // Already uploaded: start the job from it.
            }
            catch (Exception) when (body.BytesRead > limit)
            {
                // Nothing was written: an upload commits only once the whole body is read.
                return ActionResult.Fail($"The file is larger than {limit} bytes.");
            }
        }
        catch (HttpRequestException ex)
        {
            // The guard's reason (a refused address) or the network's; neither quotes anything secret.
            return ActionResult.Fail($"Fetching the file failed: {(ex as OutboundRefusedException ?? ex.InnerException as OutboundRefusedException)?.Message ?? ex.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ActionResult.Fail("Fetching the file timed out.");
        }

        var settings = jobs.Options;
        return await StartOnceAsync(caller, ImportOrchestrator.Name,
            new ImportParameters(kind, mode.Value, dryRun, format, null, settings.ChunkRows, settings.ChunkBytes, settings.ChunkParallelism), jobId, cancellationToken);
    }

    private async Task<ActionResult> StartExportAsync(Caller caller, JsonElement parameters, string? kind, IReadOnlySet<string> held, string jobId, CancellationToken cancellationToken)
    {
        if (kind is null || !exports.Value.Kinds.TryGetValue(kind, out var permission))
        {
            return ActionResult.Fail($"parameters.kind must be one of: {string.Join(", ", exports.Value.Kinds.Keys)}.");
        }

        if (!held.Contains(permission))
        {
            return ActionResult.Fail($"Exporting {kind} needs the {permission} permission, which this receiver does not have.");
        }

        var format = Text(parameters, "format") switch { null or "csv" => "csv", "json" or "ndjson" => "json", "xlsx" => "xlsx", _ => null };
        var filter = Text(parameters, "filter");
        if (format is null)
        {
            return ActionResult.Fail("parameters.format must be csv, json or xlsx.");
        }

        if (filter?.Length > JobsEndpoints.MaxFilterLength)
        {
            return ActionResult.Fail($"parameters.filter must be at most {JobsEndpoints.MaxFilterLength} characters.");
        }

        if (services.GetRequiredKeyedService<IExportKind>(kind).CheckFilter(filter) is { } filterError)
        {
            return ActionResult.Fail($"parameters.filter is invalid: {filterError}");
        }

        return await StartOnceAsync(caller, ExportOrchestrator.Name, new ExportParameters(kind, format, filter), jobId, cancellationToken);
    }

    private async Task<ActionResult> StartOnceAsync<TParameters>(Caller caller, string orchestrator, TParameters parameters, string jobId, CancellationToken cancellationToken)
        where TParameters : notnull
    {
        try
        {
            await jobs.StartAsync(caller, orchestrator, parameters, cancellationToken, jobId);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Another delivery of this message may have started it first; anything else is a failure to retry.
            if (await jobs.GetAsync(caller.Tenant, jobId, cancellationToken) is null)
            {
                throw;
            }
        }

        return new ActionResult(MessageStatus.Succeeded, JobId: jobId);
    }

    private static string? FormatOf(string? given, string? mediaType, string path) => (given ?? mediaType?.ToLowerInvariant()) switch
    {
        "csv" or "text/csv" => "csv",
        "json" or "ndjson" or "application/json" or "application/x-ndjson" => "json",
        "xlsx" or ExportFormats.XlsxContentType => "xlsx",
        _ when given is null && path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) => "csv",
        _ when given is null && (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".ndjson", StringComparison.OrdinalIgnoreCase)) => "json",
        _ when given is null && path.EndsWith(".xlsx", StringComparison.OrdinalIgnoreCase) => "xlsx",
        _ => null,
    };

    /// <summary>
    /// <c>{ workflowId, runId, name, data? }</c>: the event an approval step of the tenant's run waits for. A message is
    /// final once handled, so it raises its event once; a repeat after a crash finds the step answered (or raises an
    /// event the step, which waits once, never takes again).
    /// </summary>
    private async Task<ActionResult> RaiseWorkflowEventAsync(Caller caller, JsonElement root, CancellationToken cancellationToken)
    {
        var workflowId = root.ValueKind == JsonValueKind.Object ? Text(root, "workflowId") : null;
        var runId = root.ValueKind == JsonValueKind.Object ? Text(root, "runId") : null;
        var name = root.ValueKind == JsonValueKind.Object ? Text(root, "name") : null;
        if (workflowId is null || runId is null || name is null)
        {
            return ActionResult.Fail("The message needs workflowId, runId and name (and optionally data).");
        }

        JsonElement? data = root.TryGetProperty("data", out var given) && given.ValueKind != JsonValueKind.Null ? given : null;
        var raised = await services.GetRequiredService<Workflows.WorkflowRuns>().RaiseAsync(caller, workflowId, runId, name, data, cancellationToken);
        return raised.Failed(out var error, out _) ? ActionResult.Fail(Describe(error)) : new ActionResult(MessageStatus.Succeeded);
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Echo(string text) => text.Length <= 64 ? text : text[..64] + "...";

    private static string Describe(CommandError error) =>
        error.Fields is { IsValid: false } fields
            ? string.Join("; ", fields.Errors.Select(f => $"{f.Key} {string.Join(", ", f.Value)}"))
            : error.Message;

    private static ReceiptMessage Read(string text)
    {
        ReceiptMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<ReceiptMessage>(text, JsonSerializerOptions.Web);
        }
        catch (JsonException)
        {
            message = null;
        }

        return message is { Tenant.Length: > 0, ReceiverId.Length: > 0, MessageKey.Length: > 0 } && TenantId.TryParse(message.Tenant, out _)
            ? message
            : throw new PoisonMessageException("Not a webhook receipt.");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Gave up webhook message {MessageId} of receiver {ReceiverId}: {Reason}")]
    private static partial void LogGaveUp(ILogger logger, string messageId, string receiverId, string reason);
}
