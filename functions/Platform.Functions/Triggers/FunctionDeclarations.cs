namespace Platform.Functions.Triggers;

/// <summary>
/// One non-HTTP function: declared once in C#, it becomes both a <c>function.json</c> for the Functions host
/// and a loop of the standalone runtime. HTTP needs no declaration: the single <c>api</c> function proxies it.
/// </summary>
public abstract record FunctionDeclaration(string Name, Type HandlerType)
{
    /// <summary>The name the HTTP proxy function takes; no other function may use it.</summary>
    public const string HttpFunctionName = "api";
}

/// <summary>A timer trigger on a 6-field NCRONTAB schedule (seconds first), evaluated in UTC.</summary>
public sealed record TimerFunction(string Name, string Schedule, Type HandlerType) : FunctionDeclaration(Name, HandlerType);

/// <summary>A queue trigger; failures are retried and after the dequeue limit the message moves to <see cref="PoisonQueueName"/>.</summary>
public sealed record QueueFunction(string Name, string QueueName, Type HandlerType) : FunctionDeclaration(Name, HandlerType)
{
    public string PoisonQueueName => QueueName + "-poison";
}

public interface ITimerHandler
{
    Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken);
}

public interface IQueueHandler
{
    Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken);
}

/// <summary>What a timer handler learns about its firing; the same whether the host or the standalone runtime fired it.</summary>
/// <param name="IsPastDue">The occurrence was missed (the app was down) and is being run late.</param>
public sealed record TimerInvocation(bool IsPastDue, DateTimeOffset? Last, DateTimeOffset? Next);

/// <summary>A queue message as text (base64 already removed), with how often it has been handed out.</summary>
public sealed record QueueInvocation(string Id, string Text, long DequeueCount);

/// <summary>
/// Thrown by a queue handler for a message that can never succeed (unreadable, unknown kind): the standalone
/// runtime moves it to the poison queue at once instead of retrying it.
/// </summary>
public sealed class PoisonMessageException(string message) : Exception(message);
