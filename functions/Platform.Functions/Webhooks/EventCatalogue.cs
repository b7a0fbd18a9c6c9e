using System.Collections.Frozen;
using System.Text.Json.Nodes;

namespace Platform.Functions.Webhooks;

/// <summary>One entry of <c>GET /api/v1/webhooks/event-types</c>: <c>example</c> is a whole delivery body.</summary>
public sealed record EventTypeView(string Type, string Description, JsonObject Example);

/// <summary>
/// Every event type the product publishes, with what it means and an example body. Endpoints subscribe to these
/// names (or <c>*</c>, or <c>prefix.*</c>); a test scans the source for published type names and fails when one is
/// missing here.
/// </summary>
public static partial class EventCatalogue
{
    public const string TestEvent = "webhook.test";
    public const string EndpointDisabledEvent = "webhook.endpoint.disabled";

    private static readonly (string Type, string Object, string Description, JsonObject? Changes)[] Entries =
    [
        ("auth.login.succeeded", "user", "A user signed in.", null),
        ("auth.login.failed", "user", "A sign-in failed (wrong password or code); the target is the user when the address is known.", null),
        ("auth.account.locked", "user", "Too many failed sign-ins locked the account for a while.", null),
        ("auth.logout", "session", "A user signed out.", null),
        ("auth.session.revoked", "session", "A session was ended by its user.", null),
        ("auth.refresh_token.reused", "session", "A spent refresh token was presented again; the whole session was revoked.", null),
        ("auth.password_reset.requested", "user", "A password reset link was mailed.", null),
        ("auth.password_reset.throttled", "user", "A password reset was dropped: the account's hourly mail limit was reached.", null),
        ("auth.password.changed", "user", "A user changed their password.", null),
        ("auth.password.reset", "user", "A user set a new password through a reset link.", null),
        ("auth.mfa.enabled", "user", "Two-step sign-in was turned on.", null),
        ("auth.mfa.disabled", "user", "Two-step sign-in was turned off.", null),
        ("auth.mfa.backup_codes_regenerated", "user", "New backup codes replaced the old ones.", null),
        ("user.created", "user", "A user was created.", new JsonObject { ["email"] = "ada@example.com", ["roles"] = new JsonArray("user") }),
        ("user.updated", "user", "A user's profile, roles or custom fields changed; changes holds the new values.", new JsonObject { ["displayName"] = "Ada L." }),
        ("user.deleted", "user", "A user was deleted (soft: they can be restored).", null),
        ("user.restored", "user", "A deleted user was restored.", null),
        ("user.purged", "user", "A user's personal data was erased for good.", null),
        ("user.email_verified", "user", "A user verified their email address.", null),
        ("user.avatar.updated", "user", "A user's avatar image changed.", null),
        ("user.entra.linked", "user", "A user was linked to a Microsoft Entra ID account.", null),
        ("schema.users.updated", "schema", "The custom-field schema of users changed.", new JsonObject { ["fields"] = 3 }),
        ("role.created", "role", "A role was created.", new JsonObject { ["permissions"] = new JsonArray("inventory.read") }),
        ("role.updated", "role", "A role's permissions changed.", new JsonObject { ["permissions"] = new JsonArray("inventory.read", "inventory.write") }),
        ("role.deleted", "role", "A role was deleted.", null),
        ("apikey.created", "apikey", "An API key was created.", new JsonObject { ["name"] = "ERP sync", ["permissions"] = new JsonArray("inventory.read") }),
        ("apikey.rotated", "apikey", "An API key got a new secret; the old one works until its grace ends.", null),
        ("apikey.revoked", "apikey", "An API key was revoked.", null),
        ("tenant.created", "tenant", "The tenant was created (sign-up).", null),
        ("tenant.entra.trusted", "tenant", "The tenant started trusting a Microsoft Entra ID directory.", null),
        ("tenant.entra.untrusted", "tenant", "The tenant stopped trusting its Microsoft Entra ID directory.", null),
        ("inventory.item.created", "item", "An inventory item was created.", new JsonObject { ["sku"] = "BOLT-M8", ["name"] = "Bolt M8" }),
        ("inventory.item.updated", "item", "An inventory item changed; changes holds the new values.", new JsonObject { ["reorderPoint"] = 50 }),
        ("inventory.item.deleted", "item", "An inventory item was deleted.", new JsonObject { ["sku"] = "BOLT-M8" }),
        ("inventory.location.created", "location", "A location was created.", new JsonObject { ["name"] = "Main warehouse" }),
        ("inventory.location.updated", "location", "A location changed.", new JsonObject { ["name"] = "North warehouse" }),
        ("inventory.location.deleted", "location", "A location was deleted.", null),
        ("inventory.movement.created", "movement", "Stock moved: in, out, transfer or adjust.", new JsonObject { ["itemId"] = "01JD3Z8M6Q0000000000000000", ["type"] = "out", ["quantity"] = 5, ["newQuantity"] = 45 }),
        ("inventory.low_stock", "alert", "An item fell to or below its reorder point.", new JsonObject { ["itemId"] = "01JD3Z8M6Q0000000000000000", ["sku"] = "BOLT-M8", ["quantity"] = 8, ["reorderPoint"] = 10 }),
        ("inventory.expiring", "alert", "An item's stock expires soon.", new JsonObject { ["itemId"] = "01JD3Z8M6Q0000000000000000", ["sku"] = "MILK-1L", ["expiresAt"] = "2026-12-01T00:00:00Z" }),
        ("inventory.alert.acknowledged", "alert", "Someone acknowledged an open alert.", null),
        ("job.succeeded", "job", "A job (import, export, report, backup ...) finished without errors.", JobChanges(0, null)),
        ("job.completed_with_errors", "job", "A job finished; some rows failed (see its error report).", JobChanges(3, null)),
        ("job.failed", "job", "A job failed as a whole.", JobChanges(0, "The file is not valid CSV.")),
        ("job.cancelled", "job", "A job was cancelled.", JobChanges(0, null)),
        ("report.ready", "report", "A report finished; changes hold its type, format, period, size, download link and headline figures.", new JsonObject
        {
            ["type"] = "inventory-status", ["format"] = "pdf", ["title"] = "Inventory status", ["from"] = "2026-11-01T00:00:00Z", ["to"] = "2026-11-22T00:00:00Z",
            ["bytes"] = 48213, ["downloadUrl"] = "/api/v1/reports/01JD3Z8M6Q7W2X4Y5Z6A7B8C9D/download", ["figures"] = new JsonObject { ["lowStockCount"] = 3 },
        }),
        ("backup.succeeded", "backup", "A backup of the tenant was written and read back intact; changes hold its size and SHA-256.", new JsonObject
        {
            ["kind"] = "scheduled", ["tables"] = 13, ["entities"] = 20412, ["bytes"] = 1843022, ["sha256"] = "9f2c4e0b5d7a61e8c3b2a4f6d8e0c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5",
        }),
        ("backup.failed", "backup", "A backup could not be written, or did not read back intact; error says why and part which file.", new JsonObject
        {
            ["kind"] = "manual", ["error"] = "The backup did not read back intact: inventory: segment 0 failed authentication", ["part"] = "inventory",
        }),
        ("backup.deleted", "backup", "A backup was deleted, by hand or when retention expired it.", new JsonObject { ["kind"] = "manual", ["createdAt"] = "2026-11-01T02:00:00Z" }),
        ("restore.succeeded", "backup", "A backup was restored; changes name the tenant it was restored into, and for a restore over this tenant (target same) how many sessions it ended.", new JsonObject
        {
            ["target"] = "new", ["targetTenantId"] = "01JD3Z8M6Q7W2X4Y5Z6A7B8C9E", ["targetTenantSlug"] = "acme-sandbox", ["entities"] = 20412, ["sessionsEnded"] = null,
        }),
        ("restore.failed", "backup", "A restore over the live tenant failed part-way; error says whether the tenant was put back from preRestoreBackupId or is mixed (then restore that backup by hand).", new JsonObject
        {
            ["target"] = "same", ["preRestoreBackupId"] = "01JD3Z8M6Q7W2X4Y5Z6A7B8C9F", ["error"] = "The restore failed part-way (...); the tenant was put back from the pre-restore backup 01JD3Z8M6Q7W2X4Y5Z6A7B8C9F.",
        }),
        ("schedule.created", "schedule", "A schedule was created.", new JsonObject { ["name"] = "Nightly users export", ["cron"] = "0 2 * * *", ["timeZone"] = "Europe/Berlin", ["target"] = "job:export" }),
        ("schedule.updated", "schedule", "A schedule changed; changes holds the new values.", new JsonObject { ["enabled"] = false }),
        ("schedule.deleted", "schedule", "A schedule was deleted.", null),
        ("schedule.run.failed", "schedule", "A schedule's run could not start (the user it acts as was deleted or lost a permission, its key was revoked ...); error says why.", new JsonObject { ["runId"] = "01JD3Z8M6Q0000000000000000", ["dueAt"] = "2026-11-23T01:00:00Z", ["error"] = "The user this schedule acts for (01JD3Z7K1E2F3G4H5J6K7M8N9P) is deleted or disabled; change its target to act for someone else." }),
        ("webhook.endpoint.created", "webhook_endpoint", "A webhook endpoint was created.", new JsonObject { ["url"] = "https://erp.example.com/hooks/platform" }),
        ("webhook.endpoint.updated", "webhook_endpoint", "A webhook endpoint changed.", new JsonObject { ["enabled"] = true }),
        ("webhook.endpoint.deleted", "webhook_endpoint", "A webhook endpoint was deleted.", null),
        ("webhook.endpoint.secret_rotated", "webhook_endpoint", "A webhook endpoint's signing secret was rotated.", new JsonObject { ["graceSeconds"] = 86400 }),
        (EndpointDisabledEvent, "webhook_endpoint", "A webhook endpoint was disabled: it answered 410 Gone, or its deliveries failed for days.", new JsonObject { ["reason"] = "failing_since", ["failingSince"] = "2026-11-17T14:00:00Z" }),
        ("webhook.receiver.created", "receiver", "An incoming webhook receiver was created.", new JsonObject { ["name"] = "ERP goods receipts", ["action"] = "inventory.movements", ["scheme"] = "standard" }),
        ("webhook.receiver.deleted", "receiver", "An incoming webhook receiver was deleted.", null),
        ("webhook.message.processed", "receiver", "A receiver acted on a message it accepted; status tells how it went.", new JsonObject { ["messageId"] = "01JD3Z8M6Q0000000000000000", ["webhookId"] = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ["status"] = "succeeded" }),
        ("workflow.created", "workflow", "A workflow was defined.", new JsonObject { ["name"] = "Weekly restock", ["steps"] = 4 }),
        ("workflow.updated", "workflow", "A workflow's name or steps were replaced.", new JsonObject { ["name"] = "Weekly restock", ["steps"] = 5 }),
        ("workflow.deleted", "workflow", "A workflow was deleted (runs in flight finish).", null),
        ("workflow.run.succeeded", "workflow_run", "A workflow run finished: every step it reached succeeded.", new JsonObject { ["workflowId"] = "weekly-restock", ["status"] = "succeeded", ["error"] = null }),
        ("workflow.run.failed", "workflow_run", "A workflow run failed at a step (a failed job, a rejected or timed-out approval ...).", new JsonObject { ["workflowId"] = "weekly-restock", ["status"] = "failed", ["error"] = "Step approve failed: No approval came within PT24H." }),
        ("workflow.run.cancelled", "workflow_run", "A workflow run was cancelled.", new JsonObject { ["workflowId"] = "weekly-restock", ["status"] = "cancelled", ["error"] = null }),
        (TestEvent, "webhook_endpoint", "Sent by POST /api/v1/webhooks/endpoints/{id}/test to check an endpoint; never sent otherwise.", new JsonObject { ["message"] = "This is a test delivery." }),
    ];

