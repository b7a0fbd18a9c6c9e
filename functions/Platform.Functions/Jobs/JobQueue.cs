using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Jobs;

/// <summary>The message on the <c>jobs</c> queue: which job of which tenant to run. Nothing else travels in it.</summary>
public sealed record JobMessage(string TenantId, string JobId);

/// <summary>Starts jobs: writes the job row, then queues its message.</summary>
public sealed class JobQueue(StorageAccount storage, IOptions<JobTypeRegistry> registry, TimeProvider time)
{
    public const string QueueName = "jobs";
    public const string TableName = "jobs";

    /// <summary>Parameters above this size belong in a blob, not in the job row.</summary>
    public const int MaxParametersLength = 16 * 1024;

    public TenantPartition Jobs(TenantId tenant) => storage.TenantTable(TableName).For(tenant);

    public async Task<JobEntity> StartAsync(TenantId tenant, string type, JsonElement? parameters, CancellationToken cancellationToken)
    {
        if (!registry.Value.Names.Contains(type))
        {
            throw new ArgumentException($"No job type is named '{type}'.", nameof(type));
        }

        var serialized = parameters?.GetRawText();
        if (serialized?.Length > MaxParametersLength)
        {
            throw new ArgumentException($"Job parameters are limited to {MaxParametersLength} characters.", nameof(parameters));
        }

        var job = new JobEntity
        {
            RowKey = Ids.New(time),
            Type = type,
            State = JobStatus.Queued,
            Parameters = serialized,
            CreatedAt = time.GetUtcNow(),
        };

        // Row first: a message always finds its job. A row whose message was never sent stays queued and is
        // visible as such; the reverse (a message without a row) would be work nobody can see.
        await Jobs(tenant).AddAsync(job, cancellationToken);
        await storage.Queue(QueueName).SendMessageAsync(
            BinaryData.FromObjectAsJson(new JobMessage(tenant.Value, job.RowKey), JobJson.Options), cancellationToken: cancellationToken);
        return job;
    }
}

internal static class JobJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    /// <summary>Reads a job message; anything unreadable can never succeed and is poison.</summary>
    public static (TenantId Tenant, string JobId) ReadMessage(string text)
    {
        JobMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<JobMessage>(text, Options);
        }
        catch (JsonException)
        {
            message = null;
        }

        if (message is null || !TenantId.TryParse(message.TenantId, out var tenant) || string.IsNullOrEmpty(message.JobId) || message.JobId.Length > 64)
        {
            throw new Triggers.PoisonMessageException("Not a job message.");
        }

        return (tenant, message.JobId);
    }
}
