using DurableTask.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Shims;

namespace Platform.Functions.Jobs.Engine;

/// <summary>Every orchestrator and activity the app runs, by name: what the worker can execute.</summary>
public sealed class DurableCatalog
{
    public Dictionary<string, Type> Orchestrators { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, Type> Activities { get; } = new(StringComparer.Ordinal);
}

public static class DurableRegistration
{
    /// <summary>
    /// An orchestrator: a new instance per work item, built without services (orchestrator code is deterministic
    /// replayed code: it reaches the world only through activities).
    /// </summary>
    public static IServiceCollection AddOrchestrator<T>(this IServiceCollection services, string name) where T : class, ITaskOrchestrator, new()
    {
        services.Configure<DurableCatalog>(catalog => catalog.Orchestrators.Add(name, typeof(T)));
        return services;
    }

    /// <summary>An activity: resolved from a fresh DI scope for every execution, so it can take scoped services.</summary>
    public static IServiceCollection AddActivity<T>(this IServiceCollection services, string name) where T : class, ITaskActivity
    {
        services.AddScoped<T>();
        services.Configure<DurableCatalog>(catalog => catalog.Activities.Add(name, typeof(T)));
        return services;
    }
}

/// <summary>Builds the DTFx object managers from the catalog, through the Durable Task SDK's shim factory.</summary>
internal sealed class DurableObjects(Microsoft.Extensions.Options.IOptions<DurableCatalog> options, IServiceProvider services, TaskHub hub, ILoggerFactory loggers)
{
    private readonly DurableCatalog catalog = options.Value;

    private DurableTaskShimFactory Shims { get; } = new(new DurableTaskWorkerOptions { DataConverter = hub.Converter }, loggers);

    public INameVersionObjectManager<TaskOrchestration> Orchestrations()
    {
        var manager = new ObjectManager<TaskOrchestration>();
        foreach (var (name, type) in catalog.Orchestrators)
        {
            manager.Add(new Creator<TaskOrchestration>(name, () => Shims.CreateOrchestration(name, (ITaskOrchestrator)Activator.CreateInstance(type)!)));
        }

        return manager;
    }

    public INameVersionObjectManager<TaskActivity> Activities()
    {
        var manager = new ObjectManager<TaskActivity>();
        foreach (var (name, type) in catalog.Activities)
        {
            var scoped = new ScopedActivity(type, services);
            manager.Add(new Creator<TaskActivity>(name, () => Shims.CreateActivity(name, scoped)));
        }

        return manager;
    }

    /// <summary>Runs the real activity in its own DI scope; its input and output types are the real activity's.</summary>
    private sealed class ScopedActivity : ITaskActivity
    {
        private readonly Type _type;
        private readonly IServiceProvider _services;

        public ScopedActivity(Type type, IServiceProvider services)
        {
            _type = type;
            _services = services;
            var generic = type;
            while (generic is not null && !(generic.IsGenericType && generic.GetGenericTypeDefinition() == typeof(Microsoft.DurableTask.TaskActivity<,>)))
            {
                generic = generic.BaseType;
            }

            var arguments = generic?.GetGenericArguments() ?? throw new InvalidOperationException($"{type} does not derive from TaskActivity<TInput, TOutput>.");
            InputType = arguments[0];
            OutputType = arguments[1];
        }

        public Type InputType { get; }

        public Type OutputType { get; }

        public async Task<object?> RunAsync(TaskActivityContext context, object? input)
        {
            await using var scope = _services.CreateAsyncScope();
            var activity = (ITaskActivity)scope.ServiceProvider.GetRequiredService(_type);
            return await activity.RunAsync(context, input);
        }
    }

    private sealed class Creator<T> : ObjectCreator<T>
    {
        private readonly Func<T> _create;

        public Creator(string name, Func<T> create)
        {
            Name = name;
            Version = string.Empty;
            _create = create;
        }

        public override T Create() => _create();
    }

    private sealed class ObjectManager<T> : INameVersionObjectManager<T>
    {
        private readonly Dictionary<string, ObjectCreator<T>> _creators = new(StringComparer.Ordinal);

        public void Add(ObjectCreator<T> creator) => _creators.Add(creator.Name, creator);

        // Versions are not used: an unknown name yields null, which DTFx reports as a missing type.
        public T GetObject(string name, string? version) => _creators.TryGetValue(name, out var creator) ? creator.Create() : default!;
    }
}
