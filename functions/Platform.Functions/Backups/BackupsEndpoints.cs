using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;

namespace Platform.Functions.Backups;

/// <summary>A backup as <c>GET /api/v1/backups</c> lists it; <c>parts</c> only on <c>GET /api/v1/backups/{id}</c>.</summary>
/// <param name="Status"><c>running</c>, <c>succeeded</c> or <c>failed</c>.</param>
/// <param name="FailedPart">The part the last verification found damaged, and why.</param>
public sealed record BackupView(
    string Id, DateTimeOffset CreatedAt, string Kind, string Status, int Tables, long Entities, long Bytes, string? Sha256, bool Verified,
    DateTimeOffset? VerifiedAt, DateTimeOffset? ExpiresAt, string? Error, string? FailedPart, string JobUrl, IReadOnlyList<BackupPart>? Parts)
{
    public static BackupView Of(BackupEntity row, bool withParts) => new(
        row.Id, row.CreatedAt, row.Kind, row.Status, row.Tables, row.Entities, row.Bytes, row.Sha256, row.Verified, row.VerifiedAt, row.ExpiresAt,
        row.Error, row.FailedPart, JobView.UrlOf(row.Id), withParts ? row.PartList() : null);
}

/// <summary>
/// The <c>backup</c> job type, for schedules and workflow steps: <c>{ "type": "backup" }</c> (no parameters needed).
/// Starting one needs <c>backups.manage</c>.
/// </summary>
public sealed class BackupJobType(JobCommands jobs) : IJobType
{
    public string? Check(JsonElement? parameters, string field, Validation validation)
    {
        if (parameters is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null or JsonValueKind.Undefined) })
        {
            validation.Add(field, "must be an object (a backup takes no parameters)");
            return null;
        }

        return Permissions.BackupsManage;
    }

    public Task<JobView> StartAsync(Caller caller, JsonElement? parameters, string jobId, CancellationToken cancellationToken) =>
        jobs.StartAsync(caller, BackupOrchestrator.Name, new BackupParameters(BackupParameters.Scheduled), cancellationToken, jobId);
}

/// <summary>
/// Backups of the caller's tenant (<c>/api/v1/backups</c>): start one, list, read, delete, verify. Every route needs
/// <c>backups.manage</c>; ids are looked up in the caller's tenant only, so another tenant's backup is 404.
/// </summary>
public static class BackupsEndpoints
{
    public const string Path = "/api/v1/backups";

    /// <summary>Backups a list shows at most: retention keeps a few dozen.</summary>
    public const int MaxListed = 500;

    public static RouteGroupBuilder MapBackups(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Backups");
        group.MapPost("/", StartBackup).RequirePermission(Permissions.BackupsManage).WithIdempotency()
            .WithName("StartBackup").WithSummary("Starts a backup job of the whole tenant: every table and blob it owns, encrypted, then read back and verified.");
        group.MapGet("/", ListBackups).RequirePermission(Permissions.BackupsManage)
            .WithName("ListBackups").WithSummary("The tenant's backups, newest first.");
        group.MapGet("/{id}", GetBackup).RequirePermission(Permissions.BackupsManage)
            .WithName("GetBackup").WithSummary("One backup, with its parts (rows, bytes and SHA-256 of each).");
        group.MapDelete("/{id}", DeleteBackup).RequirePermission(Permissions.BackupsManage)
            .WithName("DeleteBackup").WithSummary("Deletes a backup and its files.");
        group.MapPost("/{id}/verify", VerifyBackup).RequirePermission(Permissions.BackupsManage).WithIdempotency()
            .WithName("VerifyBackup").WithSummary("Starts a job that reads the backup back and checks every part's SHA-256 and row count; a damaged part fails the job, named.");
        group.MapPost("/{id}/restore", RestoreBackup).RequirePermission(Permissions.BackupsManage).WithIdempotency()
            .WithName("RestoreBackup").WithSummary("Starts a job that verifies the backup and restores it: into a new sandbox tenant with the slug given (webhook endpoints disabled, schedules paused, API keys and sessions not carried over; the tenant exists only once every row is written), or, without a slug (or with replaceCurrent true), over this tenant after an automatic pre-restore backup. Unknown properties are refused.");
        return group;
    }

