using Platform.Functions.Storage;

namespace Platform.Functions.Triggers;

/// <summary>What the standalone timer and queue runtimes share: they fire only when no Functions host does.</summary>
internal static class StandaloneTriggers
{
    /// <summary>
    /// Runs one loop per declared function once storage exists, when this process fires its triggers itself; under the
    /// Functions host it does nothing (the host fires them through the invocation routes).
    /// </summary>
    public static async Task RunEachAsync<TFunction>(
        bool standalone, StorageInitializer initializer, IEnumerable<TFunction> functions, Func<TFunction, CancellationToken, Task> loop, CancellationToken stoppingToken)
    {
        if (!standalone)
        {
            return;
        }

        try
        {
            await initializer.WhenCreated(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        await Task.WhenAll(functions.Select(function => Task.Run(() => loop(function, stoppingToken), CancellationToken.None)));
    }
}
