using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Platform.Functions.Identity.Passwords;

namespace Platform.Benchmarks;

/// <summary>
/// <c>login &lt;appExecutable&gt; [logins=200]</c>: sign-in throughput and latency of the published app at the Argon2id
/// parameters it ships with, next to <see cref="PasswordHasher.VerifyAsync"/> called directly in this process (the same
/// Argon2id work with nothing around it), so the figure shows what HTTP, storage and session creation add. Then the
/// per-request cost of an authenticated call: GET /api/v1/me with a valid token next to GET /api/health/live (no auth).
/// </summary>
/// <remarks>
/// The app runs as <see cref="StartupFigure"/> runs it (Production, throwaway keys, storage from
/// <c>AzureWebJobsStorage</c>). One tenant is signed up and its admin signs in <c>logins</c> times with one client, then
/// <c>logins</c> times with <see cref="Clients"/> clients at once; the in-process baseline does the same with one
/// thread and with <see cref="Clients"/> threads, each pass of the baseline right before the app's matching pass.
/// Between them, sign-ins naming an unknown tenant (the app does the same Argon2id work and answers 401 without
/// sessions) split what the app adds into Argon2id-in-the-app-over-HTTP and the storage work of a real sign-in.
/// The per-IP rate limits on sign-up and sign-in are raised for the app, since every request comes from one address.
/// Every sign-in is one user, as a benchmark of one account must be: past <c>MaxSessionsPerUser</c> (10) each new
/// session also revokes the oldest, one more storage write than a user's first sign-ins.
/// </remarks>
internal static class LoginFigure
{
    private const int Clients = 4;
    private const int WarmUpLogins = 10;
    private const int AuthenticatedRequests = 1000;
    private const int WarmUpRequests = 100;
    private const string LivePath = "/api/health/live";
    private const string ReadyPath = "/api/health/ready";
    private const string MePath = "/api/v1/me";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 1 or > 2)
        {
            await Console.Error.WriteLineAsync("usage: login <appExecutable> [logins=200]");
            return 2;
        }

        var logins = 200;
        if (args.Length == 2 && (!int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out logins) || logins < 1))
        {
            await Console.Error.WriteLineAsync($"logins must be a positive whole number: {args[1]}");
            return 2;
        }

        var executable = Path.GetFullPath(args[0]);
        if (!File.Exists(executable))
        {
            await Console.Error.WriteLineAsync($"login: no such executable: {executable}");
            return 2;
        }

        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync("login: set AzureWebJobsStorage (infra/bench/identity.sh starts an Azurite and sets it)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var environment = new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = storage,
            ["Platform__PublicBaseUrl"] = "http://127.0.0.1:{port}",
            ["Platform__Auth__SigningKey"] = signingKey.ExportPkcs8PrivateKeyPem(),
            ["Platform__Auth__DataEncryptionKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            // Every request of the figure comes from 127.0.0.1, while the per-IP limits are meant for many callers:
            // the figure's ~800 sign-ins would meet LoginsPerHourPerIp (600 by default). The figure is the capacity of
            // one instance, so both limits are raised out of the way. (ServerProcess clears inherited Platform__
            // settings, so this is the place to set them.)
            ["Platform__RateLimits__SignUpsPerHourPerIp"] = "100000",
            ["Platform__RateLimits__LoginsPerHourPerIp"] = "1000000",
        };

        // Kept-alive connections, as a real client holds them: the figure is the request, not the TCP handshake.
        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };

        var hashing = new PasswordHashingOptions();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"login: POST /api/v1/auth/login, {logins} sign-ins with 1 client then {logins} with {Clients} clients at once (after {WarmUpLogins} uncounted), "
            + $"one account, and {logins} to an unknown tenant (401 after the same Argon2id work, no session); baseline PasswordHasher.Verify in this process, 1 thread then {Clients} threads; "
            + $"Argon2id m={hashing.MemoryKiB},t={hashing.Iterations},p={hashing.Parallelism}; {Environment.ProcessorCount} cores; "
            + $"benchmark GC {(GCSettings.IsServerGC ? "server" : "workstation")}, app GC {AppGc(executable)}"));
        Console.WriteLine($"  app       {executable}");

        using var server = ServerProcess.Start(executable, environment);
        try
        {
            await server.WaitForOkAsync(client, LivePath, StartTimeout);
            // Sign-up needs the tables, which the app creates in the background after it answers.
            await server.WaitForOkAsync(client, ReadyPath, StartTimeout);

            var account = await SignUpAsync(client, server);
            // As many slots as baseline threads: the baseline is the bare Argon2id work, never a wait at the gate.
            using var hasher = new PasswordHasher(Options.Create(new PasswordHashingOptions { MaxConcurrentHashes = Clients + 1 }));
            var storedHash = await hasher.HashAsync(account.Password, CancellationToken.None);

            // Warm-up of both sides: JIT, connection pool, the tenant and user rows in Azurite's memory.
            for (var i = 0; i < WarmUpLogins; i++)
            {
                await GetAsync(client, server, MePath, await LoginAsync(client, server, account));
                await RefusedLoginAsync(client, server, account);
                Verify(hasher, account.Password, storedHash);
            }

            var verifySequential = RunInProcess(hasher, account.Password, storedHash, logins, threads: 1);
            var coldMe = new List<double>(logins);
            var loginSequential = await RunLoginsAsync(client, server, account, logins, clients: 1, coldMe);
            var refusedSequential = await RunRefusedAsync(client, server, account, logins);
            var verifyConcurrent = RunInProcess(hasher, account.Password, storedHash, logins, threads: Clients);
            var loginConcurrent = await RunLoginsAsync(client, server, account, logins, clients: Clients, coldMe: null);

            var (live, me) = await RunAuthenticatedAsync(client, server, await LoginAsync(client, server, account));

            PrintTables(verifySequential, loginSequential, refusedSequential, verifyConcurrent, loginConcurrent, live, me, coldMe);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"login: {e.Message}{Environment.NewLine}app output (tail):{Environment.NewLine}{server.OutputTail()}");
            return 1;
        }
        finally
        {
            await server.StopAsync(StopGrace);
        }

        return 0;
    }

    private static async Task<Account> SignUpAsync(HttpClient client, ServerProcess server)
    {
        var slug = "bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var account = new Account(slug, $"admin@{slug}.example.com", "bench " + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)));
        using var response = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/tenants"), new
        {
            name = "Benchmark",
            slug,
            admin = new { email = account.Email, password = account.Password, displayName = "Benchmark Admin" },
        });
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"sign-up answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        return account;
    }

    /// <summary>
    /// A sign-in naming a tenant that does not exist: the app spends one Argon2id verification on a stand-in hash (so
    /// the answer takes as long as a wrong password) after one storage read (the slug), and answers 401 without
    /// touching sessions. Timing it isolates Argon2id and HTTP inside the app from the storage work of a sign-in.
    /// </summary>
    private static async Task RefusedLoginAsync(HttpClient client, ServerProcess server, Account account)
    {
        using var response = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/auth/login"),
            new { tenant = "no-" + account.Slug, email = account.Email, password = account.Password });
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != System.Net.HttpStatusCode.Unauthorized)
        {
            throw new InvalidOperationException($"login to an unknown tenant answered {(int)response.StatusCode}, not 401: {body}");
        }
    }

    /// <summary>One sign-in; returns the access token.</summary>
    private static async Task<string> LoginAsync(HttpClient client, ServerProcess server, Account account)
    {
        using var response = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/auth/login"),
            new { tenant = account.Slug, email = account.Email, password = account.Password });
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"login answered {(int)response.StatusCode}: {body}");
        }

        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("accessToken").GetString()
            ?? throw new InvalidOperationException($"login answered without an access token: {body}");
    }

    private static async Task<double> GetAsync(HttpClient client, ServerProcess server, string path, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress, path));
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

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

    /// <summary>
    /// <paramref name="count"/> sign-ins over <paramref name="clients"/> clients that each send the next one as soon as
    /// theirs is answered. With <paramref name="coldMe"/>, each new token's first GET /api/v1/me (a session the app has
    /// not seen: a cache miss) is timed after its sign-in, outside the sign-in's time and the pass's wall time.
    /// </summary>
    private static async Task<Pass> RunLoginsAsync(HttpClient client, ServerProcess server, Account account, int count, int clients, List<double>? coldMe)
    {
        var latencies = new double[count];
        var next = -1;
        var paused = TimeSpan.Zero;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var started = Stopwatch.GetTimestamp();
                var token = await LoginAsync(client, server, account);
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (coldMe is not null)
                {
                    var aside = Stopwatch.GetTimestamp();
                    coldMe.Add(await GetAsync(client, server, MePath, token));
                    paused += Stopwatch.GetElapsedTime(aside);
                }
            }
        }));
        return new Pass(latencies, wall.Elapsed - paused);
    }

    private static async Task<Pass> RunRefusedAsync(HttpClient client, ServerProcess server, Account account, int count)
    {
        var latencies = new double[count];
        var wall = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await RefusedLoginAsync(client, server, account);
            latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }

        return new Pass(latencies, wall.Elapsed);
    }

    private static Pass RunInProcess(PasswordHasher hasher, string password, string storedHash, int count, int threads)
    {
        var latencies = new double[count];
        var next = -1;
        var wall = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var started = Stopwatch.GetTimestamp();
                Verify(hasher, password, storedHash);
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        return new Pass(latencies, wall.Elapsed);
    }

    private static void Verify(PasswordHasher hasher, string password, string storedHash)
    {
        // Each baseline thread is its own; blocking it on the task is the plain sequential loop the baseline is.
        if (hasher.VerifyAsync(password, storedHash, CancellationToken.None).GetAwaiter().GetResult() != PasswordCheck.Match)
        {
            throw new InvalidOperationException("PasswordHasher.Verify did not match the hash it made");
        }
    }

    /// <summary>
    /// GET /api/health/live and GET /api/v1/me with one valid token, alternating, one client: the same connection and
    /// the same moments for both. The token's session is cached after its first request (uncounted, in the warm-up).
    /// </summary>
    private static async Task<(double[] Live, double[] Me)> RunAuthenticatedAsync(HttpClient client, ServerProcess server, string token)
    {
        for (var i = 0; i < WarmUpRequests; i++)
        {
            await GetAsync(client, server, LivePath, null);
            await GetAsync(client, server, MePath, token);
        }

        var live = new double[AuthenticatedRequests];
        var me = new double[AuthenticatedRequests];
        for (var i = 0; i < AuthenticatedRequests; i++)
        {
            live[i] = await GetAsync(client, server, LivePath, null);
            me[i] = await GetAsync(client, server, MePath, token);
        }

        return (live, me);
    }

    private static void PrintTables(Pass verifySequential, Pass loginSequential, Pass refusedSequential, Pass verifyConcurrent, Pass loginConcurrent,
        double[] live, double[] me, List<double> coldMe)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine($"{"sign-in",-55} {"n",5} {"per second",11} {"p50",10} {"p99",10}");
        Row("baseline: PasswordHasher.Verify in-process, 1 thread", verifySequential);
        Row("POST /api/v1/auth/login, 1 client", loginSequential);
        Difference("login - Verify, 1 at a time", loginSequential, verifySequential);
        Row("POST /api/v1/auth/login, unknown tenant, 1 client (401)", refusedSequential);
        Difference("login - unknown tenant: storage and session", loginSequential, refusedSequential);
        var quarter = Math.Max(1, loginSequential.Latencies.Length / 4);
        Console.WriteLine(string.Create(inv,
            $"  {"login, 1 client: first vs last quarter",-53} {quarter,5} {"",11} {Percentile(loginSequential.Latencies[..quarter], 50),7:0.0} ms "
            + $"{Percentile(loginSequential.Latencies[^quarter..], 50),7:0.0} ms  (p50 each; the account's session rows accumulate)"));
        Row($"baseline: PasswordHasher.Verify in-process, {Clients} threads", verifyConcurrent);
        Row($"POST /api/v1/auth/login, {Clients} clients", loginConcurrent);
        Difference($"login - Verify, {Clients} at a time", loginConcurrent, verifyConcurrent);

        Console.WriteLine();
        Console.WriteLine($"{"authenticated request (1 client, kept-alive, alternating)",-58} {"n",5} {"p50",10} {"p99",10}");
        LatencyRow($"baseline: GET {LivePath} (no auth, no storage)", live);
        LatencyRow($"GET {MePath}, valid token, session cached", me);
        Console.WriteLine(string.Create(inv,
            $"  {"me - live",-56} {"",5} {Percentile(me, 50) - Percentile(live, 50),+7:+0.00;-0.00} ms {Percentile(me, 99) - Percentile(live, 99),+7:+0.00;-0.00} ms"));
        LatencyRow($"GET {MePath}, first request of a new session (cache miss)", [.. coldMe]);
        var coldQuarter = Math.Max(1, coldMe.Count / 4);
        Console.WriteLine(string.Create(inv,
            $"  {"miss, first vs last quarter (p50 each)",-56} {coldQuarter,5} {Percentile(coldMe[..coldQuarter], 50),7:0.00} ms {Percentile(coldMe[^coldQuarter..], 50),7:0.00} ms"));
        Console.WriteLine(string.Create(inv,
            $"  {"miss - cached",-56} {"",5} {Percentile(coldMe, 50) - Percentile(me, 50),+7:+0.00;-0.00} ms {Percentile(coldMe, 99) - Percentile(me, 99),+7:+0.00;-0.00} ms"));
        Console.WriteLine($"(GET {MePath} itself reads the user row; 'me - live' is authentication plus that read plus the JSON answer. "
            + "Validation alone: the tokens command.)");

        void Row(string name, Pass pass) => Console.WriteLine(string.Create(inv,
            $"{name,-55} {pass.Latencies.Length,5} {pass.Latencies.Length / pass.Wall.TotalSeconds,9:0.0}/s {Percentile(pass.Latencies, 50),7:0.0} ms {Percentile(pass.Latencies, 99),7:0.0} ms"));

        void Difference(string name, Pass app, Pass baseline) => Console.WriteLine(string.Create(inv,
            $"  {name,-53} {"",5} {app.Latencies.Length / app.Wall.TotalSeconds - baseline.Latencies.Length / baseline.Wall.TotalSeconds,+9:+0.0;-0.0}/s "
            + $"{Percentile(app.Latencies, 50) - Percentile(baseline.Latencies, 50),+7:+0.0;-0.0} ms {Percentile(app.Latencies, 99) - Percentile(baseline.Latencies, 99),+7:+0.0;-0.0} ms"));

        void LatencyRow(string name, IReadOnlyCollection<double> values) => Console.WriteLine(string.Create(inv,
            $"{name,-58} {values.Count,5} {Percentile(values, 50),7:0.00} ms {Percentile(values, 99),7:0.00} ms"));
    }

    /// <summary>Nearest-rank percentile: the smallest value at or above which <paramref name="percent"/> % of values lie.</summary>
    internal static double Percentile(IReadOnlyCollection<double> values, double percent)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("no values", nameof(values));
        }

        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(percent / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    /// <summary>System.GC.Server from the app's runtimeconfig.json, as the figure's header reports it.</summary>
    private static string AppGc(string executable)
    {
        var name = Path.GetFileName(executable);
        name = name.EndsWith(".exe", StringComparison.OrdinalIgnoreCase) ? name[..^4] : name;
        var config = Path.Combine(Path.GetDirectoryName(executable)!, name + ".runtimeconfig.json");
        if (!File.Exists(config))
        {
            return "unknown";
        }

        using var json = JsonDocument.Parse(File.ReadAllText(config));
        return json.RootElement.TryGetProperty("runtimeOptions", out var options)
            && options.TryGetProperty("configProperties", out var properties)
            && properties.TryGetProperty("System.GC.Server", out var server)
            && server.ValueKind == JsonValueKind.True
                ? "server"
                : "workstation";
    }

    private sealed record Account(string Slug, string Email, string Password);

    private sealed record Pass(double[] Latencies, TimeSpan Wall);
}