    /// <summary>
    /// Where to restore: <c>{ "targetTenantSlug": "..." }</c> for a new sandbox tenant; no slug (no body, <c>{}</c>, as the
    /// API contract has it, or <c>{ "replaceCurrent": true }</c>) replaces this tenant's data. An unknown property (a
    /// misspelt <c>targetSlug</c>) or a contradiction is refused, so a typo never turns a sandbox restore into the
    /// destructive one.
    /// </summary>
    /// <param name="TargetTenantSlug">The new tenant's slug (3-40 of a-z, 0-9 and '-'), not taken.</param>
    /// <param name="ReplaceCurrent">True: restore over this tenant, after an automatic pre-restore backup.</param>
    public sealed record RestoreRequest(string? TargetTenantSlug, bool? ReplaceCurrent = null)
    {
        /// <summary>Properties the request does not know: refused by name.</summary>
        [System.Text.Json.Serialization.JsonExtensionData]
        public Dictionary<string, JsonElement>? Unknown { get; init; }
    }

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> RestoreBackup(
        string id, RestoreRequest? request, Caller caller, BackupStore store, BackupLocks locks, TenantDirectory tenants, JobCommands jobs, TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (await store.GetAsync(caller.Tenant, id, cancellationToken) is not { } row)
        {
            return CommandError.NotFound("backup").ToProblem();
        }

        var slug = request?.TargetTenantSlug;
        var validation = new Validation();
        foreach (var name in request?.Unknown?.Keys.Take(5) ?? [])
        {
            validation.Add(name.Length <= 64 ? name : name[..64], "is not a property of a restore (targetTenantSlug or replaceCurrent)");
        }

        if (slug is not null && !TenantDirectory.IsValidSlug(slug))
        {
            validation.Add("targetTenantSlug", "must be 3-40 characters of a-z, 0-9 and '-'");
        }

        if (slug is not null && request?.ReplaceCurrent == true)
        {
            validation.Add("replaceCurrent", "cannot be true with targetTenantSlug: a restore goes either into a new tenant or over this one");
        }
        else if (slug is null && request?.ReplaceCurrent == false)
        {
            validation.Add("replaceCurrent", "false needs targetTenantSlug: without one a restore replaces this tenant's data");
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        if (row.Status != BackupEntity.Succeeded)
        {
            return CommandError.Conflict("backup_incomplete", $"The backup did not complete ({row.Status}); it cannot be restored.").ToProblem();
        }

        if (slug is not null && await tenants.SlugTakenAsync(slug, cancellationToken))
        {
            return Problems.Create(StatusCodes.Status409Conflict, "slug_taken", "Slug taken", $"The slug '{slug}' belongs to another tenant.");
        }

        // Over the live tenant (no slug) the job first writes an automatic pre-restore backup under its own id.
        var parameters = slug is null
            ? new RestoreParameters(id, caller.Tenant.Value, null, Ids.New(time))
            : new RestoreParameters(id, Ids.New(time), slug);
        return await StartLockedAsync(caller, locks, jobs, time, RestoreOrchestrator.Name, parameters,
            parameters.PreRestoreBackupId is { } pre ? [id, pre] : [id], cancellationToken);
    }

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> StartBackup(
        Caller caller, BackupLocks locks, JobCommands jobs, TimeProvider time, CancellationToken cancellationToken) =>
        await StartLockedAsync(caller, locks, jobs, time, BackupOrchestrator.Name, new BackupParameters(), null, cancellationToken);

    /// <summary>
    /// Takes the tenant's backup lock for the new job before starting it, so a second backup or restore is a 409 at
    /// once rather than a job that fails; the job takes the lock again as its own and releases it when it ends.
    /// </summary>
    private static async Task<Results<Accepted<JobView>, ProblemHttpResult>> StartLockedAsync<TParameters>(
        Caller caller, BackupLocks locks, JobCommands jobs, TimeProvider time, string type, TParameters parameters, string[]? backups, CancellationToken cancellationToken)
        where TParameters : notnull
    {
        var jobId = Ids.New(time);
        var held = await locks.AcquireAsync(new BackupLockInput(caller.Tenant.Value, jobId, type, backups ?? [jobId], time.GetUtcNow()), cancellationToken);
        if (!held.Acquired)
        {
            return BackupLocks.Busy(held).ToProblem();
        }

        try
        {
            var job = await jobs.StartAsync(caller, type, parameters, cancellationToken, jobId);
            return TypedResults.Accepted(JobView.UrlOf(job.Id), job);
        }
        catch
        {
            await locks.ReleaseAsync(caller.Tenant, jobId, CancellationToken.None);
            throw;
        }
    }

    internal static async Task<Ok<PagedList<BackupView>>> ListBackups(Caller caller, BackupStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(new PagedList<BackupView>([.. (await store.ListAsync(caller.Tenant, MaxListed, cancellationToken)).Select(r => BackupView.Of(r, false))], null));

    internal static async Task<Results<Ok<BackupView>, ProblemHttpResult>> GetBackup(string id, Caller caller, BackupStore store, CancellationToken cancellationToken) =>
        await store.GetAsync(caller.Tenant, id, cancellationToken) is { } row
            ? TypedResults.Ok(BackupView.Of(row, true))
            : CommandError.NotFound("backup").ToProblem();

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteBackup(
        string id, Caller caller, BackupStore store, BackupLocks locks, EventPublisher events, TimeProvider time, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(caller.Tenant, id, cancellationToken) is not { } row)
        {
            return CommandError.NotFound("backup").ToProblem();
        }

        if (row.Status == BackupEntity.Running)
        {
            return CommandError.Conflict("backup_running", "The backup is still being written; wait for its job to finish.").ToProblem();
        }

        if (await locks.HeldAsync(caller.Tenant, time.GetUtcNow(), cancellationToken) is { } held && held.Protects(id, time.GetUtcNow()))
        {
            return CommandError.Conflict("backup_in_use", $"A {held.Kind} (job {held.Holder}) is using this backup; wait for it to finish.").ToProblem();
        }

        await store.DeleteAsync(caller.Tenant, id, cancellationToken);
        await events.PublishAsync(caller.Tenant, new PlatformEvent("backup.deleted", caller.Actor, "backup", id,
            new Dictionary<string, object?> { ["kind"] = row.Kind, ["createdAt"] = row.CreatedAt }), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> VerifyBackup(
        string id, Caller caller, BackupStore store, JobCommands jobs, TimeProvider time, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(caller.Tenant, id, cancellationToken) is not { } row)
        {
            return CommandError.NotFound("backup").ToProblem();
        }

        if (row.Status != BackupEntity.Succeeded)
        {
            // A failed backup already says which part is damaged; a running one is verified by its own job.
            return CommandError.Conflict("backup_incomplete", $"The backup did not complete ({row.Status}); only a succeeded backup is verified again.").ToProblem();
        }

        var job = await jobs.StartAsync(caller, BackupVerifyOrchestrator.Name, new BackupVerifyParameters(id), cancellationToken, Ids.New(time));
        return TypedResults.Accepted(JobView.UrlOf(job.Id), job);
    }
}
