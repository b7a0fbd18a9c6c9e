using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Microsoft.Extensions.Options;

namespace Platform.Functions.Storage;

/// <summary>
/// The storage account's three services, with the configured name prefix applied to every resource name.
/// Tenant data is reached through <see cref="TenantTable"/>, which needs a <see cref="TenantId"/>; the raw
/// clients here are for platform-owned resources (trigger state, job queues, housekeeping).
/// </summary>
public sealed class StorageAccount
{
    private readonly TableServiceClient _tables;
    private readonly BlobServiceClient _blobs;
    private readonly QueueServiceClient _queues;

    private readonly StorageLayout _layout;
    private readonly ChangeLogWriter _changeLog;

    /// <param name="policies">
    /// Policies to add to every client's pipeline, once per request sent (retries included): none in production; a test
    /// registers one (as <see cref="HttpPipelinePolicy"/>) to count the storage calls a route makes.
    /// </param>
    public StorageAccount(
        IOptions<StorageConnection> connection, IOptions<StorageOptions> options, IOptions<StorageLayout> layout, TimeProvider time,
        IEnumerable<HttpPipelinePolicy>? policies = null)
    {
        _layout = layout.Value;
        Prefix = options.Value.Prefix;
        var settings = connection.Value;

        // Fail fast rather than stall: a request, health probe or trigger loop must notice an outage in seconds.
        static void Tune(ClientOptions o)
        {
            o.Retry.MaxRetries = 2;
            o.Retry.Delay = TimeSpan.FromMilliseconds(200);
            o.Retry.MaxDelay = TimeSpan.FromSeconds(2);
            o.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);
        }

        var tableOptions = new TableClientOptions();
        var blobOptions = new BlobClientOptions();
        // The Functions host's queue trigger decodes base64 by default (host.json messageEncoding), so every
        // message we send is base64 too, in both modes.
        var queueOptions = new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 };
        Tune(tableOptions);
        Tune(blobOptions);
        Tune(queueOptions);
        foreach (var policy in policies ?? [])
        {
            tableOptions.AddPolicy(policy, HttpPipelinePosition.PerRetry);
            blobOptions.AddPolicy(policy, HttpPipelinePosition.PerRetry);
            queueOptions.AddPolicy(policy, HttpPipelinePosition.PerRetry);
        }

        if (settings.UsesConnectionString)
        {
            _tables = new TableServiceClient(settings.ConnectionString, tableOptions);
            Transactions = EntityGroupTransactions.WithAccountKey(settings.ConnectionString!, _tables.Uri, tableOptions) ?? EntityGroupTransactions.ThroughSdk;
            _blobs = new BlobServiceClient(settings.ConnectionString, blobOptions);
            _queues = new QueueServiceClient(settings.ConnectionString, queueOptions);
        }
        else
        {
            TokenCredential credential = new DefaultAzureCredential(new DefaultAzureCredentialOptions
            {
                ManagedIdentityClientId = settings.ClientId,
            });
            _tables = new TableServiceClient(settings.TableServiceUri!, credential, tableOptions);
            Transactions = EntityGroupTransactions.WithToken(credential, _tables.Uri, tableOptions);
            _blobs = new BlobServiceClient(settings.BlobServiceUri!, credential, blobOptions);
            _queues = new QueueServiceClient(settings.QueueServiceUri!, credential, queueOptions);
        }

        if (options.Value.Transactions == TransactionWriter.Sdk)
        {
            Transactions = EntityGroupTransactions.ThroughSdk;
        }

        _changeLog = new ChangeLogWriter(time, Transactions);
    }

    /// <summary>Writes entity-group transactions for every table of the account (<see cref="TenantPartition.SubmitTransactionAsync"/>).</summary>
    public EntityGroupTransactions Transactions { get; }

    public string Prefix { get; }

    public TableServiceClient TableService => _tables;
    public BlobServiceClient BlobService => _blobs;
    public QueueServiceClient QueueService => _queues;

    public TableClient Table(string name) => _tables.GetTableClient(Prefix + name);

    public BlobContainerClient Container(string name) => _blobs.GetBlobContainerClient(Prefix + name);

    public QueueClient Queue(string name) => _queues.GetQueueClient(Prefix + name);

    /// <summary>A table whose every partition is one tenant: the only way to reach tenant rows.</summary>
    public TenantTable TenantTable(string name) =>
        new(name, Table(name), _layout.ChangeLogged.TryGetValue(name, out var prefixes) ? prefixes : [], _changeLog, Transactions);
}
