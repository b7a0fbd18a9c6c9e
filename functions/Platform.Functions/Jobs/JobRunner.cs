using System.Text.Json;
using Azure;
using Microsoft.Extensions.Options;
using Platform.Functions.Housekeeping;
using Platform.Functions.Triggers;

namespace Platform.Functions.Jobs;

/// <summary>
/// The <c>Jobs</c> queue function: runs the job a message names. Re-delivery is expected (at-least-once), so a
/// finished job is left alone and every state change is an ETag-guarded update. A failure is recorded on the job
/// and rethrown so the queue retries it; after the last try the message is poisoned and
/// <see cref="JobPoisonHandler"/> fails the job with the reason.
/// </summary>
public sealed partial class JobRunner(
    JobQueue queue,
    IServiceProvider services,
    IOptions<JobTypeRegistry> registry,
    IOptions<JobOptions> options,
    Expirations expirations,
    TimeProvider time,
    ILogger<JobRunner> logger) : IQueueHandler
{
    public async Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
    {
        var (tenant, jobId) = JobJson.ReadMessage(message.Text);
        var jobs = queue.Jobs(tenant);
        var job = await jobs.GetAsync<JobEntity>(jobId, cancellationToken);
        if (job is null || job.IsFinished)
        {
            LogNothingToDo(logger, jobId, job?.Status ?? "missing");
            return;
        }

        job.State = JobStatus.Running;
        job.StartedAt ??= time.GetUtcNow();
        job.Attempts++;
        await jobs.UpdateAsync(job, job.ETag, cancellationToken);

        if (!registry.Value.Names.Contains(job.Type))
        {
            await FinishAsync(job, JobStatus.Failed, $"No job type is named '{job.Type}'.", cancellationToken);
            return;
        }

        var context = new JobContext(tenant, job.RowKey, job.Type,
            job.Parameters is null ? null : JsonSerializer.Deserialize<JsonElement>(job.Parameters), job.Attempts);
        try
        {
            await using var scope = services.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredKeyedService<IJobType>(job.Type).RunAsync(context, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await RecordErrorAsync(context, ex);
            throw;
        }

        job = (await jobs.GetAsync<JobEntity>(jobId, cancellationToken))!;
        await FinishAsync(job, job.Failed > 0 ? JobStatus.CompletedWithErrors : JobStatus.Succeeded, null, cancellationToken);
    }

    /// <summary>Sets a final status once and lets the row expire after the retention period.</summary>
    internal async Task FinishAsync(JobEntity job, JobStatus status, string? error, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await expirations.ScheduleAsync(JobQueue.TableName, new Storage.TenantId(job.PartitionKey), job.RowKey, now + options.Value.Retention, cancellationToken);
        job.State = status;
        job.Error = error;
        job.FinishedAt = now;
        await queue.Jobs(new Storage.TenantId(job.PartitionKey)).UpdateAsync(job, job.ETag, cancellationToken);
        LogFinished(logger, job.RowKey, job.Type, job.Status);
    }

    private async Task RecordErrorAsync(JobContext context, Exception ex)
    {
        try
        {
            var jobs = queue.Jobs(context.Tenant);
            var job = await jobs.GetAsync<JobEntity>(context.JobId, CancellationToken.None);
            if (job is not null)
            {
                job.LastError = Truncate($"{ex.GetType().Name}: {ex.Message}");
                await jobs.UpdateAsync(job, job.ETag, CancellationToken.None);
            }
        }
        catch (RequestFailedException)
        {
            // Best effort: the retry runs regardless, and the poison handler records what it knows.
        }
    }

    internal static string Truncate(string text) => text.Length <= 1024 ? text : text[..1024];

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} needs no run (status {Status})")]
    private static partial void LogNothingToDo(ILogger logger, string jobId, string status);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} of type {Type} finished: {Status}")]
    private static partial void LogFinished(ILogger logger, string jobId, string type, string status);
}

/// <summary>
/// The <c>JobsPoison</c> queue function: a job message that exhausted its tries lands here (moved by the Functions
/// host or by the standalone runtime alike), and its job is failed with the reason, so nothing is lost silently.
/// </summary>
public sealed partial class JobPoisonHandler(JobQueue queue, JobRunner runner, ILogger<JobPoisonHandler> logger) : IQueueHandler
{
    public async Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
    {
        (Storage.TenantId Tenant, string JobId) target;
        try
        {
            target = JobJson.ReadMessage(message.Text);
        }
        catch (PoisonMessageException)
        {
            LogUnreadable(logger, message.Id, message.Text.Length);
            return;
        }

        var job = await queue.Jobs(target.Tenant).GetAsync<JobEntity>(target.JobId, cancellationToken);
        if (job is null || job.IsFinished)
        {
            return;
        }

        var reason = $"The job was given up after {job.Attempts} attempts" + (job.LastError is null ? "." : $"; last error: {job.LastError}");
        await runner.FinishAsync(job, JobStatus.Failed, JobRunner.Truncate(reason), cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Poisoned message {MessageId} ({Length} characters) is not a job message and was dropped")]
    private static partial void LogUnreadable(ILogger logger, string messageId, int length);
}
