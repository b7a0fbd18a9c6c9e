using System.Buffers;
using System.Text.Unicode;

namespace Platform.Functions.Jobs.Files;

/// <summary>
/// The text Sep parses: strict UTF-8 decoding of the upload plus a guard that follows the CSV structure (quotes,
/// separators, line ends) as the text goes by, so that a cell or a row that breaks a limit is rejected before Sep ever
/// buffers it. Sep grows its buffer to hold a whole row; without this, one unclosed quote at the top of a 100 MB file
/// would make the whole file a single row in memory.
/// <para>Record numbers follow Sep's: a record ends at CR, LF or CRLF outside quotes, a quote toggles "inside quotes"
/// wherever it stands, and blank lines are records. Leading blank lines are dropped here (and counted) so that the
/// first line Sep sees is the header.</para>
/// </summary>
internal sealed class CsvTextSource : TextReader
{
    private const int ChunkBytes = 64 * 1024;
    private static readonly SearchValues<char> InQuotes = SearchValues.Create("\"");
    private static readonly SearchValues<char> DetectSpecials = SearchValues.Create("\"\r\n,;");
    private static readonly SearchValues<char> CommaSpecials = SearchValues.Create("\"\r\n,");
    private static readonly SearchValues<char> SemicolonSpecials = SearchValues.Create("\"\r\n;");

    private readonly Stream _stream;
    private readonly int _maxColumns;
    private readonly int _maxRawCellChars;

    private readonly byte[] _bytes = new byte[ChunkBytes];
    private int _byteCount;
    private bool _streamEnded;
    private bool _started;

    // Decoded text: [_start, _scanned) is checked and may be handed out, [_scanned, _end) is decoded but not yet checked.
    private char[] _chars = new char[ChunkBytes];
    private int _start;
    private int _scanned;
    private int _end;
    private bool _finished;

    private bool _detecting = true;
    private bool _headerHasText;
    private int _commas;
    private int _semicolons;
    private SearchValues<char> _specials = DetectSpecials;

    private bool _inQuotes;
    private bool _lastWasCr;
    private int _cellChars;
    private int _cells = 1;
    private long _record = 1;
    private long _quoteRecord;

    public CsvTextSource(Stream stream, TabularLimits limits)
    {
        _stream = stream;
        _maxColumns = limits.MaxColumns;
        // Raw text of a quoted cell holds its quotes and every inner quote twice; the exact length is checked on the
        // unescaped value. This bound only keeps a runaway cell from being buffered.
        _maxRawCellChars = (2 * limits.MaxCellChars) + 2;
        MaxCellChars = limits.MaxCellChars;
    }

    public int MaxCellChars { get; }

    public char Separator { get; private set; } = ',';

    /// <summary>Blank lines before the header, dropped before Sep sees the text.</summary>
    public long LeadingBlankLines { get; private set; }

    /// <summary>Reads (and holds) the header line to choose the separator: the one of ',' and ';' that occurs more
    /// often outside quotes, ',' on a tie. Throws when the file holds no text at all.</summary>
    public async ValueTask DetectSeparatorAsync(CancellationToken ct)
    {
        while (_detecting && !_finished)
        {
            await FillAsync(ct).ConfigureAwait(false);
        }

        if (!_headerHasText)
        {
            throw new TabularFileException("The file is empty: it has no header row.");
        }
    }

    public override int Read(Span<char> buffer)
    {
        while (_start == _scanned && !_finished)
        {
            Fill();
        }

        return Take(buffer);
    }

    public override int Read(char[] buffer, int index, int count) => Read(buffer.AsSpan(index, count));

    public override async ValueTask<int> ReadAsync(Memory<char> buffer, CancellationToken cancellationToken = default)
    {
        while (_start == _scanned && !_finished)
        {
            await FillAsync(cancellationToken).ConfigureAwait(false);
        }

        return Take(buffer.Span);
    }

    public override Task<int> ReadAsync(char[] buffer, int index, int count) =>
        ReadAsync(buffer.AsMemory(index, count)).AsTask();

    public override int Peek() => _start < _scanned ? _chars[_start] : -1;

    private int Take(Span<char> buffer)
    {
        var count = Math.Min(buffer.Length, _scanned - _start);
        _chars.AsSpan(_start, count).CopyTo(buffer);
        _start += count;
        return count;
    }

    private async ValueTask FillAsync(CancellationToken ct)
    {
        if (!_started)
        {
            _started = true;
            while (_byteCount < 3 && !_streamEnded)
            {
                Received(await _stream.ReadAsync(_bytes.AsMemory(_byteCount), ct).ConfigureAwait(false));
            }

            SkipBom();
        }

        if (!_streamEnded && _byteCount < ChunkBytes)
        {
            Received(await _stream.ReadAsync(_bytes.AsMemory(_byteCount), ct).ConfigureAwait(false));
        }

        Process();
    }

    private void Fill()
    {
        if (!_started)
        {
            _started = true;
            while (_byteCount < 3 && !_streamEnded)
            {
                Received(_stream.Read(_bytes, _byteCount, ChunkBytes - _byteCount));
            }

            SkipBom();
        }

        if (!_streamEnded && _byteCount < ChunkBytes)
        {
            Received(_stream.Read(_bytes, _byteCount, ChunkBytes - _byteCount));
        }

        Process();
    }

