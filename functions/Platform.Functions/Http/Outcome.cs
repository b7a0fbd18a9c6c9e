using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Platform.Functions.Http;

/// <summary>
/// Why a command did not happen: a status, the contract's problem <c>code</c>, a message, and field errors for 400.
/// Every capability's commands answer with this one type, so every refusal becomes the same problem shape.
/// </summary>
public sealed record CommandError(int Status, string Code, string Message, Validation? Fields = null)
{
    /// <summary>The problem's title where the status's usual one says less ("Account locked", "Not an image" ...).</summary>
    public string? Title { get; init; }

    /// <summary>How long a refusal holds (an account lockout); sent as <c>Retry-After</c> by <see cref="ToProblem(HttpContext)"/>.</summary>
    public TimeSpan? RetryAfter { get; init; }

    public ProblemHttpResult ToProblem() =>
        Fields is { IsValid: false } fields ? fields.ToProblem() : Problems.Create(Status, Code, Title ?? DefaultTitle(Status), Message);

    /// <summary>The problem, with the response headers the refusal carries (<c>Retry-After</c>).</summary>
    public ProblemHttpResult ToProblem(HttpContext http)
    {
        if (RetryAfter is { } retryAfter)
        {
            http.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return ToProblem();
    }

    private static string DefaultTitle(int status) => status switch
    {
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        412 => "Precondition failed",
        429 => "Too many requests",
        _ => "Invalid request",
    };

    public static CommandError Invalid(Validation validation) => new(400, "validation_failed", "One or more fields are invalid.", validation);

    public static CommandError NotFound(string what) => new(404, "not_found", $"No {what} of this tenant has this id.");

    public static CommandError Stale(string what) => new(412, "precondition_failed", $"The {what} changed since you read it; read it again.");

    public static CommandError Forbidden(string message) => new(403, "forbidden", message);

    public static CommandError Conflict(string code, string message) => new(409, code, message);
}

/// <summary>
/// What a command gives back: its value, or the <see cref="CommandError"/> that stopped it. Commands return a value
/// or an error directly (both convert implicitly); handlers turn the outcome into an HTTP result in one line with
/// <see cref="ToResult{TResult}"/>.
/// </summary>
public readonly struct Outcome<T>
{
    private readonly T? _value;

    private Outcome(T? value, CommandError? error)
    {
        _value = value;
        Error = error;
    }

    public CommandError? Error { get; }

    [MemberNotNullWhen(false, nameof(Error))]
    public bool Succeeded => Error is null;

    /// <summary>The value of a successful outcome; reading it from a failed one is a bug.</summary>
    public T Value => Error is null ? _value! : throw new InvalidOperationException($"The command failed ({Error.Code}); it has no value.");

    public static implicit operator Outcome<T>(T value) => new(value, null);

    public static implicit operator Outcome<T>(CommandError error) => new(default, error ?? throw new ArgumentNullException(nameof(error)));

    public bool Failed([NotNullWhen(true)] out CommandError? error, [MaybeNullWhen(true)] out T value)
    {
        error = Error;
        value = _value!;
        return error is not null;
    }

    /// <summary>The success result built from the value, or the error's problem.</summary>
    public Results<TResult, ProblemHttpResult> ToResult<TResult>(Func<T, TResult> onSuccess) where TResult : IResult =>
        Error is null ? onSuccess(_value!) : Error.ToProblem();

    /// <summary>As <see cref="ToResult{TResult}(Func{T, TResult})"/>, with the error's response headers (<c>Retry-After</c>).</summary>
    public Results<TResult, ProblemHttpResult> ToResult<TResult>(HttpContext http, Func<T, TResult> onSuccess) where TResult : IResult =>
        Error is null ? onSuccess(_value!) : Error.ToProblem(http);
}
