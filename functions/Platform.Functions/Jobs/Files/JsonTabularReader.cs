using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace Platform.Functions.Jobs.Files;

/// <summary>
/// A JSON array of objects, or NDJSON (one object per line; any whitespace between objects is accepted). The file is
/// read through a buffer that holds at least one whole row: each row is located with the streaming
/// <see cref="Utf8JsonReader"/> and then flattened from its own bytes, so a row never costs more than
/// <see cref="TabularLimits.MaxJsonRowBytes"/> of memory.
/// </summary>
internal static class JsonTabularReader
{
    private const int ChunkBytes = 64 * 1024;
    private const int MaxNesting = 3;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static async IAsyncEnumerable<TabularRow> ReadAsync(
        Stream stream, TabularLimits limits, [EnumeratorCancellation] CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            var length = 0;
            var ended = false;

            // Find the first non-whitespace byte (after an optional BOM) to tell an array from NDJSON.
            var first = -1;
            var line = 1L;
            while (first < 0)
            {
                var read = await stream.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
                ended = read == 0;
                length += read;
                var skip = length >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF ? 3 : 0;
                if (length < 3 && !ended)
                {
                    continue;
                }

                var content = buffer.AsSpan(skip, length - skip);
                var at = content.IndexOfAnyExcept(" \t\r\n"u8);
                if (at >= 0)
                {
                    first = skip + at;
                    line += content[..at].Count((byte)'\n');
                }
                else if (ended)
                {
                    throw new TabularFileException("The file is empty: it holds no JSON.");
                }
                else
                {
                    line += content.Count((byte)'\n');
                    length = 0;
                }
            }

            var parse = new JsonParse(buffer[first] == (byte)'[', line, limits);
            var offset = first;
            var rows = new List<TabularRow>();
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                offset += parse.Run(buffer.AsSpan(offset, length - offset), ended, rows);
                foreach (var row in rows)
                {
                    yield return row;
                }

                rows.Clear();
                if (parse.Done)
                {
                    yield break;
                }

                // More bytes are needed to finish the row at hand: keep what is unread, grow if it fills the buffer,
                // and fill the buffer completely so a large row is not re-scanned once per chunk.
                buffer.AsSpan(offset, length - offset).CopyTo(buffer);
                length -= offset;
                offset = 0;
                if (length == buffer.Length)
                {
                    if (buffer.Length >= limits.MaxJsonRowBytes)
                    {
                        throw new TabularFileException(
                            $"{parse.NextRowLabel}: larger than the {TabularLimits.Describe(limits.MaxJsonRowBytes)} a row may take " +
                            $"(or a value is longer than {limits.MaxCellChars} characters).");
                    }

                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, limits.MaxJsonRowBytes));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                while (length < buffer.Length && !ended)
                {
                    var read = await stream.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
                    ended = read == 0;
                    length += read;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The parse state that lives across buffer refills.</summary>
    private sealed class JsonParse(bool isArray, long firstLine, TabularLimits limits)
    {
        private JsonReaderState _state = new(new JsonReaderOptions { AllowMultipleValues = !isArray });
        private long _line = firstLine;
        private long _index;

        public bool Done { get; private set; }

        public string NextRowLabel => $"row {(isArray ? _index + 1 : _line)}";

        /// <summary>Reads whole rows from <paramref name="data"/>; returns the bytes consumed.</summary>
        public int Run(ReadOnlySpan<byte> data, bool final, List<TabularRow> rows)
        {
            var reader = new Utf8JsonReader(data, final, _state);
            var counted = 0;
            try
            {
                while (true)
                {
                    var before = reader.CurrentState;
                    var beforeConsumed = (int)reader.BytesConsumed;
                    if (!reader.Read())
                    {
                        if (final)
                        {
                            Done = true;
                        }

                        break;
                    }

                    var isRow = isArray ? reader.CurrentDepth == 1 && reader.TokenType != JsonTokenType.EndArray : reader.CurrentDepth == 0;
                    if (isArray && reader.CurrentDepth == 0 && reader.TokenType is not (JsonTokenType.StartArray or JsonTokenType.EndArray))
                    {
                        throw new TabularFileException("The JSON is neither an array of objects nor one object per line.");
                    }

                    if (!isRow)
                    {
                        continue;
                    }

                    var start = (int)reader.TokenStartIndex;
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        _line += data[counted..start].Count((byte)'\n');
                        counted = start;
                        throw new TabularFileException($"{NextRowLabel}: expected an object, found {Describe(reader.TokenType)}.");
                    }

                    if (!reader.TrySkip())
                    {
                        // The row is not complete in this buffer: resume from before it once there is more.
                        _line += data[counted..beforeConsumed].Count((byte)'\n');
                        _state = before;
                        return beforeConsumed;
                    }

                    _line += data[counted..start].Count((byte)'\n');
                    _index++;
                    var end = (int)reader.BytesConsumed;
                    var number = isArray ? _index : _line;
                    rows.Add(new TabularRow(number, Flatten(data[start..end], number)));
                    _line += data[start..end].Count((byte)'\n');
                    counted = end;
                }
            }
            catch (JsonException error)
            {
                _line += data[counted..Math.Clamp((int)reader.BytesConsumed, counted, data.Length)].Count((byte)'\n');
                throw new TabularFileException($"{NextRowLabel}: the JSON is not valid ({Describe(error)}).");
            }

            var consumed = (int)reader.BytesConsumed;
            _line += data[counted..consumed].Count((byte)'\n');
            _state = reader.CurrentState;
            return consumed;
        }

        private Dictionary<string, string?> Flatten(ReadOnlySpan<byte> json, long number)
        {
            var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            var reader = new Utf8JsonReader(json, isFinalBlock: true, state: default);
            try
            {
                reader.Read();
                ReadObject(ref reader, json, "", 1, values, number);
            }
            catch (JsonException error)
            {
                throw new TabularFileException($"row {number}: the JSON is not valid ({Describe(error)}).");
            }
            catch (Exception error) when (error is InvalidOperationException or ArgumentException)
            {
                // GetString throws these for text that is not valid UTF-8.
                throw new TabularFileException($"row {number}: the text is not valid UTF-8.");
            }

            return values;
        }

        private void ReadObject(
            ref Utf8JsonReader reader, ReadOnlySpan<byte> json, string prefix, int level,
            Dictionary<string, string?> values, long number)
        {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var key = prefix + reader.GetString();
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject && level < MaxNesting)
                {
                    ReadObject(ref reader, json, key + ".", level + 1, values, number);
                    continue;
                }

                var value = reader.TokenType switch
                {
                    JsonTokenType.String => reader.GetString() is { Length: > 0 } text ? text : null,
                    JsonTokenType.Number => Encoding.UTF8.GetString(reader.ValueSpan),
                    JsonTokenType.True => "true",
                    JsonTokenType.False => "false",
                    JsonTokenType.Null => null,
                    _ => Raw(ref reader, json),
                };
                if (key.Length == 0)
                {
                    throw new TabularFileException($"row {number}: a key is empty.");
                }

                if (value is not null && value.Length > limits.MaxCellChars)
                {
                    throw new TabularFileException($"row {number}, '{key}': a value is longer than {limits.MaxCellChars} characters.");
                }

                if (!values.TryAdd(key, value))
                {
                    throw new TabularFileException($"row {number}: key '{key}' appears twice.");
                }

                if (values.Count > limits.MaxColumns)
                {
                    throw new TabularFileException($"row {number} has more than {limits.MaxColumns} keys.");
                }
            }
        }

        /// <summary>An array, or an object nested deeper than three levels, as its JSON text.</summary>
        private static string Raw(ref Utf8JsonReader reader, ReadOnlySpan<byte> json)
        {
            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            return StrictUtf8.GetString(json[start..(int)reader.BytesConsumed]);
        }

        private static string Describe(JsonTokenType token) => token switch
        {
            JsonTokenType.StartArray => "an array",
            JsonTokenType.String => "a string",
            JsonTokenType.Number => "a number",
            JsonTokenType.True or JsonTokenType.False => "a boolean",
            JsonTokenType.Null => "null",
            _ => token.ToString(),
        };

        // The reader's own message counts lines and bytes within the current buffer, which is not what the user sees.
        private static string Describe(JsonException error)
        {
            var message = error.Message;
            var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            return (cut > 0 ? message[..cut] : message).TrimEnd('.', ' ');
        }
    }
}
