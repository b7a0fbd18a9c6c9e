using System.Text.Json;
using Platform.Functions.Triggers;

namespace Platform.Tests.Foundation;

public sealed class QueueMessageTextTests
{
    [Theory]
    [InlineData("""{"a":1}""", """{"a":1}""")]
    [InlineData("\"plain text\"", "plain text")]
    [InlineData("\"{\\\"a\\\":1}\"", """{"a":1}""")]
    [InlineData("\"\\\"{\\\\\\\"a\\\\\\\":1}\\\"\"", """{"a":1}""")]
    [InlineData("\"\\\"quoted\\\" and \\\"more\\\"\"", "\"quoted\" and \"more\"")]
    [InlineData("42", "42")]
    public void HostMessageValueDecodesToTheTextThatWasQueued(string value, string expected)
    {
        using var document = JsonDocument.Parse(value);

        Assert.Equal(expected, QueueMessageText.Decode(document.RootElement));
    }
}
