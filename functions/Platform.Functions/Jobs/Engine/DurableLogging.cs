using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Platform.Functions.Jobs.Engine;

/// <summary>
/// The logger factory the durable engine writes to: the app's own logging, plus a watch for poison messages. The
/// Azure Storage backend only logs a message that keeps coming back (it never moves it aside), so an orchestration
/// whose message crashes every worker would look "running" forever. Every dequeue is logged with its dequeue count;
/// once a job's message has been dequeued <see cref="JobOptions.PoisonDequeueCount"/> times, the job is handed to
/// <see cref="PoisonedInstances"/> and failed with the reason by the engine host.
/// </summary>
public sealed class DurableLogging(ILoggerFactory app, Microsoft.Extensions.Options.IOptions<JobOptions> options) : IDisposable
{
    private readonly Channel<PoisonedMessage> _poisoned = Channel.CreateUnbounded<PoisonedMessage>();
    private readonly ConcurrentDictionary<string, byte> _reported = new(StringComparer.Ordinal);
    private ILoggerFactory? _factory;

    public ILoggerFactory Factory => _factory ??= new WatchingFactory(app, this);

    /// <summary>Job instances whose messages were found poisoned, each reported once per process.</summary>
    public ChannelReader<PoisonedMessage> PoisonedInstances => _poisoned.Reader;

    internal void Observe(IReadOnlyDictionary<string, object> fields)
    {
        if (fields.TryGetValue("DequeueCount", out var count) && Convert.ToInt64(count, System.Globalization.CultureInfo.InvariantCulture) is var dequeued &&
            dequeued >= options.Value.PoisonDequeueCount &&
            fields.TryGetValue("InstanceId", out var id) && id is string instanceId && JobIds.IsJobInstance(instanceId) &&
            _reported.TryAdd(instanceId, 0))
        {
            _poisoned.Writer.TryWrite(new PoisonedMessage(instanceId, dequeued));
        }
    }

    /// <summary>A job started again under its id (retry) is watched afresh.</summary>
    public void Forget(string instanceId) => _reported.TryRemove(instanceId, out _);

    public void Dispose() => _poisoned.Writer.TryComplete();

    private sealed class WatchingFactory(ILoggerFactory app, DurableLogging owner) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => new WatchingLogger(app.CreateLogger(categoryName), owner);

        public void AddProvider(ILoggerProvider provider) => app.AddProvider(provider);

        // The app owns its factory.
        public void Dispose()
        {
        }
    }

    private sealed class WatchingLogger(ILogger app, DurableLogging owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => app.BeginScope(state);

        // Dequeue records are informational: the watch needs them whatever level the app logs at.
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information || app.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Name == "ReceivedMessage" && state is IReadOnlyDictionary<string, object> fields)
            {
                owner.Observe(fields);
            }

            if (app.IsEnabled(logLevel))
            {
                app.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }
}

public sealed record PoisonedMessage(string InstanceId, long DequeueCount);
