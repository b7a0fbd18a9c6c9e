using System.Text.RegularExpressions;
using Cronos;
using Platform.Functions.Storage;

namespace Platform.Functions.Triggers;

/// <summary>Every timer and queue function of the app, as declared by the capabilities that own them.</summary>
public sealed partial class FunctionCatalog
{
    public FunctionCatalog(IEnumerable<FunctionDeclaration> declarations)
    {
        All = [.. declarations.OrderBy(d => d.Name, StringComparer.Ordinal)];
        foreach (var declaration in All)
        {
            if (!NamePattern().IsMatch(declaration.Name) ||
                string.Equals(declaration.Name, FunctionDeclaration.HttpFunctionName, StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"'{declaration.Name}' is not a usable function name.");
            }
        }

        var duplicate = All.GroupBy(d => d.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidOperationException($"Function '{duplicate.Key}' is declared twice.");
        }
    }

    public IReadOnlyList<FunctionDeclaration> All { get; }

    public IEnumerable<TimerFunction> Timers => All.OfType<TimerFunction>();

    public IEnumerable<QueueFunction> Queues => All.OfType<QueueFunction>();

    public FunctionDeclaration? Find(string name) =>
        All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
    internal static partial Regex NamePattern();
}

public static class FunctionRegistration
{
    /// <summary>Declares a timer function: its schedule is checked now, so a typo fails the start, not the first firing.</summary>
    public static IServiceCollection AddTimerFunction<THandler>(this IServiceCollection services, string name, string schedule)
        where THandler : class, ITimerHandler
    {
        CronExpression.Parse(schedule, CronFormat.IncludeSeconds);
        services.AddScoped<THandler>();
        services.AddSingleton<FunctionDeclaration>(new TimerFunction(name, schedule, typeof(THandler)));
        return services;
    }

    public static IServiceCollection AddQueueFunction<THandler>(this IServiceCollection services, string name, string queueName)
        where THandler : class, IQueueHandler
    {
        var declaration = new QueueFunction(name, queueName, typeof(THandler));
        services.AddScoped<THandler>();
        services.AddSingleton<FunctionDeclaration>(declaration);
        services.AddStorageQueue(declaration.QueueName);
        services.AddStorageQueue(declaration.PoisonQueueName);
        return services;
    }
}
