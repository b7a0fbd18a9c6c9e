using Azure;
using Microsoft.Extensions.Options;

namespace Platform.Functions.Storage;

/// <summary>
/// Creates every declared table, container and queue. It runs in the background and keeps retrying while storage
/// is unreachable, so the process still starts (the Functions host wants <c>GET /</c> within seconds) and becomes
/// ready on its own once storage answers.
/// </summary>
public sealed partial class StorageInitializer(
    StorageAccount storage,
    IOptions<StorageLayout> layout,
    ILogger<StorageInitializer> logger) : BackgroundService
{
    private readonly TaskCompletionSource _created = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsComplete => _created.Task.IsCompleted;

    /// <summary>Completes once every resource exists; trigger loops wait on it before touching storage.</summary>
    public Task WhenCreated(CancellationToken cancellationToken) => _created.Task.WaitAsync(cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(250);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await CreateAllAsync(stoppingToken);
                _created.TrySetResult();
                LogCreated(logger, layout.Value.Tables.Count, layout.Value.Containers.Count, layout.Value.Queues.Count);
                return;
            }
            catch (Exception ex) when (ex is RequestFailedException or AggregateException or HttpRequestException or TimeoutException or IOException)
            {
                LogUnavailable(logger, delay.TotalSeconds, ex.Message);
                await Task.Delay(delay, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    private async Task CreateAllAsync(CancellationToken cancellationToken)
    {
        var work = new List<Task>();
        work.AddRange(layout.Value.Tables.Select(t => storage.Table(t).CreateIfNotExistsAsync(cancellationToken)));
        work.AddRange(layout.Value.Containers.Select(c => storage.Container(c).CreateIfNotExistsAsync(cancellationToken: cancellationToken)));
        work.AddRange(layout.Value.Queues.Select(q => storage.Queue(q).CreateIfNotExistsAsync(cancellationToken: cancellationToken)));
        await Task.WhenAll(work);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Storage ready: {Tables} tables, {Containers} containers, {Queues} queues exist")]
    private static partial void LogCreated(ILogger logger, int tables, int containers, int queues);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Storage is not reachable yet; retrying in {Seconds}s: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, double seconds, string reason);
}
