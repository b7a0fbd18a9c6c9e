using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Platform.Functions.Hosting;
using Platform.Functions.Inventory;
using Platform.Functions.Query;
using Platform.Functions.Reports;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Benchmarks;

/// <summary>
/// <c>reports [users=100000] [items=100000] [movements=100000] [runs=3]</c>: the time to build the <c>user-insights</c>
/// report over a tenant of <c>users</c> users and the <c>inventory-status</c> report over a tenant of <c>items</c> items
/// and <c>movements</c> movements (spread over the last 90 days), each next to the Azure.Data.Tables SDK reading the same
/// rows without computing anything, in the same run. Goal: under 30 s each (issue 19).
/// </summary>
/// <remarks>
/// <para>
/// The report types are built in this process from the app's own composition (hosting, storage, users, inventory, as
/// <c>Program.cs</c> adds them) by the keyed <see cref="IReportType"/> the report job resolves; the job's own overhead
/// (durable orchestration, rendering, upload) is the pipeline's figure, not this one. Each round builds each report
/// <b>cold</b> - a fresh composition, so the per-instance projections load with one scan, as on an instance that never
/// served the tenant - and then <b>warm</b> - the same composition again, projections held (the inventory report still
/// reads the period's movements). The inventory report is built cold twice: by the first instance ever to hold the
/// tenant (its snapshots deleted first, so it scans and saves them) and by a fresh one after it, which loads the items
/// and stock snapshots and the change log after them instead of scanning (<see cref="ProjectionSnapshots"/>). The baseline reads the same key ranges with the SDK into the same entity types:
/// users: the tenant's <c>u:</c> rows; inventory: its <c>i:</c>, <c>s:</c> and <c>l:</c> rows and the <c>n:</c> range of
/// the movements the report reads (the 90 days before now).
/// </para>
/// <para>
/// The rows are written straight into the tables, shaped as the app writes them (users with a sign-in history and
/// custom fields; items with their SKU index and a stock row; both rows of each movement), with the SDK, or, when
/// <see cref="TablePreload.Variable"/> names an <c>infra/bench/preloadable-table.js</c> service (reports.sh does), into
/// that Azurite's store, checked against the SDK's writes first. Movement quantities do not add up to the items'
/// quantities: the report reads both and never reconciles them.
/// </para>
/// </remarks>
internal static class ReportsFigure
{
    private const int DefaultUsers = 100_000;
    private const int DefaultItems = 100_000;
    private const int DefaultMovements = 100_000;
    private const int DefaultRuns = 3;
    private const int Locations = 20;
    private const int SeedWriters = 4;
    private const int PeriodDays = 30;
    private static readonly string[] Departments = ["Sales", "Support", "Engineering", "Finance", "Operations"];
    private static readonly string[] Plans = ["free", "pro", "team"];
    private static readonly string[] Categories = ["Tools", "Fasteners", "Paint", "Electrical", "Plumbing", "Garden", "Safety", "Lumber", "Adhesives", "Lighting", "Hardware", "Storage"];

