using System.Diagnostics;

namespace Platform.Functions.Triggers;

/// <summary>
/// Runs one invocation of a declared function in its own DI scope. Both the host's invocation endpoint and the
/// standalone runtime come through here, so a handler cannot tell which of the two fired it.
/// </summary>
public sealed partial class FunctionInvoker(IServiceScopeFactory scopes, ILogger<FunctionInvoker> logger)
{
    private static readonly ActivitySource Source = new("Platform.Functions.Triggers");

    public Task RunTimerAsync(TimerFunction function, TimerInvocation timer, CancellationToken cancellationToken) =>
        RunAsync(function, handler => ((ITimerHandler)handler).RunAsync(timer, cancellationToken));

    public Task RunQueueAsync(QueueFunction function, QueueInvocation message, CancellationToken cancellationToken) =>
        RunAsync(function, handler => ((IQueueHandler)handler).HandleAsync(message, cancellationToken));

    private async Task RunAsync(FunctionDeclaration function, Func<object, Task> invoke)
    {
        using var activity = Source.StartActivity(function.Name);
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["Function"] = function.Name });
        await using var services = scopes.CreateAsyncScope();
        var started = Stopwatch.GetTimestamp();
        try
        {
            await invoke(services.ServiceProvider.GetRequiredService(function.HandlerType));
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            LogSucceeded(logger, function.Name, elapsed);
        }
        catch (Exception ex)
        {
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            LogFailed(logger, ex, function.Name, elapsed);
            throw;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Function {Function} succeeded in {ElapsedMs:0.0} ms")]
    private static partial void LogSucceeded(ILogger logger, string function, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Function {Function} failed after {ElapsedMs:0.0} ms")]
    private static partial void LogFailed(ILogger logger, Exception exception, string function, double elapsedMs);
}
