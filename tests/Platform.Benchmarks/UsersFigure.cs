using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Query;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Benchmarks;

/// <summary>
/// <c>users &lt;appExecutable&gt; [users=100000] [scans=20]</c>: the figures of the Users capability for one tenant of
/// <c>users</c> users, each next to a baseline that does the same work with the Azure.Data.Tables SDK directly, in the
/// same run. (1) Bulk create through <c>POST /api/v1/users/bulk</c> (1000 creates a call, no passwords), with 1 caller
/// and with <see cref="Callers"/> callers at once, next to the SDK writing the same rows (user + email index, 50 + 50
/// to an entity-group transaction) into a scratch table. (2) <c>GET /api/v1/users?q=</c> and a two-condition
/// <c>filter</c>, p50/p99 of back-to-back requests once the app's per-instance projection is loaded, next to a scan of
/// the tenant's <c>u:</c> rows with the SDK that applies the same search and filter (the app's own parser and
/// evaluator) in memory.
/// </summary>
/// <remarks>
/// The app runs as <see cref="StartupFigure"/> runs it (Production, throwaway keys, storage from
/// <c>AzureWebJobsStorage</c>), with its own storage prefix so a rerun against the same Azurite starts empty. Bulk calls
/// run in blocks of 1 caller and <see cref="Callers"/> callers in turn (A B B A ...), each block of the baseline right
/// before the app's matching block, so both sides and both concurrencies meet the same table sizes on average.
/// With <see cref="TablePreload.Variable"/> set (users.sh sets it), all but the last <see cref="MeasuredTail"/> users
/// are preloaded into the app's table and as many into the baseline's scratch partition, shaped as each side writes
/// them, and only the tail is created by both sides, at the full size: Azurite's REST insert walks the whole partition,
/// so creating 100,000 users one call after another takes hours there. The first list request after the bulk load pays the scan
/// that loads the projection: it is reported apart as "cold", as are requests made after the projection's refresh
/// interval has passed (each of those fetches the rows changed since the last look).
/// </remarks>
internal static class UsersFigure
{
    private const int Callers = 2;

