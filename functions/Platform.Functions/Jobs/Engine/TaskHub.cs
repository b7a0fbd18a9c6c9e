using System.Text.Json;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using DurableTask.AzureStorage;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Converters;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Jobs.Engine;

/// <summary>
/// The app's task hub on the Durable Task Framework's Azure Storage backend: control queues, the work-item queue,
/// history and instance tables and the large-message container, in the app's own storage account. Every app
/// instance builds the same hub from the same settings and joins it; table partition management spreads the
/// control-queue partitions over the instances that are up.
/// </summary>
public sealed class TaskHub : IAsyncDisposable
{
    /// <summary>Fixed when the hub is first created: changing it later would strand instances in old partitions.</summary>
    public const int PartitionCount = 4;

    private readonly Lock _gate = new();
    private Task<AzureStorageOrchestrationService>? _service;

    /// <param name="policies">
    /// Policies for the engine's own storage clients (its queues, history and instance tables), once per request sent: none
    /// in production; a test registers one to hold back a write and make a race happen every time.
    /// </param>
    public TaskHub(
        IOptions<StorageConnection> connection, IOptions<StorageOptions> storage, IOptions<JobOptions> options, DurableLogging logging,
        IEnumerable<EngineStoragePolicy>? policies = null)
    {
        var jobs = options.Value;
        Name = NameFor(storage.Value.Prefix);
        Converter = new JsonDataConverter(new JsonSerializerOptions(JsonSerializerDefaults.Web));
        Settings = new AzureStorageOrchestrationServiceSettings
        {
            StorageAccountClientProvider = ClientsFor(connection.Value, [.. (policies ?? []).Select(p => p.Policy)]),
            TaskHubName = Name,
            // One app, many instances: the app name is shared, the worker id is each instance's own, so leases and
            // logs tell instances apart.
            AppName = "platform",
            WorkerId = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}",
            PartitionCount = PartitionCount,
            UseTablePartitionManagement = true,
            UseSeparateQueueForEntityWorkItems = true,
            UseInstanceTableEtag = true,
            MaxQueuePollingInterval = jobs.MaxPollingInterval,
            // A crashed worker's dequeued messages come back after these: long enough for the longest episode or
            // chunk, short enough that a crash costs a pause rather than the default five minutes.
            ControlQueueVisibilityTimeout = jobs.MessageVisibilityTimeout,
            WorkItemQueueVisibilityTimeout = jobs.MessageVisibilityTimeout,
            MaxConcurrentTaskActivityWorkItems = jobs.MaxConcurrentActivities,
            MaxConcurrentTaskOrchestrationWorkItems = jobs.MaxConcurrentOrchestrations,
            LoggerFactory = logging.Factory,
        };
    }

    /// <summary>Derived from the storage prefix, so tests and benchmark runs sharing one account never share a hub.</summary>
    public string Name { get; }

    public DataConverter Converter { get; }

    internal AzureStorageOrchestrationServiceSettings Settings { get; }

    /// <summary>The orchestration service, its queues, tables and containers created if missing (never re-created).</summary>
    public async Task<AzureStorageOrchestrationService> ServiceAsync(CancellationToken cancellationToken)
    {
        Task<AzureStorageOrchestrationService> creating;
        lock (_gate)
        {
            // A failed creation (storage unreachable at the time) is tried again by the next caller.
            if (_service is null || _service.IsFaulted || _service.IsCanceled)
            {
                _service = CreateAsync();
            }

            creating = _service;
        }

        return creating.IsCompletedSuccessfully ? creating.Result : await creating.WaitAsync(cancellationToken);
    }

    public static string NameFor(string storagePrefix) => "Platform" + storagePrefix;

    private async Task<AzureStorageOrchestrationService> CreateAsync()
    {
        var service = new AzureStorageOrchestrationService(Settings);
        // CreateIfNotExistsAsync, never CreateAsync: the latter deletes the hub and everything in flight.
        await service.CreateIfNotExistsAsync();
        return service;
    }

    private static StorageAccountClientProvider ClientsFor(StorageConnection connection, IReadOnlyList<HttpPipelinePolicy> policies)
    {
        // Plain client options are the backend's own defaults: these differ only by the policies, if any.
        T With<T>(T options) where T : ClientOptions
        {
            foreach (var policy in policies)
            {
                options.AddPolicy(policy, HttpPipelinePosition.PerRetry);
            }

            return options;
        }

        if (connection.UsesConnectionString)
        {
            var connectionString = connection.ConnectionString!;
            return new StorageAccountClientProvider(
                StorageServiceClientProvider.ForBlob(connectionString, With(new BlobClientOptions())),
                StorageServiceClientProvider.ForQueue(connectionString, With(new QueueClientOptions())),
                StorageServiceClientProvider.ForTable(connectionString, With(new TableClientOptions())));
        }

        var credential = new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = connection.ClientId });
        return new StorageAccountClientProvider(
            StorageServiceClientProvider.ForBlob(connection.BlobServiceUri!, credential, With(new BlobClientOptions())),
            StorageServiceClientProvider.ForQueue(connection.QueueServiceUri!, credential, With(new QueueClientOptions())),
            StorageServiceClientProvider.ForTable(connection.TableServiceUri!, credential, With(new TableClientOptions())));
    }

    public async ValueTask DisposeAsync()
    {
        if (_service is { IsCompletedSuccessfully: true } created)
        {
            created.Result.Dispose();
        }

        await Task.CompletedTask;
    }
}

/// <summary>A pipeline policy for the engine's storage clients only (see <see cref="TaskHub"/>'s constructor).</summary>
public sealed record EngineStoragePolicy(HttpPipelinePolicy Policy);
