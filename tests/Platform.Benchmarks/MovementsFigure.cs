using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Inventory;
using Platform.Functions.Query;
using Platform.Functions.Storage;

namespace Platform.Benchmarks;

/// <summary>
/// <c>movements &lt;appExecutable&gt; [items=100000] [movements=1000000] [perPass=2000]</c>: the Inventory figures, each
/// next to the Azure.Data.Tables SDK doing the same storage work in the same run.
/// (1) Movements per second with <see cref="Clients"/> concurrent clients, on one hot item and spread over
/// <see cref="SpreadItems"/> items: <c>POST /api/v1/inventory/items/{id}/movements</c> next to the SDK doing what a
/// movement must do in storage - read the item and its stock row, then one entity-group transaction conditioned on their
/// ETags (item, stock, the two movement rows), retried on a lost race.
/// (2) <c>GET /api/v1/inventory/analytics</c> (by category and by location) for a tenant of <c>items</c> items holding
/// <c>movements</c> movements, next to an SDK scan of the tenant's item and stock rows aggregated in memory - what
/// analytics cost without the projection.
/// </summary>
/// <remarks>
/// The analytics tenant's rows are written straight into the app's table, shaped as the app writes them (items, SKU
/// index, stock, locations, both rows of every movement; quantities agree with the movements), because creating a
/// million movements through the API is not what this figure measures. They go in with the SDK, or, when
/// <see cref="TablePreload.Variable"/> names an <c>infra/bench/preloadable-table.js</c> service (movements.sh does),
/// straight into that Azurite's store, since its REST insert slows with the partition's size. The app has never read
/// that tenant before, so its first request loads the projection: reported apart as cold.
/// </remarks>
internal static class MovementsFigure
{
    private const int Clients = 16;
    private const int SpreadItems = 1000;
    private const int DefaultItems = 100_000;
    private const int DefaultMovements = 1_000_000;
    private const int DefaultPerPass = 2000;
    private const int Locations = 20;
    private const int AnalyticsRequests = 50;
    private const int WarmUpRequests = 5;
    private const int IdleRequests = 5;
    private const int BaselineScans = 5;
    private const int SeedWriters = 4;
    private const int MaxAttempts = 100;
    private static readonly string[] Categories = ["Tools", "Fasteners", "Paint", "Electrical", "Plumbing", "Garden", "Safety", "Lumber", "Adhesives", "Lighting", "Hardware", "Storage"];
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan IdlePause = ListProjection<ItemEntity, ItemListItem>.RefreshEvery + TimeSpan.FromMilliseconds(500);

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 1 or > 4)
        {
            await Console.Error.WriteLineAsync("usage: movements <appExecutable> [items=100000] [movements=1000000] [perPass=2000]");
            return 2;
        }

        static bool Parse(string[] args, int index, int fallback, int min, out int value)
        {
            value = fallback;
            return args.Length <= index || (int.TryParse(args[index], NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= 99_999_999);
        }

        if (!Parse(args, 1, DefaultItems, 1, out var items) || !Parse(args, 2, DefaultMovements, 0, out var movements) || !Parse(args, 3, DefaultPerPass, 1, out var perPass))
        {
            await Console.Error.WriteLineAsync("items must be 1 or more, movements 0 or more, perPass 1 or more (whole numbers up to 99999999)");
            return 2;
        }

        var executable = Path.GetFullPath(args[0]);
        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (!File.Exists(executable) || string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync($"movements: need the app executable ({executable}) and AzureWebJobsStorage (infra/bench/movements.sh sets both)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (prefix, environment) = ScaleFigureApp.Environment(storage, signingKey);

        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan, MaxConnectionsPerServer = Clients * 2 })
        {
            Timeout = TimeSpan.FromMinutes(30),
        };
        var tables = new TableServiceClient(storage);
        var inventory = tables.GetTableClient(prefix + InventoryStore.TableName);
        var scratch = tables.GetTableClient(prefix + "scratch");
        var preload = TablePreload.FromEnvironment(client);

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"movements: {Clients} clients, {perPass:N0} movements a pass ('in' of 1, no location), on 1 hot item and spread over {SpreadItems:N0} items; "
            + $"baseline: the same reads and ETag-conditioned transaction with the SDK on a scratch table. Analytics: {items:N0} items, {movements:N0} "
            + $"movements, {Locations} locations in one tenant ({(preload is null ? "written with the SDK" : "preloaded into Azurite's store, checked against the SDK's writes")}); {AnalyticsRequests} requests per groupBy (after {WarmUpRequests}); baseline: SDK scan of "
            + $"item + stock rows aggregated in memory, {BaselineScans} each; {Environment.ProcessorCount} cores"));
        Console.WriteLine($"  app       {executable}");
        Console.WriteLine($"  prefix    {prefix}");

        using var server = ServerProcess.Start(executable, environment);
        try
        {
            await server.WaitForOkAsync(client, "/api/health/live", StartTimeout);
            await server.WaitForOkAsync(client, "/api/health/ready", StartTimeout);

            // (1) Throughput. Items through the API for the app, the same rows with the SDK for the baseline.
            var admin = await BenchAdmin.SignUpAsync(client, server);
            var appItems = await CreateItemsAsync(client, server, admin, SpreadItems + 1);
            await scratch.CreateIfNotExistsAsync();
            var baseItems = await SeedScratchItemsAsync(scratch, SpreadItems + 1);
            await Console.Error.WriteLineAsync("movements: items created; throughput passes next");

            var random = new Random(7);
            string[] Targets(string[] ids, bool hot) => [.. Enumerable.Range(0, perPass).Select(_ => hot ? ids[0] : ids[1 + random.Next(SpreadItems)])];
            var passes = new List<(string Name, MovementPass Pass)>();
            foreach (var hot in new[] { true, false })
            {
                var where = hot ? "1 hot item" : $"{SpreadItems:N0} items";
                passes.Add(($"baseline: SDK, {where}", await RunPassAsync(Targets(baseItems, hot), id => MoveDirectAsync(scratch, id))));
                passes.Add(($"POST .../movements, {where}", await RunPassAsync(Targets(appItems, hot), id => MoveAsync(client, server, admin, id))));
                await Console.Error.WriteLineAsync($"movements: {where} done");
            }

            await scratch.DeleteAsync();
            await ExpectQuantityAsync(client, server, admin, appItems[0], passes[1].Pass.Succeeded);

            // (2) Analytics on a tenant of its own, seeded with the SDK or preloaded (infra/bench/movements.sh preloads).
            var owner = await BenchAdmin.SignUpAsync(client, server);
            var seeding = Stopwatch.StartNew();
            var expectedTotal = await SeedAnalyticsTenantAsync(inventory, preload, owner.TenantId, items, movements);
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"movements: seeded {items:N0} items and {movements:N0} movements in {seeding.Elapsed.TotalSeconds:0} s"));

            var figures = new List<(string Name, List<double> Ms)>();
            var cold = await AnalyticsAsync(client, server, owner, "category", expectedTotal);
            foreach (var groupBy in new[] { "category", "location" })
            {
                for (var i = 0; i < WarmUpRequests; i++)
                {
                    await AnalyticsAsync(client, server, owner, groupBy, expectedTotal);
                }

                var warm = new List<double>(AnalyticsRequests);
                for (var i = 0; i < AnalyticsRequests; i++)
                {
                    warm.Add(await AnalyticsAsync(client, server, owner, groupBy, expectedTotal));
                }

                figures.Add(($"GET /analytics?groupBy={groupBy}, warm", warm));
            }

            var idle = new List<double>(IdleRequests);
            for (var i = 0; i < IdleRequests; i++)
            {
                await Task.Delay(IdlePause);
                idle.Add(await AnalyticsAsync(client, server, owner, "category", expectedTotal));
            }

            figures.Add(("GET /analytics after 2.5 s idle (reads change log)", idle));
            await Console.Error.WriteLineAsync("movements: app analytics done; baseline scans next");

            foreach (var byLocation in new[] { false, true })
            {
                await ScanAnalyticsAsync(inventory, owner.TenantId, byLocation, expectedTotal);
                var scans = new List<double>(BaselineScans);
                for (var i = 0; i < BaselineScans; i++)
                {
                    scans.Add(await ScanAnalyticsAsync(inventory, owner.TenantId, byLocation, expectedTotal));
                }

                figures.Add(($"baseline: SDK scan, by {(byLocation ? "location" : "category")}", scans));
            }

            Print(passes, items, movements, cold, figures);
            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or TaskCanceledException
            or RequestFailedException or JsonException)
        {
            await Console.Error.WriteLineAsync($"movements: {e.Message}{Environment.NewLine}app output (tail):{Environment.NewLine}{server.OutputTail()}");
            return 1;
        }
        finally
        {
            await server.StopAsync(StopGrace);
            try
            {
                await scratch.DeleteAsync();
            }
            catch (RequestFailedException)
            {
                // Already gone.
            }
        }
    }

    private sealed record MovementPass(double[] Latencies, int Succeeded, int Refused, TimeSpan Wall)
    {
        public double PerSecond => Succeeded / Wall.TotalSeconds;
    }

    /// <summary><see cref="Clients"/> clients take the next target as soon as their last movement is answered.</summary>
    private static async Task<MovementPass> RunPassAsync(string[] targets, Func<string, Task<(double Ms, bool Ok)>> move)
    {
        var latencies = new double[targets.Length];
        var succeeded = 0;
        var next = -1;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < targets.Length)
            {
                var (ms, ok) = await move(targets[i]);
                latencies[i] = ms;
                if (ok)
                {
                    Interlocked.Increment(ref succeeded);
                }
            }
        }));
        return new MovementPass(latencies, succeeded, targets.Length - succeeded, wall.Elapsed);
    }

    private static async Task<(double Ms, bool Ok)> MoveAsync(HttpClient client, ServerProcess server, BenchAdmin admin, string itemId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress, $"{ItemsEndpoints.Path}/{itemId}/movements"))
        {
            Content = JsonContent.Create(new { type = "in", quantity = 1, reason = "benchmark" }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await admin.TokenAsync(client, server));
        var started = Stopwatch.GetTimestamp();
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return (int)response.StatusCode switch
        {
            201 => (ms, true),
            409 => (ms, false),
            var status => throw new InvalidOperationException($"POST movements answered {status}: {body}"),
        };
    }

    /// <summary>What a movement must do in storage, with the SDK alone: two reads, one conditioned transaction, retried on a lost race.</summary>
    private static async Task<(double Ms, bool Ok)> MoveDirectAsync(TableClient table, string itemId)
    {
        var started = Stopwatch.GetTimestamp();
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var item = (await table.GetEntityAsync<ItemEntity>("scratch", ItemEntity.KeyFor(itemId))).Value;
            var stockRead = await table.GetEntityIfExistsAsync<StockEntity>("scratch", StockEntity.KeyFor(itemId, null));
            var stock = stockRead.HasValue ? stockRead.Value! : new StockEntity { PartitionKey = "scratch", RowKey = StockEntity.KeyFor(itemId, null), ItemId = itemId };
            var now = DateTimeOffset.UtcNow;
            stock.Quantity += 1;
            stock.UpdatedAt = now;
            item.Quantity += 1;
            item.UpdatedAt = now;
            var id = Ids.New();
            var movement = new MovementEntity
            {
                PartitionKey = "scratch", RowKey = MovementEntity.ItemPrefixFor(itemId) + id, Id = id, ItemId = itemId, Type = MovementType.In,
                Quantity = 1, Delta = 1, QuantityAfter = item.Quantity, Reason = "benchmark", At = now,
            };
            try
            {
                await table.SubmitTransactionAsync(
                [
                    new(TableTransactionActionType.UpdateReplace, item, item.ETag),
                    new(TableTransactionActionType.Add, movement),
                    new(TableTransactionActionType.Add, movement.CopyAs(MovementEntity.TenantPrefix + id)),
                    stockRead.HasValue ? new(TableTransactionActionType.UpdateReplace, stock, stock.ETag) : new(TableTransactionActionType.Add, stock),
                ]);
                return (Stopwatch.GetElapsedTime(started).TotalMilliseconds, true);
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412)
            {
                await Task.Delay(Random.Shared.Next(1, 5 + Math.Min(attempt, 20) * 5));
            }
        }

        return (Stopwatch.GetElapsedTime(started).TotalMilliseconds, false);
    }

    private static async Task<string[]> CreateItemsAsync(HttpClient client, ServerProcess server, BenchAdmin admin, int count)
    {
        var ids = new string[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (n, ct) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress, ItemsEndpoints.Path))
            {
                Content = JsonContent.Create(new { sku = $"SKU-{n:D6}", name = $"Item {n}", category = Categories[n % Categories.Length], unitCost = 2.5 }),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await admin.TokenAsync(client, server));
            using var response = await client.SendAsync(request, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            if ((int)response.StatusCode != 201)
            {
                throw new InvalidOperationException($"POST items answered {(int)response.StatusCode}: {body}");
            }

            using var json = JsonDocument.Parse(body);
            ids[n] = json.RootElement.GetProperty("id").GetString()!;
        });
        return ids;
    }

    private static async Task<string[]> SeedScratchItemsAsync(TableClient scratch, int count)
    {
        var now = DateTimeOffset.UtcNow;
        var items = Enumerable.Range(0, count).Select(n => new ItemEntity
        {
            PartitionKey = "scratch", RowKey = ItemEntity.KeyFor(Ids.New()), Sku = $"SKU-{n:D6}", Name = $"Item {n}",
            Category = Categories[n % Categories.Length], UnitCost = 2.5, CreatedAt = now, UpdatedAt = now,
        }).ToList();
        foreach (var chunk in items.Chunk(100))
        {
            await scratch.SubmitTransactionAsync(chunk.Select(i => new TableTransactionAction(TableTransactionActionType.Add, i)));
        }

        return [.. items.Select(i => i.Id)];
    }

    private static async Task ExpectQuantityAsync(HttpClient client, ServerProcess server, BenchAdmin admin, string itemId, int expected)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress, $"{ItemsEndpoints.Path}/{itemId}"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await admin.TokenAsync(client, server));
        using var response = await client.SendAsync(request);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var quantity = json.RootElement.GetProperty("quantity").GetDouble();
        if (quantity != expected)
        {
            throw new InvalidOperationException($"the hot item holds {quantity} after {expected} accepted movements: an update was lost");
        }
    }

    /// <summary>
    /// Writes the tenant's rows as the app would have (<see cref="AnalyticsRows"/>): with the SDK, or through
    /// <paramref name="preload"/> after proving on sample rows that preloaded rows read back as the SDK's own.
    /// Returns the total value they hold.
    /// </summary>
    private static async Task<double> SeedAnalyticsTenantAsync(TableClient table, TablePreload? preload, string tenant, int items, int movements)
    {
        var now = DateTimeOffset.UtcNow;
        var locations = Enumerable.Range(0, Locations).Select(n => new LocationEntity
        {
            PartitionKey = tenant, RowKey = LocationEntity.KeyFor(Ids.New()), Name = $"Aisle {n + 1}", Code = $"A{n + 1:D2}", CreatedAt = now, UpdatedAt = now,
        }).ToList();
        var locationIds = locations.Select(l => l.Id).ToArray();
        var rows = locations.Concat(AnalyticsRows(tenant, items, movements, locationIds, now));
        void Progress(long written) => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"movements: seeded {written:N0} rows"));
        if (preload is null)
        {
            await WriteWithSdkAsync(table, rows, Progress);
        }
        else
        {
            var sampleLocation = new LocationEntity
            {
                RowKey = LocationEntity.KeyFor(Ids.New()), Name = "Check", Code = "C1", ParentId = locationIds[0], Description = "sample", CreatedAt = now, UpdatedAt = now,
            };
            await preload.VerifyAsync(table, [sampleLocation, .. AnalyticsRows("check", 2, 3, locationIds, now)]);
            await preload.LoadAsync(table.Name, rows, Progress);
        }

        var total = 0.0;
        for (var n = 0; n < items; n++)
        {
            total += MovementsOf(n, items, movements) * UnitCostOf(n);
        }

        return Math.Round(total, 2);
    }

    private static int MovementsOf(int item, int items, int movements) => (movements / items) + (item < movements % items ? 1 : 0);

    private static int UnitCostOf(int item) => 1 + (item % 50);

    /// <summary>
    /// Per item its row, SKU row and one stock row, and both rows of each of its movements ('in' of 1 into its
    /// location, so quantities agree).
    /// </summary>
    private static IEnumerable<ITableEntity> AnalyticsRows(string tenant, int items, int movements, string[] locations, DateTimeOffset now)
    {
        for (var n = 0; n < items; n++)
        {
            var id = Ids.New();
            var location = locations[n % locations.Length];
            var count = MovementsOf(n, items, movements);
            var created = now.AddDays(-(n % 200));
            yield return new ItemEntity
            {
                PartitionKey = tenant, RowKey = ItemEntity.KeyFor(id), Sku = $"SKU-{n:D7}", Name = $"Item {n}", Category = Categories[n % Categories.Length],
                LocationId = location, Quantity = count, UnitCost = UnitCostOf(n), CreatedAt = created, UpdatedAt = now,
            };
            yield return new SkuIndexEntity { PartitionKey = tenant, RowKey = SkuIndexEntity.KeyFor($"SKU-{n:D7}"), ItemId = id };
            yield return new StockEntity { PartitionKey = tenant, RowKey = StockEntity.KeyFor(id, location), ItemId = id, LocationId = location, Quantity = count, UpdatedAt = now };
            for (var m = 0; m < count; m++)
            {
                var movementId = Ids.New();
                var movement = new MovementEntity
                {
                    PartitionKey = tenant, RowKey = MovementEntity.ItemPrefixFor(id) + movementId, Id = movementId, ItemId = id, Type = MovementType.In,
                    Quantity = 1, Delta = 1, QuantityAfter = m + 1, ToLocationId = location, Reason = "seed", At = created,
                };
                yield return movement;
                yield return movement.CopyAs(MovementEntity.TenantPrefix + movementId);
            }
        }
    }

    /// <summary><see cref="SeedWriters"/> writers, 100 rows an entity-group transaction (all rows share the tenant's partition).</summary>
    private static async Task WriteWithSdkAsync(TableClient table, IEnumerable<ITableEntity> source, Action<long> progress)
    {
        using var rows = new BlockingCollection<ITableEntity>(boundedCapacity: 20_000);
        var written = 0L;
        var writers = Enumerable.Range(0, SeedWriters).Select(_ => Task.Run(async () =>
        {
            var batch = new List<ITableEntity>(100);
            foreach (var row in rows.GetConsumingEnumerable())
            {
                batch.Add(row);
                if (batch.Count == 100)
                {
                    await table.SubmitTransactionAsync(batch.Select(r => new TableTransactionAction(TableTransactionActionType.Add, r)));
                    if (Interlocked.Add(ref written, batch.Count) % 100_000 < 100)
                    {
                        progress(Interlocked.Read(ref written));
                    }

                    batch.Clear();
                }
            }

            if (batch.Count > 0)
            {
                await table.SubmitTransactionAsync(batch.Select(r => new TableTransactionAction(TableTransactionActionType.Add, r)));
            }
        })).ToList();

        try
        {
            foreach (var row in source)
            {
                rows.Add(row);
            }
        }
        finally
        {
            rows.CompleteAdding();
        }

        await Task.WhenAll(writers);
    }

    private static async Task<double> AnalyticsAsync(HttpClient client, ServerProcess server, BenchAdmin owner, string groupBy, double expectedTotal)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress, $"{AnalyticsEndpoints.Path}?groupBy={groupBy}"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await owner.TokenAsync(client, server));
        var started = Stopwatch.GetTimestamp();
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"GET analytics answered {(int)response.StatusCode}: {body}");
        }

        using var json = JsonDocument.Parse(body);
        var total = json.RootElement.GetProperty("totalValue").GetDouble();
        if (Math.Abs(total - expectedTotal) > 0.01)
        {
            throw new InvalidOperationException($"GET analytics gave a total value of {total}; the seeded rows hold {expectedTotal}");
        }

        return ms;
    }

    /// <summary>Analytics without a projection: every item row (and, by location, every stock row) of the tenant, aggregated in memory.</summary>
    private static async Task<double> ScanAnalyticsAsync(TableClient table, string tenant, bool byLocation, double expectedTotal)
    {
        var started = Stopwatch.GetTimestamp();
        var items = new Dictionary<string, ItemEntity>(StringComparer.Ordinal);
        await foreach (var item in table.QueryAsync<ItemEntity>(
            TableClient.CreateQueryFilter($"PartitionKey eq {tenant} and RowKey ge {ItemEntity.KeyPrefix} and RowKey lt {"i;"}"), maxPerPage: 1000))
        {
            if (item.Status == ItemStatus.Active)
            {
                items[item.Id] = item;
            }
        }

        var groups = new Dictionary<string, double>(StringComparer.Ordinal);
        if (byLocation)
        {
            await foreach (var stock in table.QueryAsync<StockEntity>(
                TableClient.CreateQueryFilter($"PartitionKey eq {tenant} and RowKey ge {StockEntity.KeyPrefix} and RowKey lt {"s;"}"), maxPerPage: 1000))
            {
                if (stock.Quantity > 0 && items.TryGetValue(stock.ItemId, out var item))
                {
                    groups[stock.LocationId] = groups.GetValueOrDefault(stock.LocationId) + Math.Round(stock.Quantity * (item.UnitCost ?? 0), 2);
                }
            }
        }
        else
        {
            foreach (var item in items.Values)
            {
                groups[item.Category ?? ""] = groups.GetValueOrDefault(item.Category ?? "") + Math.Round(item.Quantity * (item.UnitCost ?? 0), 2);
            }
        }

        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (Math.Abs(Math.Round(groups.Values.Sum(), 2) - expectedTotal) > 0.01)
        {
            throw new InvalidOperationException($"the SDK scan found a total value of {groups.Values.Sum()}; the seeded rows hold {expectedTotal}");
        }

        return ms;
    }

    private static void Print(List<(string Name, MovementPass Pass)> passes, int items, int movements, double cold, List<(string Name, List<double> Ms)> figures)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine(string.Create(inv, $"{"movements, " + Clients + " clients",-44} {"done",6} {"409",5} {"per s",8} {"p50",9} {"p99",9}"));
        foreach (var (name, pass) in passes)
        {
            Console.WriteLine(string.Create(inv,
                $"{name,-44} {pass.Succeeded,6} {pass.Refused,5} {pass.PerSecond,8:0.0} {Statistics.Ms(Statistics.Percentile(pass.Latencies, 50)),9} {Statistics.Ms(Statistics.Percentile(pass.Latencies, 99)),9}"));
        }

        for (var i = 0; i + 1 < passes.Count; i += 2)
        {
            Console.WriteLine(string.Create(inv, $"  {passes[i + 1].Name}: {passes[i + 1].Pass.PerSecond / passes[i].Pass.PerSecond:0.00}x the baseline's movements/s"));
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(inv, $"analytics, {items:N0} items, {movements:N0} movements        {"n",5} {"p50",9} {"p99",9}"));
        Console.WriteLine(string.Create(inv, $"{"GET /analytics, first (cold: loads projection)",-52} {1,5} {Statistics.Ms(cold),9}"));
        foreach (var (name, ms) in figures)
        {
            Console.WriteLine(string.Create(inv, $"{name,-52} {ms.Count,5} {Statistics.Ms(Statistics.Percentile(ms, 50)),9} {Statistics.Ms(Statistics.Percentile(ms, 99)),9}"));
        }

        var app = figures[0].Ms;
        var scan = figures.First(f => f.Name.Contains("category", StringComparison.Ordinal) && f.Name.StartsWith("baseline", StringComparison.Ordinal)).Ms;
        Console.WriteLine(string.Create(inv, $"  by category: scan / app = {Statistics.Percentile(scan, 50) / Statistics.Percentile(app, 50):0}x at p50, {Statistics.Percentile(scan, 99) / Statistics.Percentile(app, 99):0}x at p99"));
    }


}