    /// <summary>With a preload: users created through the route (and by the baseline) on top of the preloaded ones, 1 caller then 2.</summary>
    private const int MeasuredTail = 4 * UsersEndpoints.MaxBulkOperations;
    private const int DefaultUsers = 100_000;
    private const int DefaultScans = 20;
    private const int ListRequests = 200;
    private const int WarmUpRequests = 10;
    private const int WarmUpScans = 2;
    private const int IdleRequests = 10;
    private const int PageSize = 50;
    private const int CreatesPerTransaction = 50;
    private const string Filter = "status eq 'active' and displayName startswith 'User 4'";
    private const string LivePath = "/api/health/live";
    private const string ReadyPath = "/api/health/ready";
    private static readonly string[] Departments = ["Sales", "Support", "Engineering", "Finance", "Operations"];
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    /// <summary>Longer than the projection's refresh interval, so the next list fetches the changes first.</summary>
    private static readonly TimeSpan IdlePause = ListProjection<UserEntity, UserListItem>.RefreshEvery + TimeSpan.FromMilliseconds(500);

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 1 or > 3)
        {
            await Console.Error.WriteLineAsync("usage: users <appExecutable> [users=100000] [scans=20]");
            return 2;
        }

        var users = DefaultUsers;
        if (args.Length >= 2 && (!int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out users) || users is < 1 or > 9_999_999))
        {
            await Console.Error.WriteLineAsync($"users must be a whole number from 1 to 9999999: {args[1]}");
            return 2;
        }

        var scans = DefaultScans;
        if (args.Length == 3 && (!int.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out scans) || scans < 1))
        {
            await Console.Error.WriteLineAsync($"scans must be a positive whole number: {args[2]}");
            return 2;
        }

        var executable = Path.GetFullPath(args[0]);
        if (!File.Exists(executable))
        {
            await Console.Error.WriteLineAsync($"users: no such executable: {executable}");
            return 2;
        }

        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync("users: set AzureWebJobsStorage (infra/bench/users.sh starts an Azurite and sets it)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (prefix, environment) = ScaleFigureApp.Environment(storage, signingKey);

        // Kept-alive connections; a cold list on Azurite scans the whole partition, which takes a while.
        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            Timeout = TimeSpan.FromMinutes(30),
        };

        var tables = new TableServiceClient(storage);
        var scratch = tables.GetTableClient(prefix + "scratch");
        var preload = TablePreload.FromEnvironment(client);
        var preloaded = preload is null ? 0 : Math.Max(0, users - MeasuredTail);
        var calls = (users - preloaded + UsersEndpoints.MaxBulkOperations - 1) / UsersEndpoints.MaxBulkOperations;
        var blockCalls = preloaded > 0 ? Math.Max(1, calls / 2) : Math.Clamp(calls / 10, 1, 5);
        var preloadNote = preloaded > 0
            ? string.Create(CultureInfo.InvariantCulture, $"the first {preloaded:N0} preloaded into Azurite's store (as the route writes them; checked against the SDK's writes), the last ")
            : "";
        var scratchNote = preloaded > 0 ? string.Create(CultureInfo.InvariantCulture, $" holding {preloaded:N0} users already") : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"users: one tenant of {users:N0} users; {preloadNote}"
            + $"{users - preloaded:N0} created with POST /api/v1/users/bulk ({calls} calls of up to {UsersEndpoints.MaxBulkOperations}, no passwords), "
            + $"in blocks of {blockCalls} calls, 1 caller and {Callers} callers in turn (ABBA); baseline: the same rows written with the SDK "
            + $"({CreatesPerTransaction} users + {CreatesPerTransaction} email rows a transaction) into a scratch table{scratchNote}, each block right before the app's. "
            + $"Lists: {ListRequests} requests each (after {WarmUpRequests} uncounted), page size {PageSize}; baseline: SDK scan of the partition + "
            + $"the same search/filter in memory, {scans} each (after {WarmUpScans} uncounted); {Environment.ProcessorCount} cores"));
        Console.WriteLine($"  app       {executable}");
        Console.WriteLine($"  prefix    {prefix}");

        using var server = ServerProcess.Start(executable, environment);
        try
        {
            await server.WaitForOkAsync(client, LivePath, StartTimeout);
            await server.WaitForOkAsync(client, ReadyPath, StartTimeout);

            var admin = await BenchAdmin.SignUpAsync(client, server);
            await PutSchemaAsync(client, server, admin);
            var partition = tables.GetTableClient(prefix + UserDirectory.TableName);
            Console.WriteLine($"  tenant    {admin.Slug} (partition {admin.TenantId} of table {partition.Name})");

            // Bulk create: both sides, block by block (after the preload, if any).
            await scratch.CreateIfNotExistsAsync();
            var next = 0;
            if (preloaded > 0)
            {
                var loading = Stopwatch.StartNew();
                var now = DateTimeOffset.UtcNow;
                var (sampleUser, sampleIndex) = UserRows("check", 0, "check", now);
                sampleUser.PasswordHash = "sample";
                sampleUser.LastLoginAt = now;
                sampleUser.TotpLastStep = 1L << 40;
                sampleUser.EmailVerified = true;
                await preload!.VerifyAsync(scratch, [sampleUser, sampleIndex]);
                await preload.LoadAsync(partition.Name, Enumerable.Range(0, preloaded).SelectMany(n => Rows(admin.TenantId, n, admin.Slug, now)));
                await preload.LoadAsync(scratch.Name, Enumerable.Range(0, preloaded).SelectMany(n => Rows("scratch", n, "scratch", now)));
                next = preloaded;
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"users: preloaded {preloaded:N0} users into the tenant and into the scratch partition ({loading.Elapsed.TotalSeconds:0} s)"));
            }

            static IEnumerable<ITableEntity> Rows(string partition, int n, string slug, DateTimeOffset now)
            {
                var (user, index) = UserRows(partition, n, slug, now);
                return [user, index];
            }

            var bulk = new BulkFigures();
            var block = 0;
            var progress = Stopwatch.StartNew();
            while (next < users)
            {
                // A B B A A B ...: the partition grows as the figure runs, so neither concurrency gets the larger tables.
                var callers = block % 4 is 0 or 3 ? 1 : Callers;
                var batches = new List<(int First, int Count)>();
                for (var i = 0; i < blockCalls && next < users; i++)
                {
                    var count = Math.Min(UsersEndpoints.MaxBulkOperations, users - next);
                    batches.Add((next, count));
                    next += count;
                }

                bulk.Add(baseline: true, callers, await RunBlockAsync(batches, callers, batch => WriteDirectAsync(scratch, batch)));
                bulk.Add(baseline: false, callers, await RunBlockAsync(batches, callers, batch => BulkCreateAsync(client, server, admin, batch)));
                block++;
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"users: {next:N0} of {users:N0} created ({progress.Elapsed.TotalSeconds:0} s)"));
            }

            // The baseline's rows go before the lists are measured: the scratch table is not what is listed.
            await scratch.DeleteAsync();
            var memoryBefore = server.ReadMemory();

            // Lists. The first one loads the projection: reported apart.
            var random = new Random(42);
            var searched = Enumerable.Range(0, ListRequests + WarmUpRequests + IdleRequests + 1).Select(_ => random.Next(users)).ToArray();
            var cold = await ListAsync(client, server, admin, SearchPath(searched[0]));
            var coldMs = cold.Milliseconds;
            ExpectSearchHit(cold, searched[0], admin);
            var memoryAfter = server.ReadMemory();
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"users: first list (cold) took {coldMs:0} ms"));

            for (var i = 0; i < WarmUpRequests; i++)
            {
                ExpectSearchHit(await ListAsync(client, server, admin, SearchPath(searched[1 + i])), searched[1 + i], admin);
                await ListAsync(client, server, admin, FilterPath());
            }

            var searchIndexes = searched[(1 + WarmUpRequests)..(1 + WarmUpRequests + ListRequests)];
            var appSearch = new List<double>(ListRequests);
            var appSearchPages = new Dictionary<int, string[]>();
            foreach (var n in searchIndexes)
            {
                var page = await ListAsync(client, server, admin, SearchPath(n));
                ExpectSearchHit(page, n, admin);
                appSearch.Add(page.Milliseconds);
                appSearchPages[n] = page.Ids;
            }

            var appFilter = new List<double>(ListRequests);
            string[]? filterPage = null;
            for (var i = 0; i < ListRequests; i++)
            {
                var page = await ListAsync(client, server, admin, FilterPath());
                ExpectFilterPage(page, users, filterPage);
                filterPage ??= page.Ids;
                appFilter.Add(page.Milliseconds);
            }

            // After the refresh interval: the next list first fetches the rows changed since the last look.
            var idle = new List<double>(IdleRequests);
            foreach (var n in searched[^IdleRequests..])
            {
                await Task.Delay(IdlePause);
                var page = await ListAsync(client, server, admin, SearchPath(n));
                ExpectSearchHit(page, n, admin);
                idle.Add(page.Milliseconds);
            }

            await Console.Error.WriteLineAsync("users: app lists done; baseline scans next");

            // Baseline: scan + the same search/filter, with the app's parser and evaluator; it must agree with the app.
            var where = FilterParser.Parse(Filter, UsersEndpoints.FilterSchemaFor(new SchemaDocument([])));
            for (var i = 0; i < WarmUpScans; i++)
            {
                await ScanAsync(partition, admin.TenantId, Search(searched[1 + i]), null);
            }

            var scanSearch = new List<double>(scans);
            foreach (var n in searchIndexes.Take(scans))
            {
                var (ids, ms) = await ScanAsync(partition, admin.TenantId, Search(n), null);
                Agree("q", ids, appSearchPages[n]);
                scanSearch.Add(ms);
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"users: scan with q {scanSearch.Count}/{scans}: {ms:0} ms"));
            }

            for (var i = 0; i < WarmUpScans; i++)
            {
                await ScanAsync(partition, admin.TenantId, null, where);
            }

            var scanFilter = new List<double>(scans);
            for (var i = 0; i < scans; i++)
            {
                var (ids, ms) = await ScanAsync(partition, admin.TenantId, null, where);
                Agree("filter", ids, filterPage!);
                scanFilter.Add(ms);
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"users: scan with filter {scanFilter.Count}/{scans}: {ms:0} ms"));
            }

            Print(users, preloaded, bulk, coldMs, appSearch, scanSearch, appFilter, scanFilter, idle, memoryBefore.Resident, memoryAfter.Resident);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or TaskCanceledException
            or Azure.RequestFailedException or JsonException)
        {
            await Console.Error.WriteLineAsync($"users: {e.Message}{Environment.NewLine}app output (tail):{Environment.NewLine}{server.OutputTail()}");
            return 1;
        }
        finally
        {
            await server.StopAsync(StopGrace);
            try
            {
                await scratch.DeleteAsync();
            }
            catch (Azure.RequestFailedException)
            {
                // Already gone, or the storage is.
            }
        }

        return 0;
    }

    internal static string Email(int n, string slug) => string.Create(CultureInfo.InvariantCulture, $"user{n:D7}@{slug}.example.com");

    private static string DisplayName(int n) => string.Create(CultureInfo.InvariantCulture, $"User {n}");

    /// <summary>Matches one user: the local part of its email, which no other email, name or field contains.</summary>
    private static string Search(int n) => string.Create(CultureInfo.InvariantCulture, $"user{n:D7}");

    private static string SearchPath(int n) => $"/api/v1/users?q={Uri.EscapeDataString(Search(n))}&pageSize={PageSize}";

    private static string FilterPath() => $"/api/v1/users?filter={Uri.EscapeDataString(Filter)}&pageSize={PageSize}";

    private static object Fields(int n) => new { department = Departments[n % Departments.Length], employeeNo = n };

    private static async Task PutSchemaAsync(HttpClient client, ServerProcess server, BenchAdmin admin)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, new Uri(server.BaseAddress, "/api/v1/schema/users"))
        {
            Content = JsonContent.Create(new
            {
                fields = new object[]
                {
                    new { name = "department", type = "enum", values = Departments },
                    new { name = "employeeNo", type = "number", min = 0 },
                },
            }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await admin.TokenAsync(client, server));
        using var response = await client.SendAsync(request);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"PUT /api/v1/schema/users answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>
    /// The block's calls over <paramref name="callers"/> callers that each send the next one as soon as theirs is
    /// answered; returns each call's latency and the block's wall time.
    /// </summary>
    private static async Task<Pass> RunBlockAsync(List<(int First, int Count)> batches, int callers, Func<(int First, int Count), Task<double>> call)
    {
        var latencies = new double[batches.Count];
        var next = -1;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < batches.Count)
            {
                latencies[i] = await call(batches[i]);
            }
        }));
        return new Pass(latencies, batches.Sum(b => b.Count), wall.Elapsed);
    }

    private static async Task<double> BulkCreateAsync(HttpClient client, ServerProcess server, BenchAdmin admin, (int First, int Count) batch)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new
        {
            operations = Enumerable.Range(batch.First, batch.Count).Select(n => new
            {
                op = "create",
                data = new { email = Email(n, admin.Slug), displayName = DisplayName(n), fields = Fields(n) },
            }),
        });
        var token = await admin.TokenAsync(client, server);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress, "/api/v1/users/bulk"))
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);

        var started = Stopwatch.GetTimestamp();
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"POST /api/v1/users/bulk (users {batch.First}..{batch.First + batch.Count - 1}) answered {(int)response.StatusCode}: {Truncate(text)}");
        }

        using var json = JsonDocument.Parse(text);
        var results = json.RootElement.GetProperty("results");
        var failed = results.EnumerateArray().Where(r => r.GetProperty("status").GetInt32() != 201).ToList();
        if (results.GetArrayLength() != batch.Count || failed.Count > 0)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"POST /api/v1/users/bulk (users {batch.First}..{batch.First + batch.Count - 1}): {results.GetArrayLength()} results, {failed.Count} not 201; first: {(failed.Count > 0 ? failed[0].GetRawText() : "-")}"));
        }

        return elapsed;
    }

    /// <summary>
    /// What the bulk route must write for a create, written with the SDK alone: 20 transactions of 50 + 50 rows per 1000
    /// (the route writes 49 + 49 and its change-log entry per transaction, 21 per 1000; that difference is the app's).
    /// </summary>
    private static async Task<double> WriteDirectAsync(TableClient scratch, (int First, int Count) batch)
    {
        // The rows are built before the clock starts, as the app's validation is not what this baseline measures.
        var now = DateTimeOffset.UtcNow;
        var transactions = Enumerable.Range(batch.First, batch.Count).Chunk(CreatesPerTransaction).Select(chunk => chunk.SelectMany(n =>
        {
            var (user, index) = UserRows("scratch", n, "scratch", now);
            return new[] { new TableTransactionAction(TableTransactionActionType.Add, user), new TableTransactionAction(TableTransactionActionType.Add, index) };
        }).ToList()).ToList();

        var started = Stopwatch.GetTimestamp();
        foreach (var actions in transactions)
        {
            await scratch.SubmitTransactionAsync(actions);
        }

        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    /// <summary>User <paramref name="n"/> and its email index row as the bulk route writes them for a create without a password.</summary>
    internal static (UserEntity User, EmailIndexEntity Index) UserRows(string partition, int n, string slug, DateTimeOffset now)
    {
        var user = new UserEntity
        {
            PartitionKey = partition,
            RowKey = UserEntity.KeyFor(Ids.New()),
            Email = Email(n, slug),
            DisplayName = DisplayName(n),
            RoleList = ["user"],
            Fields = JsonSerializer.Serialize(Fields(n)),
            CreatedAt = now,
            UpdatedAt = now,
        };
        return (user, new EmailIndexEntity { PartitionKey = partition, RowKey = EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(user.Email)!), UserId = user.Id });
    }

    private static async Task<Page> ListAsync(HttpClient client, ServerProcess server, BenchAdmin admin, string path)
    {
        var (elapsed, body) = await admin.TimedGetAsync(client, server, path);

        using var json = JsonDocument.Parse(body);
        var items = json.RootElement.GetProperty("items").EnumerateArray().Select(item => (
            Id: item.GetProperty("id").GetString()!,
            Email: item.GetProperty("email").GetString()!,
            DisplayName: item.GetProperty("displayName").GetString()!,
            Status: item.GetProperty("status").GetString()!)).ToList();
        return new Page([.. items.Select(i => i.Id)], [.. items.Select(i => i.Email)], [.. items.Select(i => i.DisplayName)],
            [.. items.Select(i => i.Status)], json.RootElement.TryGetProperty("continuationToken", out var more) && more.ValueKind == JsonValueKind.String,
            elapsed);
    }

    private static void ExpectSearchHit(Page page, int n, BenchAdmin admin)
    {
        if (page.Ids.Length != 1 || page.Emails[0] != Email(n, admin.Slug))
        {
            throw new InvalidOperationException($"GET ?q={Search(n)} answered {page.Ids.Length} users ({string.Join(", ", page.Emails.Take(3))}); expected exactly {Email(n, admin.Slug)}");
        }
    }

    private static void ExpectFilterPage(Page page, int users, string[]? first)
    {
        var expected = Math.Min(PageSize, Enumerable.Range(0, users).Count(n => DisplayName(n).StartsWith("User 4", StringComparison.Ordinal)));
        if (page.Ids.Length != expected
            || page.DisplayNames.Any(name => !name.StartsWith("User 4", StringComparison.Ordinal))
            || page.Statuses.Any(status => status != UserStatus.Active)
            || (first is not null && !first.SequenceEqual(page.Ids)))
        {
            throw new InvalidOperationException($"GET ?filter={Filter} answered {page.Ids.Length} users (expected {expected}), or users that do not match, or another first page than before");
        }
    }

    private static void Agree(string what, string[] scanned, string[] listed)
    {
        if (!scanned.SequenceEqual(listed))
        {
            throw new InvalidOperationException($"the baseline's {what} page ({scanned.Length} users) differs from the app's ({listed.Length} users)");
        }
    }

    /// <summary>
    /// What a list without the projection costs: every <c>u:</c> row of the tenant read with the SDK, then the route's
    /// own work in memory - the same search text and filter evaluation (the app's types), the same order (creation
    /// order, by id) and the first page.
    /// </summary>
    private static async Task<(string[] Ids, double Milliseconds)> ScanAsync(TableClient table, string tenant, string? search, FilterExpression? where)
    {
        var started = Stopwatch.GetTimestamp();
        var matching = new List<UserListItem>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {tenant} and RowKey ge {UserEntity.KeyPrefix} and RowKey lt {"u;"}");
        await foreach (var user in table.QueryAsync<UserEntity>(filter, maxPerPage: 1000))
        {
            if (user.Status is UserStatus.Purged or UserStatus.Deleted)
            {
                continue;
            }

            var item = UserListItem.From(user);
            if ((search is null || item.SearchText.Contains(search, StringComparison.Ordinal)) && (where is null || where.Evaluate(item.ValueOf)))
            {
                matching.Add(item);
            }
        }

        matching.Sort((a, b) => string.CompareOrdinal(a.View.Id, b.View.Id));
        var page = matching.Take(PageSize).Select(u => u.View.Id).ToArray();
        return (page, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    private static void Print(int users, int preloaded, BulkFigures bulk, double coldMs, List<double> appSearch, List<double> scanSearch,
        List<double> appFilter, List<double> scanFilter, List<double> idle, long residentBefore, long residentAfter)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        var created = preloaded > 0 ? $"bulk create, users {preloaded + 1:N0}-{users:N0} of one tenant" : $"bulk create, {users:N0} users in one tenant";
        Console.WriteLine(string.Create(inv, $"{created,-58} {"users",8} {"users/s",9} {"call p50",10} {"call p99",10}"));
        foreach (var callers in new[] { 1, Callers })
        {
            if (bulk.Get(true, callers) is not { } baseline || bulk.Get(false, callers) is not { } app)
            {
                continue;
            }

            Row($"baseline: SDK, 50+50-row transactions, {(callers == 1 ? "1 writer" : $"{callers} writers")}", baseline);
            Row($"POST /api/v1/users/bulk (1000 a call), {(callers == 1 ? "1 caller" : $"{callers} callers at once")}", app);
            Console.WriteLine(string.Create(inv, $"  {"app / baseline",-56} {"",8} {app.PerSecond / baseline.PerSecond,8:0.00}x"));
        }

        var (baselineFirst, baselineLast) = bulk.FirstAndLast(baseline: true);
        var (appFirst, appLast) = bulk.FirstAndLast(baseline: false);
        Console.WriteLine(string.Create(inv,
            $"  users/s as the tables grow, first block -> last block: baseline {baselineFirst:0} -> {baselineLast:0}, app {appFirst:0} -> {appLast:0}"));

        Console.WriteLine();
        Console.WriteLine(string.Create(inv,
            $"{$"lists, {users:N0} users, page {PageSize}",-38} {"app (projection), warm",-25} | {"baseline (SDK scan)",-25} | scan / app"));
        Console.WriteLine($"{"",-38} {"n",5} {"p50",9} {"p99",9} | {"n",5} {"p50",9} {"p99",9} | {"p50",6} {"p99",7}");
        Compare("GET /api/v1/users?q=", appSearch, scanSearch);
        Compare("GET /api/v1/users?filter= (2 cond.)", appFilter, scanFilter);
        Console.WriteLine(string.Create(inv, $"{"first list, cold (loads projection)",-38} {1,5} {Statistics.Ms(coldMs),9} {"",9} |"));
        Console.WriteLine(string.Create(inv, $"{"?q= after 2.5 s idle (reads change log)",-38} {idle.Count,5} {Statistics.Ms(Statistics.Percentile(idle, 50)),9} {Statistics.Ms(Statistics.Percentile(idle, 99)),9} |"));
        Console.WriteLine(string.Create(inv,
            $"app resident memory: {residentBefore / 1048576.0:0} MiB before the first list, {residentAfter / 1048576.0:0} MiB right after it (projection loaded)"));

        var searchRatio = Statistics.Percentile(scanSearch, 99) / Statistics.Percentile(appSearch, 99);
        var filterRatio = Statistics.Percentile(scanFilter, 99) / Statistics.Percentile(appFilter, 99);
        Console.WriteLine();
        Console.WriteLine(string.Create(inv,
            $"Goal: search p99 at least 10x faster than the scan - q: {searchRatio:0.#}x ({(searchRatio >= 10 ? "met" : "NOT met")}), "
            + $"filter: {filterRatio:0.#}x ({(filterRatio >= 10 ? "met" : "NOT met")})"));

        void Row(string name, Pass pass) => Console.WriteLine(string.Create(inv,
            $"{name,-58} {pass.Users,8} {pass.PerSecond,9:0} {Statistics.Ms(Statistics.Percentile(pass.Latencies, 50)),10} {Statistics.Ms(Statistics.Percentile(pass.Latencies, 99)),10}"));

        void Compare(string name, List<double> app, List<double> scan) => Console.WriteLine(string.Create(inv,
            $"{name,-38} {app.Count,5} {Statistics.Ms(Statistics.Percentile(app, 50)),9} {Statistics.Ms(Statistics.Percentile(app, 99)),9} | {scan.Count,5} {Statistics.Ms(Statistics.Percentile(scan, 50)),9} {Statistics.Ms(Statistics.Percentile(scan, 99)),9} | "
            + $"{Statistics.Percentile(scan, 50) / Statistics.Percentile(app, 50),5:0}x {Statistics.Percentile(scan, 99) / Statistics.Percentile(app, 99),6:0}x"));
    }



    private static string Truncate(string text) => text.Length <= 2000 ? text : text[..2000] + " ...";

    /// <summary>The tenant's admin: signs up once, then signs in whenever the last token is about to expire.</summary>
    private sealed record Page(string[] Ids, string[] Emails, string[] DisplayNames, string[] Statuses, bool More, double Milliseconds);

    private sealed record Pass(double[] Latencies, int Users, TimeSpan Wall)
    {
        public double PerSecond => Users / Wall.TotalSeconds;
    }

    /// <summary>Blocks of one side and one concurrency, summed: users over the blocks' wall time, and every call's latency.</summary>
    private sealed class BulkFigures
    {
        private readonly Dictionary<(bool Baseline, int Callers), List<Pass>> _passes = [];
        private readonly List<(bool Baseline, Pass Pass)> _order = [];

        public void Add(bool baseline, int callers, Pass pass)
        {
            if (!_passes.TryGetValue((baseline, callers), out var list))
            {
                _passes[(baseline, callers)] = list = [];
            }

            list.Add(pass);
            _order.Add((baseline, pass));
        }

        /// <summary>users/s of the side's first and last block (1 caller or not): how the rate moves as the tables grow.</summary>
        public (double First, double Last) FirstAndLast(bool baseline)
        {
            var blocks = _order.Where(b => b.Baseline == baseline).Select(b => b.Pass).ToList();
            return (blocks[0].PerSecond, blocks[^1].PerSecond);
        }

        public Pass? Get(bool baseline, int callers) =>
            _passes.TryGetValue((baseline, callers), out var list)
                ? new Pass([.. list.SelectMany(p => p.Latencies)], list.Sum(p => p.Users), TimeSpan.FromTicks(list.Sum(p => p.Wall.Ticks)))
                : null;
    }
}
