using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Files;

namespace Platform.Functions.Jobs.Exports;

/// <summary>
/// An export as a schedule or workflow step names it: <c>{ "type": "export", "parameters": { kind, format, filter? } }</c>,
/// checked by the same rules as <c>POST /api/v1/jobs/exports</c>.
/// </summary>
public sealed class ExportJobType(IOptions<ExportKindCatalog> catalog, IServiceProvider services, JobCommands jobs) : IJobType
{
    public string? Check(JsonElement? parameters, string field, Validation validation)
    {
        if (parameters is not { ValueKind: JsonValueKind.Object } json)
        {
            validation.Add(field, "must be an object with kind, format and an optional filter");
            return null;
        }

        var request = Read(json, field, validation);
        return request is null ? null : Check(request, field + ".", validation);
    }

    /// <summary>The rules of an export request; the permission the kind needs when it is valid.</summary>
    public string? Check(JobsEndpoints.ExportRequest request, string prefix, Validation validation)
    {
        string? permission = null;
        if (request.Kind is null || !catalog.Value.Kinds.TryGetValue(request.Kind, out permission))
        {
            validation.Add(prefix + "kind", $"must be one of: {string.Join(", ", catalog.Value.Kinds.Keys)}");
        }

        if (FormatOf(request.Format) is null)
        {
            validation.Add(prefix + "format", "must be csv, json or xlsx");
        }

        if (request.Filter?.Length > JobsEndpoints.MaxFilterLength)
        {
            validation.Add(prefix + "filter", $"must be at most {JobsEndpoints.MaxFilterLength} characters");
        }
        else if (permission is not null)
        {
            // Export kinds are scoped services (they read through the request's storage clients).
            using var scope = services.CreateScope();
            if (scope.ServiceProvider.GetRequiredKeyedService<IExportKind>(request.Kind).CheckFilter(request.Filter) is { } filterError)
            {
                validation.Add(prefix + "filter", filterError);
            }
        }

        return validation.IsValid ? permission : null;
    }

    public Task<JobView> StartAsync(Caller caller, JsonElement? parameters, string jobId, CancellationToken cancellationToken)
    {
        var request = Read(parameters!.Value, "parameters", new Validation())!;
        return jobs.StartAsync(caller, ExportOrchestrator.Name, Parameters(request), cancellationToken, jobId);
    }

    public static ExportParameters Parameters(JobsEndpoints.ExportRequest request) =>
        new(request.Kind!, FormatOf(request.Format)!.Value.ToString().ToLowerInvariant(), request.Filter);

    public static TabularFormat? FormatOf(string? format) => format switch
    {
        null or "csv" => TabularFormat.Csv,
        "json" or "ndjson" => TabularFormat.Json,
        "xlsx" => TabularFormat.Xlsx,
        _ => null,
    };

    private static JobsEndpoints.ExportRequest? Read(JsonElement json, string field, Validation validation)
    {
        string? Text(string name)
        {
            if (!json.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (value.ValueKind != JsonValueKind.String)
            {
                validation.Add($"{field}.{name}", "must be a string");
                return null;
            }

            return value.GetString();
        }

        var request = new JobsEndpoints.ExportRequest(Text("kind"), Text("format"), Text("filter"));
        return validation.IsValid ? request : null;
    }
}