    public static IReadOnlyList<EventTypeView> All { get; } = [.. Entries.Select(e => new EventTypeView(e.Type, e.Description, Example(e.Type, e.Object, e.Changes)))];

    public static FrozenSet<string> Types { get; } = Entries.Select(e => e.Type).ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The first parts of every type (<c>inventory</c>, <c>inventory.item</c>), which <c>prefix.*</c> may name.</summary>
    public static FrozenSet<string> Prefixes { get; } = Entries
        .SelectMany(e => Enumerable.Range(1, e.Type.Count(c => c == '.')).Select(n => string.Join('.', e.Type.Split('.').Take(n))))
        .ToFrozenSet(StringComparer.Ordinal);

    /// <summary>
    /// Whether a subscription pattern is valid: <c>*</c>, a known type, a known prefix followed by <c>.*</c>, or an
    /// event type a tenant's workflows publish (<see cref="IsTenantEventType"/>, e.g. <c>inventory.reorder</c>).
    /// </summary>
    public static bool IsValidPattern(string pattern) =>
        pattern == "*" || Types.Contains(pattern) || (pattern.EndsWith(".*", StringComparison.Ordinal) && Prefixes.Contains(pattern[..^2])) ||
        IsTenantEventType(pattern);

    /// <summary>Families a tenant's own events may not use: a workflow cannot forge a sign-in, a user change or a job's end.</summary>
    private static readonly string[] ReservedPrefixes = [.. WebhookCommands.SecurityPrefixes, "webhook.", "workflow.", "job.", "schema."];

