using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Roles;

namespace Platform.Functions.Jobs;

/// <summary>
/// A kind of job that schedules and workflow steps start by name, with the parameters the tenant wrote as JSON
/// (<c>{ "type": "export", "parameters": { "kind": "users", "format": "csv" } }</c>). The owning capability implements
/// it next to its orchestrator and registers it with <see cref="JobTypeRegistration.AddJobType{T}"/>.
/// </summary>
public interface IJobType
{
    /// <summary>
    /// Checks the parameters as they are saved (in a schedule or a workflow step) and again when a run starts them.
    /// Field errors are added to <paramref name="validation"/> under <paramref name="field"/> (e.g.
    /// <c>target.job.parameters.format</c>). Returns the permission the starter needs besides <c>jobs.write</c>
    /// (e.g. <c>users.read</c> for an export of users), or null when the parameters are invalid.
    /// </summary>
    string? Check(JsonElement? parameters, string field, Validation validation);

    /// <summary>
    /// Starts the job for <paramref name="caller"/> under <paramref name="jobId"/>. Callers that may run twice for
    /// one occurrence (a scheduler after a crash, a replayed activity) derive the id from the occurrence, so the second
    /// start finds the first job instead of running the work twice (<see cref="JobTypes.StartAsync"/> handles that).
    /// </summary>
    Task<JobView> StartAsync(Caller caller, JsonElement? parameters, string jobId, CancellationToken cancellationToken);
}

public static class JobTypeRegistration
{
    /// <summary>Registers a job type under the name schedules and workflow steps use (<c>export</c>, <c>report</c>, ...).</summary>
    public static IServiceCollection AddJobType<T>(this IServiceCollection services, string name) where T : class, IJobType
    {
        services.AddKeyedSingleton<IJobType, T>(name);
        services.Configure<JobTypeCatalog>(catalog => catalog.Names.Add(name));
        return services;
    }
}

/// <summary>The names of every job type a schedule or workflow step may start.</summary>
public sealed class JobTypeCatalog
{
    public SortedSet<string> Names { get; } = new(StringComparer.Ordinal);
}

/// <summary>Checks and starts jobs by type name, for schedules and workflows.</summary>
public sealed class JobTypes(IServiceProvider services, IOptions<JobTypeCatalog> catalog, CallerPermissions permissions, JobCommands jobs)
{
    public IReadOnlyCollection<string> Names => catalog.Value.Names;

    /// <summary>
    /// Checks a job as a schedule or workflow step names it: errors under <c>{field}.type</c> and
    /// <c>{field}.parameters...</c>. Returns the permission the job needs besides <c>jobs.write</c> when valid.
    /// </summary>
    public string? Check(string? type, JsonElement? parameters, string field, Validation validation)
    {
        if (type is null || !catalog.Value.Names.Contains(type))
        {
            validation.Add(field + ".type", $"must be one of: {string.Join(", ", catalog.Value.Names)}");
            return null;
        }

        return services.GetRequiredKeyedService<IJobType>(type).Check(parameters, field + ".parameters", validation);
    }

    /// <summary>
    /// Checks the job and the caller's standing now, then starts it under <paramref name="jobId"/>. A job that already
    /// exists under that id (a second start of the same occurrence) is returned as it is, not started again.
    /// </summary>
    public async Task<Outcome<JobView>> StartAsync(Caller caller, string type, JsonElement? parameters, string jobId, CancellationToken cancellationToken)
    {
        if (await jobs.GetAsync(caller.Tenant, jobId, cancellationToken) is { } existing)
        {
            return existing;
        }

        var validation = new Validation();
        if (Check(type, parameters, "job", validation) is not { } permission)
        {
            return CommandError.Invalid(validation);
        }

        var granted = await permissions.ForAsync(caller, cancellationToken);
        if (!granted.Contains(Permissions.JobsWrite) || !granted.Contains(permission))
        {
            return CommandError.Forbidden($"Starting this {type} job needs the {Permissions.JobsWrite} and {permission} permissions.");
        }

        try
        {
            return await services.GetRequiredKeyedService<IJobType>(type).StartAsync(caller, parameters, jobId, cancellationToken);
        }
        catch (DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException)
        {
            return await jobs.GetAsync(caller.Tenant, jobId, cancellationToken) is { } started
                ? started
                : CommandError.Conflict("job_running", "The job is already starting.");
        }
    }
}
