namespace Platform.Functions.Query;

/// <summary>
/// A filter or sort expression a client sent is not acceptable: a syntax error, an unknown field, a type mismatch or
/// an exceeded limit. Routes answer it with 400 <c>invalid_filter</c> (or <c>invalid_sort</c>) and the message, which
/// names the position so the client can find the mistake.
/// </summary>
public sealed class FilterException : Exception
{
    public FilterException()
        : this("Invalid filter", 0)
    {
    }

    public FilterException(string message)
        : this(message, 0)
    {
    }

    public FilterException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = message;
    }

    /// <param name="reason">What is wrong, without the position, e.g. <c>Unknown field 'foo'</c>.</param>
    /// <param name="position">0-based index of the character in the expression where the problem starts.</param>
    public FilterException(string reason, int position)
        : base($"{reason} at position {position}")
    {
        Reason = reason;
        Position = position;
    }

    /// <summary>0-based index of the character in the expression where the problem starts.</summary>
    public int Position { get; }

    /// <summary>What is wrong, without the position (the message is this followed by "at position N").</summary>
    public string Reason { get; }
}
