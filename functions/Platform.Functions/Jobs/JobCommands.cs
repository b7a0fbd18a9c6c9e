using DurableTask.Core.Exceptions;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Storage;

namespace Platform.Functions.Jobs;

/// <summary>Starts, reads, cancels and retries the jobs of the caller's tenant.</summary>
public sealed class JobCommands(
    TaskHubClient client, JobFiles files, JobFailures failures, DurableLogging watch, IServiceProvider services, IOptions<JobOptions> options, TimeProvider time)
{
    public JobOptions Options => options.Value;

    public JobFiles Files => files;

    /// <summary>Starts a job of the caller's tenant under a new id (or <paramref name="jobId"/>); returns its first view.</summary>
    public async Task<JobView> StartAsync<TParameters>(Caller caller, string type, TParameters parameters, CancellationToken cancellationToken, string? jobId = null)
        where TParameters : notnull
    {
        jobId ??= Ids.New(time);
        var input = new JobInput<TParameters>(caller.Tenant.Value, jobId, JobActor.From(caller), parameters);
        await client.ScheduleNewOrchestrationInstanceAsync(type, input, new StartOrchestrationOptions(JobIds.InstanceId(caller.Tenant, jobId)), cancellationToken);
        return JobView.Started(jobId, type, time.GetUtcNow(), parameters);
    }

    /// <summary>Starts an import of a file the caller already holds (the demo tenant's sample receipts).</summary>
    public async Task<JobView> StartImportAsync(Caller caller, string kind, ImportMode mode, string format, BinaryData file, CancellationToken cancellationToken)
    {
        var jobId = Ids.New(time);
        await files.Upload(caller.Tenant, jobId).UploadAsync(file, cancellationToken);
        var options = Options;
        return await StartAsync(caller, ImportOrchestrator.Name,
            new ImportParameters(kind, mode, false, format, null, options.ChunkRows, options.ChunkBytes, options.ChunkParallelism), cancellationToken, jobId);
    }

    /// <summary>Waits until a job has finished, or the timeout passed; the job as it then is.</summary>
    public async Task<JobView?> WaitAsync(TenantId tenant, string jobId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await client.WaitForInstanceCompletionAsync(JobIds.InstanceId(tenant, jobId), deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }

        return await GetAsync(tenant, jobId, cancellationToken);
    }

    /// <summary>The job, or null when the caller's tenant has no job with this id.</summary>
    public async Task<JobView?> GetAsync(TenantId tenant, string jobId, CancellationToken cancellationToken) =>
        await InstanceAsync(tenant, jobId, cancellationToken) is { } instance ? await ViewAsync(tenant, instance, jobId, cancellationToken) : null;

    /// <summary>The job an instance is; an unfinished one is checked for the engine's poison verdict.</summary>
    public async Task<JobView> ViewAsync(TenantId tenant, OrchestrationMetadata instance, string jobId, CancellationToken cancellationToken) =>
        JobView.From(instance, jobId, instance.IsCompleted ? null : await failures.GetAsync(tenant, jobId, cancellationToken));

    public async Task<OrchestrationMetadata?> InstanceAsync(TenantId tenant, string jobId, CancellationToken cancellationToken) =>
        JobIds.IsWellFormed(jobId) ? await client.GetInstanceAsync(JobIds.InstanceId(tenant, jobId), getInputsAndOutputs: true, cancellationToken) : null;

    /// <summary>
    /// Asks a queued or running job to stop at its next step boundary: what it applied stays applied. A finished job
    /// cannot be cancelled.
    /// </summary>
    public async Task<Outcome<JobView>> CancelAsync(Caller caller, string jobId, CancellationToken cancellationToken)
    {
        if (await GetAsync(caller.Tenant, jobId, cancellationToken) is not { } job)
        {
            return CommandError.NotFound("job");
        }

        if (job.IsFinished)
        {
            return CommandError.Conflict("job_finished", $"The job has finished ({job.Status}); there is nothing to cancel.");
        }

        if (job.Type == Exports.ExportOrchestrator.Name)
        {
            return CommandError.Conflict("job_not_cancellable", "An export is one step and cannot be stopped part-way; its file is ready soon.");
        }

        await client.RaiseEventAsync(JobIds.InstanceId(caller.Tenant, jobId), JobOrchestrator<object>.CancelEvent, true, cancellationToken);
        return job;
    }

    /// <summary>
    /// Runs again what did not succeed. A failed or cancelled job resumes under its own id: chunks it applied are
    /// recorded and skipped, the rest run. An import that completed with errors starts a new job that re-imports only
    /// the failed rows (after they were fixed in the data they depend on). A succeeded job has nothing to retry.
    /// </summary>
    public async Task<Outcome<JobView>> RetryAsync(Caller caller, string jobId, CancellationToken cancellationToken)
    {
        if (await InstanceAsync(caller.Tenant, jobId, cancellationToken) is not { } instance)
        {
            return CommandError.NotFound("job");
        }

        var job = await ViewAsync(caller.Tenant, instance, jobId, cancellationToken);
        if (job.Status == JobOutcome.Failed && !instance.IsCompleted)
        {
            return CommandError.Conflict("job_poisoned", "The engine gave up on this job's messages; start a new job instead.");
        }

        switch (job.Status)
        {
            case JobView.Queued or JobView.Running:
                return CommandError.Conflict("job_running", "The job is still running; cancel it or wait for it to finish.");
            case JobOutcome.Succeeded:
                return CommandError.Conflict("job_succeeded", "Every part of the job succeeded; there is nothing to retry.");
            case JobOutcome.CompletedWithErrors when instance.Name == ImportOrchestrator.Name:
                var earlier = instance.ReadInputAs<JobInput<ImportParameters>>()!.Parameters;
                using (var scope = services.CreateScope())
                {
                    if (scope.ServiceProvider.GetRequiredKeyedService<IImportKind>(earlier.Kind).Columns.Any(c => c.Sensitive))
                    {
                        return CommandError.Conflict("retry_needs_file",
                            "Rows of this import may hold secrets (passwords), which are never kept: retry with the corrected rows as the request body.");
                    }
                }

                // One retry per job: its id is derived, so a second request finds it instead of importing the rows twice.
                var retryId = jobId + "R";
                if (!JobIds.IsWellFormed(retryId) || await client.GetInstanceAsync(JobIds.InstanceId(caller.Tenant, retryId), cancellationToken) is not null)
                {
                    return CommandError.Conflict("job_already_retried", JobIds.IsWellFormed(retryId)
                        ? $"This job was retried already, as job {retryId}; retry that one, or send a corrected file."
                        : "This job is a retry of a retry of ...; send a corrected file instead.");
                }

                return await StartAsync(caller, ImportOrchestrator.Name, earlier with { RetryOf = jobId }, cancellationToken, retryId);
            default:
                // Started again under its id: a verdict of the engine on the last run no longer applies.
                await failures.DeleteAsync(caller.Tenant, jobId, cancellationToken);
                watch.Forget(JobIds.InstanceId(caller.Tenant, jobId));
                try
                {
                    // Same id, same input: the orchestration finds its recorded chunks and runs only the rest.
                    await client.ScheduleNewOrchestrationInstanceAsync(instance.Name, instance.ReadInputAs<System.Text.Json.JsonElement>(),
                        new StartOrchestrationOptions(JobIds.InstanceId(caller.Tenant, jobId)), cancellationToken);
                }
                catch (OrchestrationAlreadyExistsException)
                {
                    return CommandError.Conflict("job_running", "The job is already running again.");
                }

                return JobView.Started(jobId, instance.Name, time.GetUtcNow(), job.Parameters ?? default);
        }
    }
}
