using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Platform.Functions.Identity.Passwords;

namespace Platform.Benchmarks;

/// <summary>
/// <c>signin-under-bulk &lt;appExecutable&gt; [logins=100] [bulkUsers=1000]</c>: sign-in latency of the published app while
/// two bulk requests create users with passwords, next to sign-in alone, in the same run and the same process.
/// </summary>
/// <remarks>
/// Each bulk create hashes one password (Argon2id, ~19 MiB and tens of ms of a core), so two 1000-user requests are
/// 2000 hashes. They run in the bulk lane of the hashing gate (<see cref="PasswordHashingOptions.MaxConcurrentBulkHashes"/>,
/// by default a quarter of the slots), so sign-ins keep the rest. One client signs in as the tenant's admin, one
/// request after another: <c>logins</c> times alone (the baseline), then for as long as both bulk requests run, then
/// <c>logins</c> times alone again (drift check). A sign-in answered 503 <c>busy</c> is counted, not fatal: it is what
/// the figure is about. The app runs as the scale figures run it (Production, throwaway keys, its own storage
/// prefix, raised per-IP limits).
/// </remarks>
internal static class SignInUnderBulkFigure
{
    private const int BulkRequests = 2;
    private const int WarmUpLogins = 10;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 1 or > 3
            || !BenchAdmin.TryCount(args, 1, 100, out var logins)
            || !BenchAdmin.TryCount(args, 2, 1000, out var bulkUsers)
            || bulkUsers > 1000)
        {
            await Console.Error.WriteLineAsync("usage: signin-under-bulk <appExecutable> [logins=100] [bulkUsers=1000 (at most 1000)]");
            return 2;
        }

        var executable = Path.GetFullPath(args[0]);
        if (!File.Exists(executable))
        {
            await Console.Error.WriteLineAsync($"signin-under-bulk: no such executable: {executable}");
            return 2;
        }

        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync("signin-under-bulk: set AzureWebJobsStorage (infra/bench/signin-under-bulk.sh starts an Azurite and sets it)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (_, environment) = ScaleFigureApp.Environment(storage, signingKey);
        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            // A bulk request of 1000 hashes in a lane of one slot takes a minute or more on a small machine.
            Timeout = TimeSpan.FromMinutes(30),
        };

        var hashing = new PasswordHashingOptions();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"signin-under-bulk: POST /api/v1/auth/login, 1 client, {logins} sign-ins alone, then sign-ins for as long as {BulkRequests} "
            + $"POST /api/v1/users/bulk of {bulkUsers} creates with passwords each run at once, then {logins} alone again (after {WarmUpLogins} uncounted); "
            + $"Argon2id m={hashing.MemoryKiB},t={hashing.Iterations},p={hashing.Parallelism}; hashing slots {hashing.EffectiveMaxConcurrentHashes}, "
            + $"bulk lane {hashing.EffectiveMaxConcurrentBulkHashes} (the app's defaults on this machine); {Environment.ProcessorCount} cores"));
        Console.WriteLine($"  app       {executable}");

        using var server = ServerProcess.Start(executable, environment);
        try
        {
            await server.WaitForOkAsync(client, "/api/health/live", StartTimeout);
            await server.WaitForOkAsync(client, "/api/health/ready", StartTimeout);
            var admin = await BenchAdmin.SignUpAsync(client, server);
            var password = admin.Password;

            for (var i = 0; i < WarmUpLogins; i++)
            {
                await SignInAsync(client, server, admin, password);
            }

            var before = await SignInsAsync(client, server, admin, password, () => false, logins);

            // Signed in right before the bulk requests: each sign-in past MaxSessionsPerUser (10) ends the oldest
            // session, and the bulk requests are authenticated when they arrive, long before ten more sign-ins.
            using var tokenResponse = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/auth/login"),
                new { tenant = admin.Slug, email = admin.Email, password });
            tokenResponse.EnsureSuccessStatusCode();
            var adminToken = (await tokenResponse.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accessToken").GetString()!;
            var bulkStarted = Stopwatch.StartNew();
            var bulks = Enumerable.Range(0, BulkRequests)
                .Select(b => BulkCreateAsync(client, server, adminToken, admin.Slug, b, bulkUsers, bulkStarted))
                .ToList();
            var during = await SignInsAsync(client, server, admin, password, () => bulks.All(b => b.IsCompleted), count: null);
            var bulkSeconds = await Task.WhenAll(bulks);

            var after = await SignInsAsync(client, server, admin, password, () => false, logins);

            Print(before, during, after, bulkSeconds, bulkUsers);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"signin-under-bulk: {e.Message}{Environment.NewLine}app output (tail):{Environment.NewLine}{server.OutputTail()}");
            return 1;
        }
        finally
        {
            await server.StopAsync(StopGrace);
        }

        return 0;
    }

    /// <summary>
    /// Sign-ins one after another until <paramref name="stop"/> holds (checked before each) or <paramref name="count"/>
    /// are done. Returns the latencies of those answered 200 and how many were answered 503 busy.
    /// </summary>
    private static async Task<Pass> SignInsAsync(HttpClient client, ServerProcess server, BenchAdmin admin, string password, Func<bool> stop, int? count)
    {
        var latencies = new List<double>();
        var busy = 0;
        while (!stop() && (count is null || latencies.Count + busy < count))
        {
            var started = Stopwatch.GetTimestamp();
            var status = await SignInAsync(client, server, admin, password);
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (status == HttpStatusCode.OK)
            {
                latencies.Add(elapsed);
            }
            else
            {
                busy++;
            }
        }

        return new Pass(latencies, busy);
    }

    /// <summary>One sign-in; 200 or 503 busy, anything else ends the figure.</summary>
    private static async Task<HttpStatusCode> SignInAsync(HttpClient client, ServerProcess server, BenchAdmin admin, string password)
    {
        using var response = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/auth/login"),
            new { tenant = admin.Slug, email = admin.Email, password });
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable))
        {
            throw new InvalidOperationException($"login answered {(int)response.StatusCode}: {body}");
        }

        return response.StatusCode;
    }

    /// <summary>One bulk request of creates with passwords; returns the seconds from the start of the block to its answer.</summary>
    private static async Task<double> BulkCreateAsync(HttpClient client, ServerProcess server, string token, string slug, int request, int users, Stopwatch block)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new
        {
            operations = Enumerable.Range(0, users).Select(n => new
            {
                op = "create",
                data = new
                {
                    email = string.Create(CultureInfo.InvariantCulture, $"bulk{request}-{n}@{slug}.example.com"),
                    displayName = string.Create(CultureInfo.InvariantCulture, $"Bulk {request}-{n}"),
                    password = "bulk user " + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
                },
            }),
        });
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress, "/api/v1/users/bulk"))
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await client.SendAsync(message);
        var text = await response.Content.ReadAsStringAsync();
        var seconds = block.Elapsed.TotalSeconds;
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"POST /api/v1/users/bulk #{request} answered {(int)response.StatusCode}: {text[..Math.Min(text.Length, 500)]}");
        }

        using var json = JsonDocument.Parse(text);
        var failed = json.RootElement.GetProperty("results").EnumerateArray().Count(r => r.GetProperty("status").GetInt32() != 201);
        if (failed > 0)
        {
            throw new InvalidOperationException($"POST /api/v1/users/bulk #{request}: {failed} of {users} creates were not 201");
        }

        return seconds;
    }

    private static void Print(Pass before, Pass during, Pass after, double[] bulkSeconds, int bulkUsers)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine($"{"sign-in, 1 client, one after another",-62} {"n",5} {"p50",10} {"p99",10} {"503 busy",9}");
        Row("baseline: POST /api/v1/auth/login alone (before)", before);
        Row($"POST /api/v1/auth/login while {BulkRequests} bulk creates with passwords run", during);
        Row("baseline: POST /api/v1/auth/login alone (after)", after);
        if (during.Latencies.Count > 0)
        {
            var alone = before.Latencies.Concat(after.Latencies).ToList();
            Console.WriteLine(string.Create(inv,
                $"  {"during - alone (before and after together)",-60} {"",5} {LoginFigure.Percentile(during.Latencies, 50) - LoginFigure.Percentile(alone, 50),+7:+0.0;-0.0} ms "
                + $"{LoginFigure.Percentile(during.Latencies, 99) - LoginFigure.Percentile(alone, 99),+7:+0.0;-0.0} ms"));
        }

        var total = BulkRequests * bulkUsers;
        Console.WriteLine(string.Create(inv,
            $"bulk: {BulkRequests} x POST /api/v1/users/bulk, {bulkUsers} creates with passwords each, all 201: answered after "
            + $"{string.Join(" s and ", bulkSeconds.Select(s => s.ToString("0.0", inv)))} s; {total / bulkSeconds.Max():0.0} users/s together"));

        void Row(string name, Pass pass) => Console.WriteLine(pass.Latencies.Count == 0
            ? string.Create(inv, $"{name,-62} {0,5} {"-",10} {"-",10} {pass.Busy,9}")
            : string.Create(inv,
                $"{name,-62} {pass.Latencies.Count,5} {LoginFigure.Percentile(pass.Latencies, 50),7:0.0} ms {LoginFigure.Percentile(pass.Latencies, 99),7:0.0} ms {pass.Busy,9}"));
    }

    private sealed record Pass(List<double> Latencies, int Busy);
}
