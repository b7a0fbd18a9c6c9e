using System.Diagnostics.CodeAnalysis;

namespace Platform.Functions.Query;

/// <summary>
/// The type of a field a list route lets clients filter and sort on; it decides which operators and literals a
/// filter may use with the field.
/// </summary>
[SuppressMessage("Naming", "CA1720:Identifier contains type name",
    Justification = "The members name the filter language's types, which a route author reads next to the contract.")]
public enum FieldType
{
    /// <summary>Text: <c>eq ne gt ge lt le</c> (ordinal), <c>contains</c>, <c>startswith</c>, <c>in</c>.</summary>
    String,

    /// <summary>A number, compared as a double: <c>eq ne gt ge lt le</c>, <c>in</c>.</summary>
    Number,

    /// <summary><c>true</c> or <c>false</c>: <c>eq ne</c>, <c>in</c>.</summary>
    Boolean,

    /// <summary>An instant, written as an ISO-8601 literal: <c>eq ne gt ge lt le</c>, <c>in</c>.</summary>
    Timestamp,

    /// <summary>A collection of strings such as <c>roles</c> or <c>tags</c>: only <c>has</c> (and <c>eq/ne null</c>).</summary>
    StringList,
}
