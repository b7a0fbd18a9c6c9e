using System.Text.Json;
using Platform.Functions.Storage;

namespace Platform.Functions.Jobs;

/// <summary>
/// A kind of long work (import, export, report, backup ...). Each kind is registered once with
/// <see cref="JobTypeRegistration.AddJobType{T}"/>; the job engine finds it by its type name.
/// A run may be repeated (the message is delivered at least once), so it must be idempotent.
/// </summary>
public interface IJobType
{
    Task RunAsync(JobContext job, CancellationToken cancellationToken);
}

/// <param name="Attempt">1 on the first run; higher when the job is run again after a failure or a crash.</param>
public sealed record JobContext(TenantId Tenant, string JobId, string Type, JsonElement? Parameters, int Attempt);

/// <summary>The names of every registered job type.</summary>
public sealed class JobTypeRegistry
{
    public HashSet<string> Names { get; } = new(StringComparer.Ordinal);
}

public static class JobTypeRegistration
{
    public static IServiceCollection AddJobType<T>(this IServiceCollection services, string type) where T : class, IJobType
    {
        services.AddKeyedScoped<IJobType, T>(type);
        services.Configure<JobTypeRegistry>(registry => registry.Names.Add(type));
        return services;
    }
}
