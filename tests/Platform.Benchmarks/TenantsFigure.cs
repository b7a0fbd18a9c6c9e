using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Users;

namespace Platform.Benchmarks;

/// <summary>
/// <c>tenants &lt;appExecutable&gt; [tenants=200] [users=1000] [requests=400]</c>: user lists when many tenants are
/// active on one instance at once, next to one tenant alone, in the same run. Each tenant holds <c>users</c> users,
/// preloaded (<see cref="TablePreload"/>) or, without a preload service, none beyond its admin. Measured, one request
/// at a time: <c>GET /api/v1/users?q=&lt;one user's email local part&gt;</c> for the lone tenant (before and after the
/// many), and for a random one of the many tenants each request. Each answer must be exactly that tenant's user: the
/// same local part exists in every tenant, so a list that leaked another tenant's rows would fail the figure. The first
/// list of each tenant (the projection's scan) is reported apart, as "cold": it is what every list cost once more
/// tenants were active than the projection held.
/// </summary>
internal static class TenantsFigure
{
    private const int DefaultTenants = 200;
    private const int DefaultUsers = 1000;
    private const int DefaultRequests = 400;
    private const int WarmUpRequests = 10;
    private const int PageSize = 50;
    private const int SignUpsAtOnce = 4;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 1 or > 4
            || !BenchAdmin.TryCount(args, 1, DefaultTenants, out var tenants, 9_999_999) || !BenchAdmin.TryCount(args, 2, DefaultUsers, out var users, 9_999_999) || !BenchAdmin.TryCount(args, 3, DefaultRequests, out var requests, 9_999_999))
        {
            await Console.Error.WriteLineAsync("usage: tenants <appExecutable> [tenants=200] [users=1000] [requests=400] (positive whole numbers)");
            return 2;
        }

        var executable = Path.GetFullPath(args[0]);
        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (!File.Exists(executable) || string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync($"tenants: needs an existing executable ({executable}) and AzureWebJobsStorage (infra/bench/tenants.sh sets it)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (prefix, environment) = ScaleFigureApp.Environment(storage, signingKey);
        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan }) { Timeout = TimeSpan.FromMinutes(10) };
        var tables = new TableServiceClient(storage);
        var preload = TablePreload.FromEnvironment(client);
        var seeded = preload is null ? 0 : users;
        var seedNote = preload is null ? " (no preload service: admins only)" : " (preloaded into Azurite's store as the bulk route writes them)";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tenants: {tenants} tenants active at once, next to 1 tenant alone; {seeded:N0} users each{seedNote}; GET /api/v1/users?q=<one user>&pageSize={PageSize}, 1 request at a time: {requests} over random tenants of the many, {requests / 2} + {requests / 2} for the lone tenant before and after (each after {WarmUpRequests} uncounted); {Environment.ProcessorCount} cores"));
        Console.WriteLine($"  app       {executable}");
        Console.WriteLine($"  prefix    {prefix}");

        using var server = ServerProcess.Start(executable, environment);
        try
        {
            await server.WaitForOkAsync(client, "/api/health/live", StartTimeout);
            await server.WaitForOkAsync(client, "/api/health/ready", StartTimeout);

            var signingUp = Stopwatch.StartNew();
            var admins = new BenchAdmin[tenants + 1];
            await Parallel.ForAsync(0, tenants + 1, new ParallelOptions { MaxDegreeOfParallelism = SignUpsAtOnce }, async (i, _) =>
            {
                admins[i] = await BenchAdmin.SignUpAsync(client, server);
                await admins[i].TokenAsync(client, server);
            });
            var alone = admins[tenants];
            var many = admins[..tenants];
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"tenants: {tenants + 1} tenants signed up and in ({signingUp.Elapsed.TotalSeconds:0} s)"));

            if (preload is not null)
            {
                var loading = Stopwatch.StartNew();
                var scratch = tables.GetTableClient(prefix + "scratch");
                await scratch.CreateIfNotExistsAsync();
                var now = DateTimeOffset.UtcNow;
                var (sampleUser, sampleIndex) = UsersFigure.UserRows("check", 0, "check", now);
                await preload.VerifyAsync(scratch, [sampleUser, sampleIndex]);
                await scratch.DeleteAsync();
                await preload.LoadAsync(prefix + UserDirectory.TableName, admins.SelectMany(admin => Enumerable.Range(0, users).SelectMany(n =>
                {
                    var (user, index) = UsersFigure.UserRows(admin.TenantId, n, admin.Slug, now);
                    return new ITableEntity[] { user, index };
                })));
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"tenants: preloaded {(tenants + 1) * (long)users:N0} users ({loading.Elapsed.TotalSeconds:0} s)"));
            }

            var random = new Random(42);
            int NextUser() => seeded == 0 ? -1 : random.Next(seeded);

            // The lone tenant first, while the instance holds nothing else.
            var coldAlone = await ListAsync(client, server, alone, NextUser());
            var aloneBefore = await PassAsync(client, server, _ => alone, NextUser, requests / 2);
            var memoryAlone = server.ReadMemory().Resident;

            // Every tenant of the many lists once: each loads its projection.
            var cold = new List<double>(tenants);
            foreach (var admin in many)
            {
                cold.Add(await ListAsync(client, server, admin, NextUser()));
            }

            var memoryMany = server.ReadMemory().Resident;
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"tenants: all {tenants} loaded; measuring"));
            var manyPass = await PassAsync(client, server, _ => many[random.Next(tenants)], NextUser, requests);
            var aloneAfter = await PassAsync(client, server, _ => alone, NextUser, requests / 2);

            var aloneAll = aloneBefore.Concat(aloneAfter).ToList();
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| lists, {seeded:N0} users a tenant, page {PageSize} | p50 | p99 | n |"));
            Console.WriteLine("|---|---|---|---|");
            Row($"1 tenant alone (baseline), before and after", aloneAll);
            Row($"  before", aloneBefore);
            Row($"  after", aloneAfter);
            Row($"**{tenants} tenants active at once**, a random one each request", manyPass);
            Row($"first list of each of the {tenants} (cold: loads its projection)", cold);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| first list of the lone tenant (cold) | {Statistics.Ms(coldAlone)} | | 1 |"));
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"resident memory: {memoryAlone / 1048576.0:0.0} MiB with the lone tenant held, {memoryMany / 1048576.0:0.0} MiB with all {tenants + 1}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"many / alone: p50 {Statistics.Median(manyPass) / Statistics.Median(aloneAll):0.0}x, p99 {Statistics.Percentile(manyPass, 99) / Statistics.Percentile(aloneAll, 99):0.0}x; cold / many p50: {Statistics.Median(cold) / Statistics.Median(manyPass):0.0}x"));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or TaskCanceledException
            or Azure.RequestFailedException or JsonException)
        {
            await Console.Error.WriteLineAsync($"tenants: {e.Message}{Environment.NewLine}app output (tail):{Environment.NewLine}{server.OutputTail()}");
            return 1;
        }
        finally
        {
            await server.StopAsync(StopGrace);
        }

        return 0;
    }

    private static void Row(string label, List<double> latencies) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {label} | {Statistics.Ms(Statistics.Median(latencies))} | {Statistics.Ms(Statistics.Percentile(latencies, 99))} | {latencies.Count} |"));

    private static async Task<List<double>> PassAsync(HttpClient client, ServerProcess server, Func<int, BenchAdmin> tenant, Func<int> user, int requests)
    {
        for (var i = 0; i < WarmUpRequests; i++)
        {
            await ListAsync(client, server, tenant(i), user());
        }

        var latencies = new List<double>(requests);
        for (var i = 0; i < requests; i++)
        {
            latencies.Add(await ListAsync(client, server, tenant(i), user()));
        }

        return latencies;
    }

    /// <summary>
    /// One search, timed; throws unless it answers exactly the tenant's user <paramref name="n"/> (or, with no users
    /// seeded, exactly the tenant's admin).
    /// </summary>
    private static async Task<double> ListAsync(HttpClient client, ServerProcess server, BenchAdmin admin, int n)
    {
        var expected = n < 0 ? admin.Email : UsersFigure.Email(n, admin.Slug);
        var path = $"/api/v1/users?q={Uri.EscapeDataString(expected.Split('@')[0])}&pageSize={PageSize}";
        var (elapsed, body) = await admin.TimedGetAsync(client, server, path);

        using var json = JsonDocument.Parse(body);
        var emails = json.RootElement.GetProperty("items").EnumerateArray().Select(item => item.GetProperty("email").GetString()).ToList();
        if (emails.Count != 1 || emails[0] != expected)
        {
            throw new InvalidOperationException($"GET {path} for tenant {admin.Slug} answered [{string.Join(", ", emails.Take(3))}]; expected exactly {expected}");
        }

        return elapsed;
    }
}
