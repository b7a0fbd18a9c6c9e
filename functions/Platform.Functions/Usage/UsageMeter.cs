using System.Collections.Concurrent;
using HdrHistogram;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;

namespace Platform.Functions.Usage;

/// <summary>
/// What one request is metered under: its tenant, the UTC minute it ended in, its caller (an API key or a user) and its
/// endpoint (the matched route's template and method, never the raw path, so the keys stay few).
/// </summary>
/// <remarks>The endpoint is held as the matched <see cref="Endpoint"/> object and the request's method: no string is
/// built per request; <see cref="UsageMeter.EndpointName"/> names it when the window is written.</remarks>
internal readonly record struct UsageKey(TenantId Tenant, long Minute, bool IsApiKey, string CallerId, Endpoint? Endpoint, string Method);

/// <summary>The requests of one key: counts by status class (2xx, 3xx, 4xx, 5xx) and a latency histogram (µs).</summary>
internal sealed class UsageCounter
{
    private readonly long[] _counts = new long[4];

    public IntConcurrentHistogram Latency { get; } = UsageHistograms.NewConcurrent();

    public long Count(int statusClass) => Volatile.Read(ref _counts[statusClass]);

    public void Record(int status, long microseconds)
    {
        Interlocked.Increment(ref _counts[UsageHistograms.StatusClass(status)]);
        Latency.RecordValue(UsageHistograms.Clamp(microseconds));
    }
}

/// <summary>
/// Requests metered on this instance since the last flush, in memory. A request costs a dictionary lookup (lock-free
/// for a key seen before), interlocked increments and a histogram record; never a storage write, a lock shared by all
/// requests, or a shared counter: writers announce themselves on a per-processor stripe so the flusher can wait for
/// the ones still writing into the window it took. Memory is bounded by <see cref="UsageOptions.MaxKeysPerFlush"/>.
/// </summary>
public sealed partial class UsageMeter(IOptions<UsageOptions> options, ILogger<UsageMeter> logger)
{
    /// <summary>The caller and endpoint of a tenant's requests once the window holds too many keys.</summary>
    public const string Overflow = "(other)";

    /// <summary>The endpoint of requests under <c>/api/v1</c> that matched no route.</summary>
    public const string Unmatched = "(unmatched)";

    private readonly int _maxKeys = options.Value.MaxKeysPerFlush;
    private Window _current = new(options.Value.MaxKeysPerFlush);

    internal void Record(in UsageKey key, int status, long microseconds)
    {
        while (true)
        {
            var window = Volatile.Read(ref _current);
            var stripe = window.Enter();
            try
            {
                // Announced first, then checked: a flusher that swapped the window before this check is seen here and
                // the request goes to the new window; one that swaps after it waits for this writer to leave.
                if (!ReferenceEquals(window, Volatile.Read(ref _current)))
                {
                    continue;
                }

                window.Record(key, status, microseconds, _maxKeys);
                return;
            }
            finally
            {
                window.Exit(stripe);
            }
        }
    }

    /// <summary>Takes everything gathered so far, once no request is still writing into it; later requests go to a new window.</summary>
    internal IReadOnlyCollection<KeyValuePair<UsageKey, UsageCounter>> Take()
    {
        var taken = Interlocked.Exchange(ref _current, new Window(_maxKeys));
        taken.WaitForWriters();
        if (taken.Dropped > 0)
        {
            LogDropped(logger, taken.Dropped, _maxKeys * 2);
        }

        return taken.Entries;
    }

    /// <summary><c>GET /api/v1/users/{id}</c>: the method and route template, never the path the caller sent.</summary>
    internal static string EndpointName(Endpoint? endpoint, string method) =>
        ReferenceEquals(method, Overflow) ? Overflow
        : endpoint is RouteEndpoint { RoutePattern.RawText: { } template }
            ? method + " " + NormalizeTemplate(template)
            : Unmatched;

