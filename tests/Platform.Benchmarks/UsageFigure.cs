using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;

namespace Platform.Benchmarks;

/// <summary>
/// <c>usage &lt;appExecutable&gt; [requests=4000]</c>: the request overhead of usage metering. Two processes of the
/// published app on one Azurite, one metering (the default) and one with <c>Platform__Usage__Enabled=false</c>, answer
/// the same cheap authenticated route (<c>GET /api/v1/permissions</c>: bearer token, cached session check, no storage)
/// in alternating blocks of <see cref="Block"/> requests, first with 1 client and then with <see cref="Clients"/> at once,
/// so both see the same machine load. Prints p50/p99/mean of each and the difference. Then the metering app is stopped
/// gracefully (its flush on stop writes the minute it gathered) and <c>GET /api/v1/usage</c> on the other shows that
/// every timed request was counted.
/// </summary>
internal static class UsageFigure
{
    private const int Block = 50;
    private const int Clients = 4;
    private const int WarmUp = 300;
    private const string Route = "/api/v1/permissions";
    private const string Endpoint = "GET /api/v1/permissions";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 1 or > 2)
        {
            await Console.Error.WriteLineAsync("usage: usage <appExecutable> [requests=4000]");
            return 2;
        }

        var requests = 4000;
        if (args.Length == 2 && (!int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out requests) || requests < Block))
        {
            await Console.Error.WriteLineAsync($"requests must be a whole number of at least {Block}: {args[1]}");
            return 2;
        }

        requests -= requests % Block;
        var executable = Path.GetFullPath(args[0]);
        if (!File.Exists(executable))
        {
            await Console.Error.WriteLineAsync($"usage: no such executable: {executable}");
            return 2;
        }

        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync("usage: set AzureWebJobsStorage (infra/bench/usage.sh starts an Azurite and sets it)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var shared = new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = storage,
            // One issuer (the public base URL) and one key pair for both processes: a token one signs, the other accepts.
            ["Platform__PublicBaseUrl"] = "http://127.0.0.1:7071",
            ["Platform__Auth__SigningKey"] = signingKey.ExportPkcs8PrivateKeyPem(),
            ["Platform__Auth__DataEncryptionKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        };
        var off = new Dictionary<string, string>(shared) { ["Platform__Usage__Enabled"] = "false" };

        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan, MaxConnectionsPerServer = Clients })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };

        var footprint = new HdrHistogram.IntConcurrentHistogram(8, 60_000_000, 2).GetEstimatedFootprintInBytes();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"usage: {Endpoint}, {requests} requests to each app with 1 client then {requests} with {Clients} clients, in alternating blocks of {Block} "
            + $"(after {WarmUp} uncounted each); metering on (default) next to Platform__Usage__Enabled=false; {Environment.ProcessorCount} cores; "
            + $"load average {LoadAverage()}"));
        Console.WriteLine($"  app       {executable}");

        using var metered = ServerProcess.Start(executable, shared);
        using var unmetered = ServerProcess.Start(executable, off);
        var meteredStopped = false;
        try
        {
            foreach (var server in new[] { metered, unmetered })
            {
                await server.WaitForOkAsync(client, "/api/health/ready", StartTimeout);
            }

            var (tenantId, token) = await SignUpAsync(client, metered);
            for (var i = 0; i < WarmUp; i++)
            {
                await GetAsync(client, metered, Route, token);
                await GetAsync(client, unmetered, Route, token);
            }

            var on1 = new List<double>(requests);
            var off1 = new List<double>(requests);
            var on4 = new List<double>(requests);
            var off4 = new List<double>(requests);
            await RunAsync(client, metered, unmetered, token, requests, 1, on1, off1);
            await RunAsync(client, metered, unmetered, token, requests, Clients, on4, off4);

            Console.WriteLine();
            Console.WriteLine($"{"GET /api/v1/permissions",-40} {"n",6} {"p50",10} {"p99",10} {"mean",10}");
            Row("metering off, 1 client", off1);
            Row("metering on, 1 client", on1);
            Difference("on - off, 1 client", on1, off1);
            Row($"metering off, {Clients} clients", off4);
            Row($"metering on, {Clients} clients", on4);
            Difference($"on - off, {Clients} clients", on4, off4);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  memory per metered key (tenant, caller, endpoint, minute): latency histogram ~{footprint / 1024.0:0.0} KiB"));

            // The metering app writes what it gathered when it stops; the other app reads it back.
            await metered.StopAsync(StopGrace);
            meteredStopped = true;
            var counted = await CountedAsync(client, unmetered, token);
            var expected = WarmUp + (2L * requests);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  check: GET /api/v1/usage counts {counted} requests of {Endpoint} for tenant {tenantId} (the metering app served {expected}; written by its flush on stop)"));
            if (counted != expected)
            {
                await Console.Error.WriteLineAsync($"usage: expected {expected} metered requests, usage shows {counted}");
                return 1;
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"usage: {e.Message}{Environment.NewLine}metering app output (tail):{Environment.NewLine}{metered.OutputTail()}");
            return 1;
        }
        finally
        {
            if (!meteredStopped)
            {
                await metered.StopAsync(StopGrace);
            }

            await unmetered.StopAsync(StopGrace);
        }

        return 0;
    }

    /// <summary>Alternating blocks: metered, unmetered, metered, ... each block sent by <paramref name="clients"/> clients.</summary>
    private static async Task RunAsync(HttpClient client, ServerProcess on, ServerProcess off, string token, int requests, int clients, List<double> onTimes, List<double> offTimes)
    {
        for (var sent = 0; sent < requests; sent += Block)
        {
            foreach (var (server, times) in new[] { (on, onTimes), (off, offTimes) })
            {
                var remaining = Block;
                var workers = Enumerable.Range(0, clients).Select(async _ =>
                {
                    var mine = new List<double>();
                    while (Interlocked.Decrement(ref remaining) >= 0)
                    {
                        mine.Add(await GetAsync(client, server, Route, token));
                    }

                    return mine;
                });
                foreach (var done in await Task.WhenAll(workers))
                {
                    times.AddRange(done);
                }
            }
        }
    }

    private static async Task<(string TenantId, string Token)> SignUpAsync(HttpClient client, ServerProcess server)
    {
        var slug = "bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var email = $"admin@{slug}.example.com";
        var password = "bench " + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        using var signUp = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/tenants"),
            new { name = "Benchmark", slug, admin = new { email, password, displayName = "Benchmark Admin" } });
        var created = await signUp.Content.ReadAsStringAsync();
        if (!signUp.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"sign-up answered {(int)signUp.StatusCode}: {created}");
        }

        using var login = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/auth/login"), new { tenant = slug, email, password });
        var body = await login.Content.ReadAsStringAsync();
        if (!login.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"login answered {(int)login.StatusCode}: {body}");
        }

        using var tenant = JsonDocument.Parse(created);
        using var tokens = JsonDocument.Parse(body);
        return (tenant.RootElement.GetProperty("tenant").GetProperty("id").GetString()!, tokens.RootElement.GetProperty("accessToken").GetString()!);
    }

    private static async Task<long> CountedAsync(HttpClient client, ServerProcess server, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress, "/api/v1/usage?groupBy=endpoint"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"GET /api/v1/usage answered {(int)response.StatusCode}: {body}");
        }

        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("items").EnumerateArray()
            .Where(i => i.GetProperty("key").GetString() == Endpoint)
            .Sum(i => i.GetProperty("requests").GetInt64());
    }

    private static async Task<double> GetAsync(HttpClient client, ServerProcess server, string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress, path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var started = Stopwatch.GetTimestamp();
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"GET {path} answered {(int)response.StatusCode}: {System.Text.Encoding.UTF8.GetString(body)}");
        }

        return elapsed;
    }

    private static void Row(string name, List<double> times) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-40} {times.Count,6} {Us(Statistics.Percentile(times, 50)),10} {Us(Statistics.Percentile(times, 99)),10} {Us(times.Average()),10}"));

    private static void Difference(string name, List<double> on, List<double> off) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-40} {"",6} {Us(Statistics.Percentile(on, 50) - Statistics.Percentile(off, 50)),10} {Us(Statistics.Percentile(on, 99) - Statistics.Percentile(off, 99)),10} {Us(on.Average() - off.Average()),10}"));

    private static string Us(double milliseconds) => string.Create(CultureInfo.InvariantCulture, $"{milliseconds * 1000:0} µs");

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