    private void Received(int read)
    {
        _byteCount += read;
        _streamEnded = read == 0;
    }

    private void Process()
    {
        Decode();
        Scan();
        if (_streamEnded && _byteCount == 0 && _scanned == _end)
        {
            EndOfText();
        }
    }

    private void SkipBom()
    {
        if (_byteCount >= 3 && _bytes[0] == 0xEF && _bytes[1] == 0xBB && _bytes[2] == 0xBF)
        {
            _bytes.AsSpan(3, _byteCount - 3).CopyTo(_bytes);
            _byteCount -= 3;
        }
        else if (_byteCount >= 2 && ((_bytes[0] == 0xFF && _bytes[1] == 0xFE) || (_bytes[0] == 0xFE && _bytes[1] == 0xFF)))
        {
            throw new TabularFileException("The file is UTF-16 text; save it as \"CSV UTF-8\".");
        }
    }

    private void Decode()
    {
        if (_byteCount == 0)
        {
            return;
        }

        // Only what Sep has not taken yet is kept (while detecting: the header line, blank lines before it are dropped).
        if (_start > 0)
        {
            _chars.AsSpan(_start, _end - _start).CopyTo(_chars);
            _end -= _start;
            _scanned -= _start;
            _start = 0;
        }

        if (_chars.Length - _end < _byteCount)
        {
            Array.Resize(ref _chars, Math.Max(_chars.Length * 2, _end + _byteCount));
        }

        var status = Utf8.ToUtf16(_bytes.AsSpan(0, _byteCount), _chars.AsSpan(_end), out var bytesRead, out var charsWritten,
            replaceInvalidSequences: false, isFinalBlock: _streamEnded);
        _end += charsWritten;
        _bytes.AsSpan(bytesRead, _byteCount - bytesRead).CopyTo(_bytes);
        _byteCount -= bytesRead;
        if (status == OperationStatus.InvalidData)
        {
            // Check the text before the bad bytes first: the row number is the record they fall in.
            Scan();
            throw new TabularFileException(
                $"{Where()}: the text is not valid UTF-8. Save the file as \"CSV UTF-8\".");
        }
    }

    private void Scan()
    {
        var i = _scanned;
        while (i < _end)
        {
            var rest = _chars.AsSpan(i, _end - i);
            var hit = rest.IndexOfAny(_inQuotes ? InQuotes : _specials);
            var run = hit < 0 ? rest.Length : hit;
            if (run > 0)
            {
                _cellChars += run;
                _lastWasCr = false;
                if (_detecting)
                {
                    _headerHasText = true;
                }

                CheckCell();
            }

            if (hit < 0)
            {
                i = _end;
                break;
            }

            i += hit;
            var c = _chars[i];
            i++;
            if (c == '"')
            {
                _inQuotes = !_inQuotes;
                if (_inQuotes)
                {
                    _quoteRecord = _record;
                }

                _cellChars++;
                _lastWasCr = false;
                _headerHasText |= _detecting;
                CheckCell();
            }
            else if (c == '\r' || c == '\n')
            {
                var secondHalfOfCrLf = c == '\n' && _lastWasCr;
                _lastWasCr = c == '\r';
                if (secondHalfOfCrLf)
                {
                    if (_detecting)
                    {
                        _start = i;
                    }

                    continue;
                }

                if (_detecting && !_headerHasText)
                {
                    LeadingBlankLines++;
                    _record++;
                    _start = i;
                    continue;
                }

                if (_detecting)
                {
                    EndHeader();
                }

                _record++;
                _cells = 1;
                _cellChars = 0;
            }
            else
            {
                _lastWasCr = false;
                _cellChars = 0;
                if (_detecting)
                {
                    _headerHasText = true;
                    if (c == ',')
                    {
                        _commas++;
                    }
                    else
                    {
                        _semicolons++;
                    }

                    _cells = Math.Max(_commas, _semicolons) + 1;
                }
                else
                {
                    _cells++;
                }

                if (_cells > _maxColumns)
                {
                    throw new TabularFileException($"{Where()} has more than {_maxColumns} columns.");
                }
            }
        }

        _scanned = i;
    }

    private void EndHeader()
    {
        _detecting = false;
        Separator = _semicolons > _commas ? ';' : ',';
        _specials = Separator == ';' ? SemicolonSpecials : CommaSpecials;
    }

    private void EndOfText()
    {
        if (_inQuotes)
        {
            throw new TabularFileException(
                $"{Where(_quoteRecord)}: a quoted cell is never closed (a closing quote \" is missing).");
        }

        if (_detecting)
        {
            EndHeader();
        }

        _finished = true;
    }

    private void CheckCell()
    {
        if (_cellChars > _maxRawCellChars)
        {
            var hint = _inQuotes ? " (or a closing quote \" is missing)" : "";
            throw new TabularFileException(
                $"{Where(_inQuotes ? _quoteRecord : _record)}: a cell is longer than {MaxCellChars} characters{hint}.");
        }
    }

    private string Where() => Where(_record);

    private string Where(long record) => record == LeadingBlankLines + 1 ? "header" : $"row {record}";
}
