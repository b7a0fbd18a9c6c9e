using System.Buffers.Binary;
using System.IO.Compression;
using System.Xml;

namespace Platform.Functions.Jobs.Files;

/// <summary>
/// The zip side of an xlsx, guarded against zip bombs: the central directory is checked (entry count, every entry's
/// declared size, the total, the compression ratio of large entries) before anything is inflated, and every part is
/// read through a meter that counts the bytes actually inflated across all parts and stops at the limit.
/// <para>Parts are found through the package relationships (_rels/.rels, then the workbook's), as Excel does, and
/// read with <see cref="XmlReader"/> (no DTDs, no external resolution).</para>
/// </summary>
internal sealed class XlsxPackage : IDisposable
{
    private const int MaxEntries = 10_000;
    private const long RatioCheckedAbove = 1024 * 1024;
    private const string NotXlsx = "The file is not an xlsx workbook";

    private static readonly XmlReaderSettings XmlSettings = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
        CloseInput = true,
    };

    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _entries = new(StringComparer.OrdinalIgnoreCase);
    private readonly TabularLimits _limits;
    private long _inflated;

    private XlsxPackage(ZipArchive zip, TabularLimits limits)
    {
        _zip = zip;
        _limits = limits;
    }

    public static XlsxPackage Open(Stream seekable, TabularLimits limits)
    {
        var entries = CountEntries(seekable);
        if (entries > MaxEntries)
        {
            throw new TabularFileException($"{NotXlsx}: its zip archive holds more than {MaxEntries} entries.");
        }

        seekable.Position = 0;
        var package = new XlsxPackage(new ZipArchive(seekable, ZipArchiveMode.Read, leaveOpen: true), limits);
        try
        {
            package.CheckDeclaredSizes();
        }
        catch
        {
            package.Dispose();
            throw;
        }

        return package;
    }

    public bool Exists(string path) => _entries.ContainsKey(path);

    /// <summary>An XML reader over a part, metered. Null when the package has no such part.</summary>
    public XmlReader? OpenXml(string path)
    {
        if (!_entries.TryGetValue(path, out var entry))
        {
            return null;
        }

        return XmlReader.Create(new MeteredStream(entry.Open(), this), XmlSettings);
    }

    /// <summary>The relationships of a part: id => (type, target path within the package).</summary>
    public Dictionary<string, (string Type, string Path)> Relationships(string partPath)
    {
        var folder = Folder(partPath);
        var relsPath = (folder.Length == 0 ? "" : folder + "/") + "_rels/" + partPath[(folder.Length == 0 ? 0 : folder.Length + 1)..] + ".rels";
        var result = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        using var xml = OpenXml(relsPath);
        if (xml is null)
        {
            return result;
        }

        while (xml.Read())
        {
            if (xml.NodeType != XmlNodeType.Element || xml.LocalName != "Relationship" || xml.GetAttribute("TargetMode") == "External")
            {
                continue;
            }

            var id = xml.GetAttribute("Id");
            var type = xml.GetAttribute("Type");
            var target = xml.GetAttribute("Target");
            if (id is not null && type is not null && target is not null)
            {
                result.TryAdd(id, (type, Resolve(folder, target)));
            }
        }

        return result;
    }

    public void Dispose() => _zip.Dispose();

    private static int CountEntries(Stream stream)
    {
        // The end-of-central-directory record sits in the last 22 + 65535 bytes; read its entry count before letting
        // ZipArchive build an object per entry.
        var tail = (int)Math.Min(stream.Length, 22 + 65_535);
        if (tail < 22)
        {
            throw new TabularFileException($"{NotXlsx} (it is not a zip archive).");
        }

        var buffer = new byte[tail];
        stream.Position = stream.Length - tail;
        stream.ReadExactly(buffer);
        for (var i = tail - 22; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(i)) == 0x06054b50)
            {
                // 0xFFFF means a zip64 archive: more entries than an xlsx ever has.
                var count = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(i + 10));
                return count == 0xFFFF ? int.MaxValue : count;
            }
        }

        throw new TabularFileException($"{NotXlsx} (it is not a zip archive).");
    }

    private void CheckDeclaredSizes()
    {
        long total = 0;
        foreach (var entry in _zip.Entries)
        {
            total += entry.Length;
            if (entry.Length < 0 || total > _limits.MaxXlsxUncompressedBytes)
            {
                throw Bomb($"its parts would inflate to more than {TabularLimits.Describe(_limits.MaxXlsxUncompressedBytes)}");
            }

            if (entry.Length > RatioCheckedAbove && entry.Length / Math.Max(1, entry.CompressedLength) > _limits.MaxXlsxCompressionRatio)
            {
                throw Bomb($"'{entry.FullName}' is compressed more than {_limits.MaxXlsxCompressionRatio}:1");
            }

            _entries.TryAdd(entry.FullName.Replace('\\', '/').TrimStart('/'), entry);
        }
    }

    private void Count(int bytes)
    {
        _inflated += bytes;
        if (_inflated > _limits.MaxXlsxUncompressedBytes)
        {
            throw Bomb($"its parts inflate to more than {TabularLimits.Describe(_limits.MaxXlsxUncompressedBytes)}");
        }
    }

    private static TabularFileException Bomb(string what) =>
        new($"The xlsx file is rejected as a zip bomb: {what}.");

    private static string Folder(string path)
    {
        var slash = path.LastIndexOf('/');
        return slash < 0 ? "" : path[..slash];
    }

    private static string Resolve(string folder, string target)
    {
        var combined = target.StartsWith('/') ? target[1..] : (folder.Length == 0 ? target : folder + "/" + target);
        var parts = new List<string>();
        foreach (var segment in combined.Split('/'))
        {
            if (segment == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }
            }
            else if (segment.Length > 0 && segment != ".")
            {
                parts.Add(Uri.UnescapeDataString(segment));
            }
        }

        return string.Join('/', parts);
    }

    private sealed class MeteredStream(Stream inner, XlsxPackage package) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            package.Count(read);
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