    /// <summary>
    /// A name a tenant chose for its own events (a workflow's webhook step): dotted lowercase words, at most 100
    /// characters, neither a product type nor in a product family that carries security or system meaning.
    /// </summary>
    public static bool IsTenantEventType(string name) =>
        name.Length <= 100 && TenantEvent().IsMatch(name) && !Types.Contains(name) &&
        !ReservedPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal));

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_-]*)+$")]
    private static partial System.Text.RegularExpressions.Regex TenantEvent();

    public static bool Matches(IReadOnlyList<string> patterns, string type)
    {
        foreach (var pattern in patterns)
        {
            if (pattern == "*" || pattern == type ||
                (pattern.EndsWith(".*", StringComparison.Ordinal) && type.Length > pattern.Length - 1 && type.StartsWith(pattern.AsSpan(0, pattern.Length - 1), StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }

    private static JsonObject JobChanges(int failed, string? error) => new()
    {
        ["type"] = "import",
        ["total"] = 1200,
        ["succeeded"] = 1200 - failed,
        ["failed"] = failed,
        ["error"] = error,
    };

    private static JsonObject Example(string type, string objectType, JsonObject? changes) => new()
    {
        ["type"] = type,
        ["timestamp"] = "2026-11-22T14:00:00.000Z",
        ["data"] = new JsonObject
        {
            ["id"] = "01JD3Z8M6Q7W2X4Y5Z6A7B8C9D",
            ["object"] = objectType,
            ["actor"] = new JsonObject { ["type"] = "user", ["id"] = "01JD3Z7K1E2F3G4H5J6K7M8N9P" },
            ["changes"] = changes,
        },
    };
}
