using System.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Platform.Functions.Http;

/// <summary>
/// RFC 9457 problem details with the contract's extra members: a machine-readable snake_case <c>code</c> and the
/// <c>traceId</c> that finds the request in the logs.
/// </summary>
public static class Problems
{
    public static ProblemHttpResult Create(int status, string code, string title, string? detail = null) =>
        TypedResults.Problem(detail, statusCode: status, title: title, extensions: new Dictionary<string, object?> { ["code"] = code });

    public static ProblemHttpResult NotFound(string detail = "The resource does not exist.") =>
        Create(StatusCodes.Status404NotFound, "not_found", "Not found", detail);

    /// <summary>The default <c>code</c> of a status, for problems raised by the framework rather than by a handler.</summary>
    public static string DefaultCode(int status) => status switch
    {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        409 => "conflict",
        412 => "precondition_failed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        429 => "too_many_requests",
        503 => "service_unavailable",
        >= 500 => "internal_error",
        _ => "error",
    };

    public static string TraceId(HttpContext context) => Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier;
}

/// <summary>Collects field errors of a request body; empty means valid.</summary>
public sealed class Validation
{
    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

    public bool IsValid => _errors.Count == 0;

    public IReadOnlyDictionary<string, string[]> Errors => _errors.ToDictionary(e => e.Key, e => e.Value.ToArray());

    public Validation Add(string field, string message)
    {
        if (!_errors.TryGetValue(field, out var messages))
        {
            _errors[field] = messages = [];
        }

        messages.Add(message);
        return this;
    }

    /// <summary>Requires a non-blank string of at most <paramref name="maxLength"/> characters; returns it trimmed.</summary>
    public string Text(string field, string? value, int maxLength, int minLength = 1)
    {
        var trimmed = value?.Trim() ?? "";
        if (trimmed.Length < minLength)
        {
            Add(field, minLength <= 1 ? "is required" : $"must be at least {minLength} characters");
        }
        else if (trimmed.Length > maxLength)
        {
            Add(field, $"must be at most {maxLength} characters");
        }

        return trimmed;
    }

    /// <summary>400 <c>validation_failed</c> with <c>errors: { field: [messages] }</c>.</summary>
    public ProblemHttpResult ToProblem() =>
        TypedResults.Problem(
            detail: "One or more fields are invalid.",
            statusCode: StatusCodes.Status400BadRequest,
            title: "Validation failed",
            extensions: new Dictionary<string, object?>
            {
                ["code"] = "validation_failed",
                ["errors"] = Errors,
            });
}