    public static async Task<int> RunAsync(string[] args)
    {
        static bool Parse(string[] args, int index, int fallback, int min, out int value)
        {
            value = fallback;
            return args.Length <= index || (int.TryParse(args[index], NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= 10_000_000);
        }

        if (args.Length > 4 || !Parse(args, 0, DefaultUsers, 1, out var users) || !Parse(args, 1, DefaultItems, 1, out var items)
            || !Parse(args, 2, DefaultMovements, 0, out var movements) || !Parse(args, 3, DefaultRuns, 1, out var runs))
        {
            await Console.Error.WriteLineAsync("usage: reports [users=100000] [items=100000] [movements=100000] [runs=3] (whole numbers; users, items, runs at least 1)");
            return 2;
        }

        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync("reports: set AzureWebJobsStorage (infra/bench/reports.sh starts an Azurite and sets it)");
            return 2;
        }

        var prefix = "reports" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
        var preload = TablePreload.FromEnvironment(http);
        var tables = new TableServiceClient(storage);
        var usersTable = tables.GetTableClient(prefix + UserDirectory.TableName);
        var inventoryTable = tables.GetTableClient(prefix + InventoryStore.TableName);
        await usersTable.CreateIfNotExistsAsync();
        await inventoryTable.CreateIfNotExistsAsync();

        var now = DateTimeOffset.UtcNow;
        var userTenant = Ids.New();
        var itemTenant = Ids.New();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"reports: user-insights over {users:N0} users, inventory-status over {items:N0} items ({Locations} locations) and {movements:N0} movements in the last 90 days; "
            + $"period: the last {PeriodDays} days; {runs} rounds of cold (fresh composition: projections load) and warm builds; baseline: SDK reads of the same "
            + $"rows into the same entity types, no computing; rows {(preload is null ? "written with the SDK" : "preloaded into Azurite's store, checked against the SDK's writes")}; "
            + $"{Environment.ProcessorCount} cores"));

        try
        {
            var seeding = Stopwatch.StartNew();
            await SeedUsersAsync(usersTable, preload, userTenant, users, now);
            await SeedInventoryAsync(inventoryTable, preload, itemTenant, items, movements, now);
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"reports: seeded in {seeding.Elapsed.TotalSeconds:0} s"));

            var from = now.AddDays(-PeriodDays);
            var to = now.AddMinutes(1);
            var timings = new Dictionary<string, List<double>>(StringComparer.Ordinal);
            void Add(string name, double ms) => (timings.TryGetValue(name, out var list) ? list : timings[name] = []).Add(ms);
            ReportDocument? lastUsers = null, lastInventory = null;
            for (var round = 1; round <= runs; round++)
            {
                Add("users: baseline, SDK read of u: rows", await TimeAsync(() => ReadAsync<UserEntity>(usersTable, userTenant, UserEntity.KeyPrefix, users)));
                await using (var app = BuildApp(storage, prefix))
                {
                    var request = new ReportRequest(new TenantId(userTenant), from, to, null);
                    Add("user-insights, cold", await TimeAsync(async () => lastUsers = await BuildAsync(app, "user-insights", request)));
                    Add("user-insights, warm", await TimeAsync(async () => lastUsers = await BuildAsync(app, "user-insights", request)));
                }

                Add("inventory: baseline, SDK read of i: s: l: rows + 90 days of n:", await TimeAsync(() => ReadInventoryAsync(inventoryTable, itemTenant, items, now)));
                var inventoryRequest = new ReportRequest(new TenantId(itemTenant), from, to, null);
                await using (var app = BuildApp(storage, prefix))
                {
                    // The first instance ever to hold the tenant: no snapshot yet, so it scans, and saves them meanwhile.
                    await DeleteSnapshotsAsync(app, itemTenant);
                    Add("inventory-status, cold, no snapshot yet (scans)", await TimeAsync(async () => lastInventory = await BuildAsync(app, "inventory-status", inventoryRequest)));
                    await SnapshotsSavedAsync(app);
                    Add("inventory-status, warm", await TimeAsync(async () => lastInventory = await BuildAsync(app, "inventory-status", inventoryRequest)));
                }

                await using (var app = BuildApp(storage, prefix))
                {
                    Add("inventory-status, cold, from the snapshots", await TimeAsync(async () => lastInventory = await BuildAsync(app, "inventory-status", inventoryRequest)));
                    var held = app.Services.GetRequiredService<InventoryProjections>();
                    if (held.Items.SnapshotLoads != 1 || held.Stock.SnapshotLoads != 1 || held.Items.Loads + held.Stock.Loads != 0)
                    {
                        throw new InvalidOperationException("the cold instance scanned instead of loading the snapshots");
                    }
                }

                await Console.Error.WriteLineAsync($"reports: round {round} of {runs} done");
            }

            // The reports must have seen every row, or the figure means nothing.
            var expectedUsers = Enumerable.Range(0, users).Count(i => i % 50 is not (1 or 2));
            if (lastUsers!.Figures["userCount"] != expectedUsers || lastInventory!.Figures["itemCount"] != items)
            {
                throw new InvalidOperationException(
                    $"the reports missed rows: userCount {lastUsers.Figures["userCount"]} of {expectedUsers}, itemCount {lastInventory!.Figures["itemCount"]} of {items}");
            }

            Print(timings, lastUsers, lastInventory);
            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or RequestFailedException or HttpRequestException or TaskCanceledException or JsonException)
        {
            await Console.Error.WriteLineAsync($"reports: {e.Message}");
            return 1;
        }
        finally
        {
            await usersTable.DeleteAsync();
            await inventoryTable.DeleteAsync();
        }
    }

    /// <summary>The app's composition of the capabilities the report types live in, not started (no triggers, no workers).</summary>
    private static WebApplication BuildApp(string storage, string prefix)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = [],
            EnvironmentName = Environments.Production,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = storage,
            ["Platform:Storage:Prefix"] = prefix,
            ["Platform:PublicBaseUrl"] = "http://127.0.0.1:7071",
            ["Platform:Auth:DataEncryptionKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        });
        builder.AddPlatformHosting();
        builder.AddPlatformStorage();
        builder.Services.AddMemoryCache();
        builder.AddUsers();
        builder.AddInventory();
        return builder.Build();
    }

    private static async Task DeleteSnapshotsAsync(WebApplication app, string tenant)
    {
        var snapshots = app.Services.GetRequiredService<ProjectionSnapshots>();
        // The composition is not started, so nothing created the app's containers.
        await app.Services.GetRequiredService<StorageAccount>().Container(ProjectionSnapshots.SnapshotContainer).CreateIfNotExistsAsync();
        foreach (var keyPrefix in new[] { ItemEntity.KeyPrefix, StockEntity.KeyPrefix })
        {
            await snapshots.BlobFor(new TenantId(tenant), InventoryStore.TableName, keyPrefix).DeleteIfExistsAsync();
        }
    }

    /// <summary>Waits (up to 5 minutes) for the scanning instance to have saved the items and stock snapshots.</summary>
    private static async Task SnapshotsSavedAsync(WebApplication app)
    {
        var snapshots = app.Services.GetRequiredService<ProjectionSnapshots>();
        var deadline = Stopwatch.StartNew();
        while (snapshots.Saved < 2)
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(5))
            {
                throw new InvalidOperationException($"the snapshots were not saved in 5 minutes ({snapshots.Saved} of 2)");
            }

            await Task.Delay(100);
        }
    }

    private static async Task<ReportDocument> BuildAsync(WebApplication app, string type, ReportRequest request)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredKeyedService<IReportType>(type).BuildAsync(request, CancellationToken.None);
    }

    private static async Task<double> TimeAsync(Func<Task> work)
    {
        var started = Stopwatch.GetTimestamp();
        await work();
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    private static async Task<long> ReadRangeAsync<T>(TableClient table, string tenant, string from, string to) where T : class, ITableEntity
    {
        long rows = 0;
        await foreach (var _ in table.QueryAsync<T>(TableClient.CreateQueryFilter($"PartitionKey eq {tenant} and RowKey ge {from} and RowKey lt {to}"), maxPerPage: 1000))
        {
            rows++;
        }

        return rows;
    }

    private static async Task ReadAsync<T>(TableClient table, string tenant, string prefix, int expected) where T : class, ITableEntity
    {
        var rows = await ReadRangeAsync<T>(table, tenant, prefix, prefix + char.MaxValue);
        if (rows < expected)
        {
            throw new InvalidOperationException($"the baseline read {rows} {prefix} rows, expected {expected}");
        }
    }

    private static async Task ReadInventoryAsync(TableClient table, string tenant, int items, DateTimeOffset now)
    {
        await ReadAsync<ItemEntity>(table, tenant, ItemEntity.KeyPrefix, items);
        await ReadAsync<StockEntity>(table, tenant, StockEntity.KeyPrefix, items);
        await ReadAsync<LocationEntity>(table, tenant, LocationEntity.KeyPrefix, Locations);
        await ReadRangeAsync<MovementEntity>(table, tenant, MovementEntity.TenantPrefix + Ids.Floor(now.AddDays(-90)), MovementEntity.TenantPrefix + Ids.Floor(DateTimeOffset.UtcNow));
    }

    /// <summary>Users signed up over the last 400 days; 85 % signed in since, each on a sparse random set of days and months up to their last sign-in.</summary>
    internal static async Task SeedUsersAsync(TableClient table, TablePreload? preload, string tenant, int count, DateTimeOffset now)
    {
        var schema = new TableEntity(tenant, "s:users")
        {
            ["Document"] = JsonSerializer.Serialize(new
            {
                fields = new object[]
                {
                    new { name = "dept", type = "enum", values = Departments },
                    new { name = "plan", type = "enum", values = Plans },
                    new { name = "remote", type = "boolean" },
                    new { name = "employeeId", type = "string" },
                },
            }),
        };
        await table.AddEntityAsync(schema);

        IEnumerable<ITableEntity> Rows()
        {
            var random = new Random(7);
            for (var i = 0; i < count; i++)
            {
                var created = now.AddMinutes(-random.Next(400 * 24 * 60));
                var user = new UserEntity
                {
                    PartitionKey = tenant,
                    RowKey = UserEntity.KeyFor(Ids.Derived(created, "user" + i)),
                    Email = $"user{i}@reports.example",
                    DisplayName = $"User {i}",
                    Roles = "[\"user\"]",
                    Status = (i % 50) switch { 0 => UserStatus.Locked, 1 or 2 => UserStatus.Deleted, _ => UserStatus.Active },
                    CreatedAt = created,
                    UpdatedAt = created,
                    Fields = JsonSerializer.Serialize(new { dept = Departments[i % Departments.Length], plan = Plans[i % 7 % Plans.Length], remote = i % 3 == 0, employeeId = $"E{i:D7}" }),
                };
                if (user.Status == UserStatus.Deleted)
                {
                    user.DeletedAt = now;
                }

                if (random.Next(100) < 85)
                {
                    var sinceCreated = (int)(now - created).TotalMinutes;
                    var last = now.AddMinutes(-random.Next(Math.Max(1, Math.Min(sinceCreated, 120 * 24 * 60))));
                    var days = (ulong)random.NextInt64() & (ulong)random.NextInt64() & (ulong)random.NextInt64();
                    var daysKept = (int)Math.Min(63, (last - created).TotalDays);
                    days &= daysKept == 63 ? ulong.MaxValue : (1UL << (daysKept + 1)) - 1;
                    var monthsKept = Math.Min(63, SignInHistory.MonthNumber(last) - SignInHistory.MonthNumber(created));
                    var months = ((ulong)random.NextInt64() | (ulong)random.NextInt64()) & (monthsKept == 63 ? ulong.MaxValue : (1UL << (monthsKept + 1)) - 1);
                    user.LastLoginAt = last;
                    user.LoginDays = unchecked((long)(days | 1));
                    user.LoginMonths = unchecked((long)(months | 1));
                    user.LoginCount = BitOperations.PopCount(days | 1) + random.Next(5);
                }

                yield return user;
                yield return new EmailIndexEntity { PartitionKey = tenant, RowKey = EmailIndexEntity.KeyFor(user.Email), UserId = user.Id };
            }
        }

        await WriteAsync(table, preload, Rows(), "users");
    }

    /// <summary>
    /// Items over 12 categories and 20 locations (one stock row each, with their SKU rows), a third with a reorder point
    /// and a tenth with an expiry; movements over the last 90 days (half out), both rows each.
    /// </summary>
    internal static async Task SeedInventoryAsync(TableClient table, TablePreload? preload, string tenant, int items, int movements, DateTimeOffset now)
    {
        var locationIds = Enumerable.Range(0, Locations).Select(n => Ids.Derived(now, "location" + n)).ToArray();
        var itemIds = Enumerable.Range(0, items).Select(i => Ids.Derived(now.AddDays(-400), "item" + i)).ToArray();

        // New objects on every enumeration: the preload check changes the keys of the sample rows it is given.
        IEnumerable<ITableEntity> Rows()
        {
            for (var n = 0; n < Locations; n++)
            {
                yield return new LocationEntity
                {
                    PartitionKey = tenant, RowKey = LocationEntity.KeyFor(locationIds[n]), Name = $"Aisle {n + 1}", Code = $"A{n + 1:D2}", CreatedAt = now, UpdatedAt = now,
                };
            }

            var random = new Random(11);
            for (var i = 0; i < items; i++)
            {
                var location = locationIds[i % Locations];
                var item = new ItemEntity
                {
                    PartitionKey = tenant,
                    RowKey = ItemEntity.KeyFor(itemIds[i]),
                    Sku = $"SKU-{i:D7}",
                    Name = $"Item {i}",
                    Category = Categories[i % Categories.Length],
                    LocationId = location,
                    Quantity = random.Next(200),
                    UnitCost = 1 + (i % 50),
                    ReorderPoint = i % 3 == 0 ? 20 : null,
                    ReorderQuantity = i % 3 == 0 ? 50 : null,
                    ExpiresAt = i % 10 == 0 ? now.AddDays(random.Next(-10, 200)) : null,
                    Supplier = $"Supplier {i % 40}",
                    CreatedAt = now.AddDays(-random.Next(100, 400)),
                    UpdatedAt = now,
                    OutTotal = random.Next(1000),
                    LastOutAt = random.Next(5) == 0 ? null : now.AddDays(-random.Next(200)),
                    OpenAlerts = "",
                };
                yield return item;
                yield return new SkuIndexEntity { PartitionKey = tenant, RowKey = SkuIndexEntity.KeyFor(item.Sku), ItemId = itemIds[i] };
                yield return new StockEntity { PartitionKey = tenant, RowKey = StockEntity.KeyFor(itemIds[i], location), ItemId = itemIds[i], LocationId = location, Quantity = item.Quantity, UpdatedAt = now };
            }

            for (var m = 0; m < movements; m++)
            {
                var at = now.AddSeconds(-random.Next(90 * 24 * 3600));
                var itemId = itemIds[random.Next(items)];
                var type = random.Next(20) switch { < 10 => MovementType.Out, < 17 => MovementType.In, < 19 => MovementType.Transfer, _ => MovementType.Adjust };
                var quantity = 1 + random.Next(10);
                var movement = new MovementEntity
                {
                    PartitionKey = tenant,
                    Id = Ids.Derived(at, "movement" + m),
                    ItemId = itemId,
                    Type = type,
                    Quantity = quantity,
                    Delta = type switch { MovementType.Out => -quantity, MovementType.In => quantity, MovementType.Adjust => quantity - 5, _ => 0 },
                    QuantityAfter = 100,
                    ToLocationId = type == MovementType.Transfer ? locationIds[random.Next(Locations)] : null,
                    Reason = "benchmark",
                    At = at,
                };
                yield return movement.CopyAs(MovementEntity.ItemPrefixFor(itemId) + movement.Id);
                yield return movement.CopyAs(MovementEntity.TenantPrefix + movement.Id);
            }
        }

        await WriteAsync(table, preload, Rows(), "inventory");
    }

    private static async Task WriteAsync(TableClient table, TablePreload? preload, IEnumerable<ITableEntity> rows, string what)
    {
        void Progress(long written) => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"reports: {what}: {written:N0} rows written"));
        if (preload is not null)
        {
            // Proves the preload's shape of every entity type on sample rows before trusting it.
            var samples = rows.Take(what == "inventory" ? 24 : 4).Concat(what == "inventory" ? rows.OfType<MovementEntity>().Take(2) : []).ToList();
            foreach (var sample in samples)
            {
                sample.RowKey += "-check";
            }

            await preload.VerifyAsync(table, samples);
            await preload.LoadAsync(table.Name, rows, Progress);
            return;
        }

        using var queue = new BlockingCollection<ITableEntity>(boundedCapacity: 20_000);
        var written = 0L;
        var writers = Enumerable.Range(0, SeedWriters).Select(_ => Task.Run(async () =>
        {
            var batch = new List<ITableEntity>(100);
            async Task FlushAsync()
            {
                await table.SubmitTransactionAsync(batch.Select(r => new TableTransactionAction(TableTransactionActionType.Add, r)));
                if (Interlocked.Add(ref written, batch.Count) % 50_000 < batch.Count)
                {
                    Progress(Interlocked.Read(ref written));
                }

                batch.Clear();
            }

            foreach (var row in queue.GetConsumingEnumerable())
            {
                batch.Add(row);
                if (batch.Count == 100)
                {
                    await FlushAsync();
                }
            }

            if (batch.Count > 0)
            {
                await FlushAsync();
            }
        })).ToList();

        try
        {
            foreach (var row in rows)
            {
                queue.Add(row);
            }
        }
        finally
        {
            queue.CompleteAdding();
        }

        await Task.WhenAll(writers);
    }

    private static void Print(Dictionary<string, List<double>> timings, ReportDocument users, ReportDocument inventory)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine(string.Create(inv, $"{"build time",-66} {"n",3} {"median",9} {"min",9} {"max",9}"));
        foreach (var (name, ms) in timings)
        {
            Console.WriteLine(string.Create(inv, $"{name,-66} {ms.Count,3} {Statistics.Ms(Statistics.Median(ms)),9} {Statistics.Ms(ms.Min()),9} {Statistics.Ms(ms.Max()),9}"));
        }

        string Ratio(string name, List<double> baseline) => string.Create(inv, $"{Statistics.Median(timings[name]) / Statistics.Median(baseline):0.00}x");
        string Goal(string name) => Statistics.Median(timings[name]) < 30_000 ? "met" : "NOT met";
        var usersBaseline = timings.First(t => t.Key.StartsWith("users:", StringComparison.Ordinal)).Value;
        Console.WriteLine($"  user-insights: cold {Ratio("user-insights, cold", usersBaseline)} the baseline read, warm {Ratio("user-insights, warm", usersBaseline)}; "
            + $"goal under 30 s: {Goal("user-insights, cold")} (cold median)");
        var inventoryBaseline = timings.First(t => t.Key.StartsWith("inventory:", StringComparison.Ordinal)).Value;
        Console.WriteLine($"  inventory-status: cold from the snapshots {Ratio("inventory-status, cold, from the snapshots", inventoryBaseline)} the baseline read, "
            + $"cold with no snapshot yet {Ratio("inventory-status, cold, no snapshot yet (scans)", inventoryBaseline)}, warm {Ratio("inventory-status, warm", inventoryBaseline)}; "
            + $"goal under 30 s: {Goal("inventory-status, cold, from the snapshots")} cold from the snapshots, {Goal("inventory-status, cold, no snapshot yet (scans)")} "
            + "on the first instance ever to hold the tenant (medians)");

        Console.WriteLine("  user-insights figures: " + string.Join(", ", users.Figures.Select(f => string.Create(inv, $"{f.Key} {f.Value}"))));
        Console.WriteLine("  inventory-status figures: " + string.Join(", ", inventory.Figures.Select(f => string.Create(inv, $"{f.Key} {f.Value}"))));
    }
}
