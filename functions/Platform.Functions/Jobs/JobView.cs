using System.Text.Json;
using Microsoft.DurableTask.Client;

namespace Platform.Functions.Jobs;

/// <summary>A job as the API shows it, mapped from its orchestration instance's runtime status, custom status and output.</summary>
public sealed record JobView(
    string Id,
    string Type,
    string Status,
    JobProgress Progress,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    string? ResultUrl,
    string? ErrorReportUrl,
    string? Error,
    string? Note,
    JsonElement? Parameters,
    IReadOnlyDictionary<string, double>? Figures = null)
{
    public const string Queued = "queued";
    public const string Running = "running";

    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsFinished => Status is not (Queued or Running);

    public static string UrlOf(string jobId) => $"{JobsEndpoints.Path}/{jobId}";

    /// <summary>A job just started, before the engine has seen it.</summary>
    public static JobView Started(string jobId, string type, DateTimeOffset at, object parameters) =>
        new(jobId, type, Queued, JobProgress.None, at, null, null, null, null, null, null, Shown(JsonSerializer.SerializeToElement(parameters, Converter)));

    /// <summary>The engine's converter options: parameters read as the orchestration stored them.</summary>
    private static readonly JsonSerializerOptions Converter = new(JsonSerializerDefaults.Web);

    /// <summary>What the caller asked for; the engine's own tuning (chunk sizes) is not part of it.</summary>
    private static JsonElement Shown(JsonElement parameters)
    {
        if (parameters.ValueKind != JsonValueKind.Object)
        {
            return parameters;
        }

        var shown = new System.Text.Json.Nodes.JsonObject();
        foreach (var property in parameters.EnumerateObject())
        {
            if (property.Name is not ("chunkRows" or "chunkBytes" or "parallelism"))
            {
                shown[property.Name] = System.Text.Json.Nodes.JsonNode.Parse(property.Value.GetRawText());
            }
        }

        return JsonSerializer.SerializeToElement(shown);
    }

    public static JobView From(OrchestrationMetadata instance, string jobId, JobFailureEntity? poisoned = null)
    {
        var running = Read<JobRunningStatus>(instance.SerializedCustomStatus);
        var outcome = Read<JobOutcome>(instance.SerializedOutput);
        JsonElement? parameters = null;
        if (instance.SerializedInput is { } input && Read<JsonElement>(input) is { ValueKind: JsonValueKind.Object } inputJson &&
            inputJson.TryGetProperty("parameters", out var p))
        {
            parameters = Shown(p);
        }

        var finishedAt = instance.IsCompleted ? instance.LastUpdatedAt : (DateTimeOffset?)null;
        var status = instance.RuntimeStatus switch
        {
            OrchestrationRuntimeStatus.Pending => Queued,
            OrchestrationRuntimeStatus.Completed => outcome?.Status ?? JobOutcome.Succeeded,
            OrchestrationRuntimeStatus.Failed => JobOutcome.Failed,
            // Terminated by the engine for a poisoned message (with a failed outcome), or by an operator.
            OrchestrationRuntimeStatus.Terminated => outcome?.Status ?? JobOutcome.Cancelled,
            _ => Running,
        };
        if (poisoned is not null && !instance.IsCompleted)
        {
            return new JobView(jobId, instance.Name, JobOutcome.Failed, running?.Progress ?? JobProgress.None, instance.CreatedAt,
                running?.StartedAt, poisoned.At, null, null, poisoned.Reason, null, parameters);
        }

        var error = outcome?.Error ?? (instance.RuntimeStatus == OrchestrationRuntimeStatus.Failed ? instance.FailureDetails?.ErrorMessage ?? "The job failed." : null);

        return new JobView(
            jobId,
            instance.Name,
            status,
            outcome?.Progress ?? running?.Progress ?? JobProgress.None,
            instance.CreatedAt,
            outcome?.StartedAt ?? running?.StartedAt,
            finishedAt,
            outcome?.Result is null ? null : UrlOf(jobId) + "/result",
            outcome?.ErrorReport is null ? null : UrlOf(jobId) + "/error-report",
            error,
            outcome?.Note,
            parameters,
            // What a workflow's condition step tests (a report's lowStockCount); JSON has no NaN or infinity.
            outcome?.Figures?.Where(figure => double.IsFinite(figure.Value)).ToDictionary(figure => figure.Key, figure => figure.Value));
    }

    private static T? Read<T>(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return default;
        }

        try
        {
            return JsonSerializer.Deserialize<T>(json, JsonSerializerOptions.Web);
        }
        catch (JsonException)
        {
            return default;
        }
    }
}
