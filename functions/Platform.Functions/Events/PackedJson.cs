using System.IO.Compression;

namespace Platform.Functions.Events;

/// <summary>
/// JSON compressed with zlib, as outbox rows and audit bundles store it, and read back only up to a bound: a few
/// kilobytes of damaged or hostile bytes can otherwise inflate to gigabytes.
/// </summary>
internal static class PackedJson
{
    /// <summary>
    /// The JSON the packed bytes hold. An <see cref="InvalidDataException"/> when they are damaged or inflate past
    /// <paramref name="maxBytes"/>.
    /// </summary>
    public static ReadOnlyMemory<byte> Unpack(Stream packed, int maxBytes)
    {
        using var zlib = new ZLibStream(packed, CompressionMode.Decompress);
        var json = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = zlib.Read(buffer)) > 0)
        {
            if (json.Length + read > maxBytes)
            {
                throw new InvalidDataException($"The packed JSON inflates past {maxBytes} bytes.");
            }

            json.Write(buffer, 0, read);
        }

        return json.GetBuffer().AsMemory(0, (int)json.Length);
    }
}