    /// <summary><c>apikey:{id}</c> or <c>user:{id}</c>: who made the requests (an API key acts for its creator, but is counted as itself).</summary>
    internal static string CallerName(in UsageKey key) =>
        key.IsApiKey ? "apikey:" + key.CallerId
        : ReferenceEquals(key.CallerId, Overflow) ? Overflow
        : "user:" + key.CallerId;

    private static string NormalizeTemplate(string template)
    {
        var trimmed = template.TrimEnd('/');
        return trimmed.Length == 0 ? "/" : trimmed.StartsWith('/') ? trimmed : "/" + trimmed;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage metering dropped {Dropped} requests: more than {MaxKeys} keys were gathered between two flushes")]
    private static partial void LogDropped(ILogger logger, long dropped, int maxKeys);

    private sealed class Window(int maxKeys)
    {
        // One padded slot per stripe (16 longs = 128 bytes) so writers on different processors never share a cache line.
        private const int Stride = 16;
        private static readonly int Stripes = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, Environment.ProcessorCount));

        private readonly long[] _writers = new long[Stripes * Stride];
        private readonly ConcurrentDictionary<UsageKey, UsageCounter> _entries = new(Environment.ProcessorCount, Math.Min(maxKeys, 256));
        private int _keys;
        private long _dropped;

        public IReadOnlyCollection<KeyValuePair<UsageKey, UsageCounter>> Entries => _entries;

        public long Dropped => Interlocked.Read(ref _dropped);

        public int Enter()
        {
            var stripe = Thread.GetCurrentProcessorId() & (Stripes - 1);
            Interlocked.Increment(ref _writers[stripe * Stride]);
            return stripe;
        }

        public void Exit(int stripe) => Interlocked.Decrement(ref _writers[stripe * Stride]);

        public void WaitForWriters()
        {
            var spin = new SpinWait();
            while (Writing())
            {
                spin.SpinOnce();
            }
        }

        private bool Writing()
        {
            for (var i = 0; i < Stripes; i++)
            {
                if (Interlocked.Read(ref _writers[i * Stride]) != 0)
                {
                    return true;
                }
            }

            return false;
        }

        public void Record(in UsageKey key, int status, long microseconds, int max)
        {
            if (!_entries.TryGetValue(key, out var counter) && (counter = Add(key, max)) is null)
            {
                Interlocked.Increment(ref _dropped);
                return;
            }

            counter.Record(status, microseconds);
        }

        private UsageCounter? Add(UsageKey key, int max)
        {
            if (Volatile.Read(ref _keys) >= max)
            {
                // Full: the tenant's requests go on counting under its overflow key (one per tenant and minute), up to
                // twice the cap; past that they are dropped and logged.
                key = key with { IsApiKey = false, CallerId = Overflow, Endpoint = null, Method = Overflow };
                if (_entries.TryGetValue(key, out var overflow))
                {
                    return overflow;
                }

                if (Volatile.Read(ref _keys) >= 2 * max)
                {
                    return null;
                }
            }

            var created = new UsageCounter();
            var counter = _entries.GetOrAdd(key, created);
            if (ReferenceEquals(counter, created))
            {
                Interlocked.Increment(ref _keys);
            }

            return counter;
        }
    }
}

/// <summary>The one histogram shape of usage: microseconds, 2 significant digits, up to a minute (longer is a minute).</summary>
internal static class UsageHistograms
{
    // Latencies under 8 µs need no resolution: this halves the histogram against a lowest value of 1.
    private const long Lowest = 8;
    private const long Highest = 60_000_000;
    private const int Digits = 2;

    public static IntConcurrentHistogram NewConcurrent() => new(Lowest, Highest, Digits);

    public static LongHistogram New() => new(Lowest, Highest, Digits);

    public static long Clamp(long microseconds) => Math.Clamp(microseconds, 0, Highest);

    public static int StatusClass(int status) => status switch
    {
        < 300 => 0,
        < 400 => 1,
        < 500 => 2,
        _ => 3,
    };
}
