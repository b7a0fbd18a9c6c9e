using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Events;
using Platform.Functions.Inventory;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Benchmarks;

/// <summary>
/// <c>jobs &lt;appExecutable&gt; [rows=100000]</c>: the figures of the job engine (imports and exports on the Durable
/// Task Framework), each next to a baseline measured in the same run.
/// (1) Import of <c>rows</c> inventory items and of <c>rows</c> users (no passwords) from CSV, upload to
/// <c>succeeded</c>, next to the raw limit: the same rows as the app writes them (item + SKU index row; user + email
/// index row) written with the SDK as 100-action entity-group transactions by as many writers as the import applies
/// chunks at once; after each import, how long until the relay has handed every event the import committed to the
/// subscribers (the partition's outbox is empty), so the next figure starts with the relay idle. (2) Peak resident
/// memory of the app during a dry-run import of a 100 MB CSV and of a 20 MB xlsx (written with the app's own
/// <see cref="TabularWriter"/>), in the process that ran the other figures and again in a
/// process of its own, which holds no projection the export loaded. (3) Dry-run rows/s of the items file. (4) Export of the
/// imported items to CSV, request to <c>succeeded</c> plus the download, next to an SDK scan of the same rows written
/// to a CSV file. (5) Engine overhead: a dry-run import of a 1-row CSV, request to <c>succeeded</c>, p50/p99, next to
/// one authenticated GET. (6) Kill-and-resume: an import of <c>rows/10</c> items whose app process is killed (SIGKILL)
/// when half the items are stored, then a new process on the same storage finishes it; rows stored must equal rows in
/// the file.
/// </summary>
/// <remarks>
/// The app runs as the other scale figures run it (<see cref="ScaleFigureApp"/>), with the job options' defaults;
/// <c>Platform__Jobs__*</c> variables set in the benchmark's own environment are handed on to it (and printed), to
/// try other settings without a rebuild. Kill-and-resume runs on two further processes with
/// <c>Platform__Jobs__MessageVisibilityTimeout</c> at <see cref="ResumeVisibility"/> (default 2 minutes): the time
/// the dead process's dequeued messages stay invisible is most of the pause a crash costs.
/// Azurite's table insert walks the whole partition per row, so a tenant's inserts slow down as it grows; both the app
/// and the raw baseline write <c>rows</c> rows into a partition of their own that starts empty, so they meet the same
/// sizes. The raw baseline writes into a table of its own that is dropped as soon as it is measured: the emulator keeps
/// every row in its heap, and its collector's work grows with it (each round ran slower than the one before), so the
/// import that follows meets the emulator as its baseline did instead of carrying 200,000 more rows.
/// </remarks>
internal static class JobsFigure
{
    private const int DefaultRows = 100_000;

    /// <summary>How many pairs of raw and import figures to take (1 unless set; the median is printed when more).</summary>
    private const string RoundsVariable = "PLATFORM_BENCH_JOBS_ROUNDS";
    private const int MaxRounds = 9;
    private const int OverheadRuns = 50;
    private const int OverheadWarmUp = 5;
    private const int RowsPerTransaction = 50;
    private const long MemoryCsvBytes = 100_000_000;
    private const long MemoryXlsxBytes = 20_000_000;

    /// <summary>The description of the ROWS files' items: about 330 bytes a CSV row.</summary>
    private const int DescriptionChars = 240;

    /// <summary>
    /// The description of the memory figures' items: about 1 KB a CSV row, so the 100 MB file is about 100,000 rows and
    /// its dry run takes minutes rather than the better part of an hour (descriptions may hold 2,000 characters).
    /// </summary>
    private const int LongDescriptionChars = 900;

    private const string ItemsKind = "inventory-items";
    private const string UsersKind = "users";
    private const string CsvType = "text/csv";
    private const string XlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    private static readonly TimeSpan ResumeVisibility = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan JobTimeout = TimeSpan.FromHours(2);
    private static readonly string[] Categories = ["Tools", "Fasteners", "Paint", "Electrical", "Plumbing", "Garden", "Safety", "Lumber"];
    private static readonly string[] Words =
    [
        "zinc", "plated", "steel", "bolt", "washer", "hex", "head", "coarse", "thread", "for", "outdoor", "use", "pack", "of", "ten", "grade",
        "eight", "stainless", "marine", "galvanised", "heavy", "duty", "light", "fine", "pitch", "metric", "imperial", "length", "diameter",
        "supplier", "batch", "certified", "shelf", "bin", "pallet", "carton", "sealed", "spare", "replacement", "kit",
    ];

    private static readonly string[] ItemColumns = ["sku", "name", "description", "category", "unit", "unitCost", "supplier", "tags"];
    private static readonly string[] UserColumns = ["email", "displayName"];
    private static readonly string[] ExportColumns =
    [
        "id", "sku", "name", "description", "category", "locationId", "quantity", "unit", "unitCost", "reorderPoint", "reorderQuantity",
        "expiresAt", "supplier", "tags", "fields", "status", "createdAt", "updatedAt",
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 1 or > 2 || !BenchAdmin.TryCount(args, 1, DefaultRows, out var rows, max: 1_000_000))
        {
            await Console.Error.WriteLineAsync("usage: jobs <appExecutable> [rows=100000] (rows from 1 to 1000000)");
            return 2;
        }

        var executable = Path.GetFullPath(args[0]);
        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (!File.Exists(executable) || string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync($"jobs: need the app executable ({executable}) and AzureWebJobsStorage (infra/bench/jobs.sh sets both)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (prefix, environment) = ScaleFigureApp.Environment(storage, signingKey);
        var overrides = Environment.GetEnvironmentVariables().Keys.OfType<string>()
            .Where(name => name.StartsWith("Platform__Jobs__", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
            .ToDictionary(name => name, name => Environment.GetEnvironmentVariable(name)!);
        foreach (var (name, value) in overrides)
        {
            environment[name] = value;
        }

        var options = new JobOptions();
        var rounds = 1;
        if (Environment.GetEnvironmentVariable(RoundsVariable) is { Length: > 0 } r
            && (!int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out rounds) || rounds is < 1 or > MaxRounds))
        {
            await Console.Error.WriteLineAsync($"jobs: {RoundsVariable} must be a whole number from 1 to {MaxRounds}: {r}");
            return 2;
        }

        var parallelism = overrides.TryGetValue("Platform__Jobs__ChunkParallelism", out var p) ? int.Parse(p, CultureInfo.InvariantCulture) : options.ChunkParallelism;
        var chunkRows = overrides.TryGetValue("Platform__Jobs__ChunkRows", out var c) ? int.Parse(c, CultureInfo.InvariantCulture) : options.ChunkRows;

        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            Timeout = TimeSpan.FromMinutes(30),
        };
        var tables = new TableServiceClient(storage);
        var inventory = tables.GetTableClient(prefix + InventoryStore.TableName);
        var usersTable = tables.GetTableClient(prefix + UserDirectory.TableName);
        var folder = Directory.CreateTempSubdirectory("platform-jobs-");

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"jobs: {rows:N0} inventory items and {rows:N0} users (no passwords) imported from CSV, upload to succeeded; baseline: the same rows "
            + $"written with the SDK, {RowsPerTransaction} + {RowsPerTransaction} rows a transaction, {parallelism} writers (the import's chunk parallelism). "
            + $"Dry run of the items file; export of the items to CSV (+ download) next to an SDK scan written to a CSV file; peak memory of a "
            + $"{MemoryCsvBytes / 1_000_000} MB CSV and a {MemoryXlsxBytes / 1_000_000} MB xlsx dry run; engine overhead over {OverheadRuns} runs; "
            + $"kill-and-resume of {Math.Max(1, rows / 10):N0} items; {Environment.ProcessorCount} cores"));
        Console.WriteLine($"  app       {executable}");
        Console.WriteLine($"  prefix    {prefix}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  jobs      ChunkRows {chunkRows}, ChunkParallelism {parallelism}, MaxConcurrentActivities {Setting(overrides, "MaxConcurrentActivities", options.MaxConcurrentActivities)}, "
            + $"MaxPollingInterval {Setting(overrides, "MaxPollingInterval", options.MaxPollingInterval)}{(overrides.Count > 0 ? " (set: " + string.Join(", ", overrides.Keys) + ")" : "")}"));

        var report = new Report(rows);
        var itemsFile = Path.Combine(folder.FullName, "items.csv");
        var usersFile = Path.Combine(folder.FullName, "users.csv");

        // One round of figure (1): raw items, the items import, its relay; raw users, the users import, its relay. Round 1's
        // figures go into the report kind by kind as they are taken, so a run that fails half way still prints them.
        async Task PairAsync(JobDriver driver, string tenantId, int round)
        {
            var (rawItems, items, itemsRelayed) = await KindAsync(driver, tenantId, round, "items", itemsFile, ItemsKind, inventory, ItemRows, ItemEntity.KeyPrefix);
            if (round == 1)
            {
                (report.ItemsRaw, report.Items, report.ItemsRelayed) = (rawItems, items, itemsRelayed);
            }

            var (rawUsers, users, usersRelayed) = await KindAsync(driver, tenantId, round, "users", usersFile, UsersKind, usersTable, UserRows, expectedKeys: null);
            if (round == 1)
            {
                (report.UsersRaw, report.Users, report.UsersRelayed) = (rawUsers, users, usersRelayed);
            }

            report.ItemsRatios.Add(rawItems.TotalSeconds / items.Seconds);
            report.UsersRatios.Add(rawUsers.TotalSeconds / users.Seconds);
        }

        // One kind of a round: its raw baseline, its import (with, for items, the rows stored checked), and its relay.
        async Task<(TimeSpan Raw, JobRun Import, TimeSpan Relayed)> KindAsync(
            JobDriver driver, string tenantId, int round, string kind, string file, string jobKind, TableClient table,
            Func<string, int, ITableEntity[]> build, string? expectedKeys)
        {
            var suffix = round == 1 ? "" : round.ToString(CultureInfo.InvariantCulture);
            var said = round == 1 ? "" : $"round {round}: ";
            var raw = await WriteRawAsync(tables.GetTableClient(prefix + "raw" + kind + suffix), rows, parallelism, n => build(kind + suffix, n));
            await Progress($"{said}raw {kind}: {raw.TotalSeconds:0.0} s");
            var import = await driver.ImportAsync(file, CsvType, jobKind, dryRun: false, rows, TimeSpan.FromMilliseconds(250));
            await Progress($"{said}import of {rows:N0} {kind}: {import.Seconds:0.0} s");
            if (expectedKeys is not null)
            {
                await ExpectRowsAsync(table, tenantId, expectedKeys, rows, kind);
            }

            // The events the import committed reach the audit trail and webhooks through the relay, after the job
            // answered: how long until none is left, and the next figure starts with the relay idle.
            var relayed = await OutboxDrainedAsync(table, tenantId);
            await Progress($"{said}{kind}' events relayed: {relayed.TotalSeconds:0.0} s after the job");
            return (raw, import, relayed);
        }

        try
        {
            await WriteFileAsync(itemsFile, TabularFormat.Csv, ItemColumns, Enumerable.Range(0, rows).Select(n => ItemValues("A", n)), long.MaxValue);
            await WriteFileAsync(usersFile, TabularFormat.Csv, UserColumns, Enumerable.Range(0, rows).Select(n => UserValues(n, "")), long.MaxValue);

            using (var server = ServerProcess.Start(executable, environment))
            {
                try
                {
                    await server.WaitForOkAsync(client, "/api/health/live", StartTimeout);
                    await server.WaitForOkAsync(client, "/api/health/ready", StartTimeout);
                    var admin = await BenchAdmin.SignUpAsync(client, server);
                    var jobs = new JobDriver(client, server, admin);
                    Console.WriteLine($"  tenant    {admin.Slug} (partition {admin.TenantId})");

                    // (3) Dry run first, while the tenant holds no items: every row is read, checked and found new.
                    report.DryRun = await jobs.ImportAsync(itemsFile, CsvType, ItemsKind, dryRun: true, rows, TimeSpan.FromMilliseconds(250));
                    await Progress($"dry run of {rows:N0} items: {report.DryRun?.Seconds:0.0} s");

                    // (1) Items, then users: each baseline's rows right before the app's, each into a partition that starts empty.
                    await PairAsync(jobs, admin.TenantId, round: 1);

                    // (1, again) More pairs of the same two figures, each in a tenant of its own (the files' SKUs and emails
                    // are taken in the first) and partitions of its own: one pair spreads by several points on a small
                    // machine, so a change is judged on the median.
                    for (var round = 2; round <= rounds; round++)
                    {
                        var roundAdmin = await BenchAdmin.SignUpAsync(client, server);
                        await PairAsync(new JobDriver(client, server, roundAdmin), roundAdmin.TenantId, round);
                    }


                    // (4) Export, then the scan baseline (both read the same rows, neither warms the other's cache).
                    report.Export = await jobs.ExportAsync(ItemsKind, Path.Combine(folder.FullName, "export.csv"), rows);
                    report.ExportRaw = await ScanToCsvAsync(inventory, admin.TenantId, Path.Combine(folder.FullName, "scan.csv"), rows);
                    await Progress($"export: {report.Export?.Seconds:0.0} s, scan: {report.ExportRaw?.TotalSeconds:0.0} s");

                    // (5) Engine overhead, interleaved with the plain GET so both meet the same state of the process.
                    var oneRow = Path.Combine(folder.FullName, "one.csv");
                    await WriteFileAsync(oneRow, TabularFormat.Csv, ItemColumns, [ItemValues("ONE", 0)], long.MaxValue);
                    for (var i = 0; i < OverheadWarmUp + OverheadRuns; i++)
                    {
                        var get = (await admin.TimedGetAsync(client, server, "/api/v1/me")).Milliseconds;
                        var job = await jobs.ImportAsync(oneRow, CsvType, ItemsKind, dryRun: true, 1, TimeSpan.FromMilliseconds(10));
                        if (i >= OverheadWarmUp)
                        {
                            report.OverheadGet.Add(get);
                            report.OverheadJob.Add(job.Seconds * 1000);
                        }
                    }

                    await Progress($"engine overhead: p50 {Statistics.Percentile(report.OverheadJob, 50):0} ms");

                    // (2) Memory: dry runs of large files, the peak reset right before each, in a tenant of their own: a
                    // dry run reads each row's SKU, and Azurite's point read walks the partition (ROWS items here).
                    (report.MemoryCsv, report.MemoryXlsx) = await MemoryFiguresAsync(client, server, folder.FullName, "M", "X", "");
                }
                catch (Exception e) when (IsMeasurementFailure(e))
                {
                    return await FailedAsync(e, server, report);
                }
                finally
                {
                    await server.StopAsync(StopGrace);
                }
            }

            // (2, again) Memory on a process of its own: the same two dry runs on an instance that holds nothing the
            // figures above loaded (the export leaves the tenant's items in the instance's projection, held under
            // Platform__Lists__ProjectionMemoryMB), so the peak is the process plus what an import itself needs.
            using (var fresh = ServerProcess.Start(executable, environment))
            {
                try
                {
                    await fresh.WaitForOkAsync(client, "/api/health/live", StartTimeout);
                    await fresh.WaitForOkAsync(client, "/api/health/ready", StartTimeout);
                    (report.FreshMemoryCsv, report.FreshMemoryXlsx) = await MemoryFiguresAsync(client, fresh, folder.FullName, "F", "G", ", own process");
                }
                catch (Exception e) when (IsMeasurementFailure(e))
                {
                    return await FailedAsync(e, fresh, report);
                }
                finally
                {
                    await fresh.StopAsync(StopGrace);
                }
            }

            // (6) Kill-and-resume, on processes of its own (a short message visibility timeout) over the same storage.
            environment["Platform__Jobs__MessageVisibilityTimeout"] = ResumeVisibility.ToString();
            report.Resume = await KillAndResumeAsync(client, executable, environment, inventory, folder.FullName, Math.Max(1, rows / 10));
            report.Print();
            return 0;
        }
        catch (Exception e) when (IsMeasurementFailure(e))
        {
            await Console.Error.WriteLineAsync($"jobs: {e.Message}");
            report.Print();
            return 1;
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>A measurement that failed on a running app: why, the app's last output and the figures so far; the exit code.</summary>
    private static async Task<int> FailedAsync(Exception e, ServerProcess server, Report report)
    {
        await Console.Error.WriteLineAsync($"jobs: {e.Message}{Environment.NewLine}app output (tail):{Environment.NewLine}{server.OutputTail()}");
        report.Print();
        return 1;
    }

    private static bool IsMeasurementFailure(Exception e) =>
        e is InvalidOperationException or TimeoutException or HttpRequestException or TaskCanceledException or RequestFailedException or JsonException or IOException;

    private static string Setting<T>(Dictionary<string, string> overrides, string name, T fallback) =>
        overrides.TryGetValue("Platform__Jobs__" + name, out var value) ? value : string.Create(CultureInfo.InvariantCulture, $"{fallback}");

    private static Task Progress(string message) => Console.Error.WriteLineAsync("jobs: " + message);

    /// <summary>Item <paramref name="n"/> of a file: a SKU of its own, a description of <see cref="DescriptionChars"/> words of text.</summary>
    private static string?[] ItemValues(string skuPrefix, int n, int descriptionChars = DescriptionChars)
    {
        var random = new Random(n);
        var description = new StringBuilder(descriptionChars + 16);
        while (description.Length < descriptionChars)
        {
            description.Append(Words[random.Next(Words.Length)]).Append(' ');
        }

        return
        [
            string.Create(CultureInfo.InvariantCulture, $"{skuPrefix}-{n:D7}"),
            string.Create(CultureInfo.InvariantCulture, $"Item {n} {Words[n % Words.Length]}"),
            description.ToString(0, descriptionChars).TrimEnd(),
            Categories[n % Categories.Length],
            "pcs",
            string.Create(CultureInfo.InvariantCulture, $"{1 + n % 500}.{n % 100:D2}"),
            n % 3 == 0 ? "Acme" : "Globex",
            n % 2 == 0 ? "metal;small" : "bulk",
        ];
    }

    private static string?[] UserValues(int n, string slug) =>
        [string.Create(CultureInfo.InvariantCulture, $"user{n:D7}@import{slug}.example.com"), string.Create(CultureInfo.InvariantCulture, $"User {n}")];

    /// <summary>
    /// Item <paramref name="n"/> and its SKU index row as the import writes them (the index row keeps the import row
    /// that made it, <c>{jobId}#{row}</c>, as the import's does).
    /// </summary>
    private static ITableEntity[] ItemRows(string partition, int n)
    {
        var values = ItemValues("A", n);
        var now = DateTimeOffset.UtcNow;
        var id = Ids.New();
        var item = new ItemEntity
        {
            PartitionKey = partition, RowKey = ItemEntity.KeyFor(id), Sku = values[0]!, Name = values[1]!, Description = values[2], Category = values[3],
            Unit = values[4], UnitCost = double.Parse(values[5]!, CultureInfo.InvariantCulture), Supplier = values[6],
            Tags = JsonSerializer.Serialize(values[7]!.Split(';')), CreatedAt = now, UpdatedAt = now,
        };
        var index = new SkuIndexEntity
        {
            PartitionKey = partition, RowKey = SkuIndexEntity.KeyFor(item.Sku), ItemId = id,
            ImportKey = string.Create(CultureInfo.InvariantCulture, $"{Ids.New()}#{n + 2}"),
        };
        return [item, index];
    }

    /// <summary>User <paramref name="n"/> and its email index row as the import writes a create without a password.</summary>
    private static ITableEntity[] UserRows(string partition, int n)
    {
        var values = UserValues(n, "");
        var now = DateTimeOffset.UtcNow;
        var user = new UserEntity
        {
            PartitionKey = partition, RowKey = UserEntity.KeyFor(Ids.New()), Email = values[0]!, DisplayName = values[1]!, RoleList = ["user"],
            CreatedAt = now, UpdatedAt = now,
        };
        return [user, new EmailIndexEntity { PartitionKey = partition, RowKey = EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(user.Email)!), UserId = user.Id }];
    }

    /// <summary>Writes rows to a file with the app's writer, streamed, until they run out or the file reaches <paramref name="maxBytes"/>; returns the rows.</summary>
    private static async Task<long> WriteFileAsync(string path, TabularFormat format, string[] columns, IEnumerable<string?[]> rows, long maxBytes)
    {
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        long written;
        await using (var writer = TabularWriter.Create(file, format, columns, sheetName: "items"))
        {
            foreach (var row in rows)
            {
                await writer.WriteRowAsync(row, CancellationToken.None);

                // The writer hands the file 64 KB at a time, so the size lands within that of the target.
                if (file.Length >= maxBytes)
                {
                    break;
                }
            }

            written = writer.RowsWritten;
        }

        return written;
    }

    /// <summary>
    /// The raw limit: <paramref name="rows"/> rows (two entities each) into a new table, 100-action transactions,
    /// <paramref name="writers"/> writers taking the next transaction as soon as theirs is answered. The entities are
    /// built before the clock starts; the table is dropped once the clock stopped.
    /// </summary>
    private static async Task<TimeSpan> WriteRawAsync(TableClient table, int rows, int writers, Func<int, ITableEntity[]> build)
    {
        var transactions = Enumerable.Range(0, rows).Chunk(RowsPerTransaction)
            .Select(chunk => chunk.SelectMany(build).Select(e => new TableTransactionAction(TableTransactionActionType.Add, e)).ToList())
            .ToList();
        await table.CreateIfNotExistsAsync();
        try
        {
            var next = -1;
            var wall = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, writers).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < transactions.Count)
                {
                    await table.SubmitTransactionAsync(transactions[i]);
                }
            }));
            return wall.Elapsed;
        }
        finally
        {
            await table.DeleteAsync();
        }
    }

    /// <summary>
    /// From now until the partition holds no outbox row (<c>~outbox~</c>, or <c>~outbox:</c> as an earlier version wrote them): the relay has handed every committed event to
    /// the subscribers (audit trail, webhooks). Polled every 250 ms, keys only.
    /// </summary>
    private static async Task<TimeSpan> OutboxDrainedAsync(TableClient table, string partition)
    {
        var wall = Stopwatch.StartNew();
        while (await CountAsync(table, partition, EventOutbox.KeyStart, EventOutbox.KeyPrefix + char.MaxValue) > 0)
        {
            if (wall.Elapsed > RelayDeadline)
            {
                throw new TimeoutException($"the relay left outbox rows in {table.Name} for over {RelayDeadline.TotalMinutes:0} minutes");
            }

            await Task.Delay(250);
        }

        return wall.Elapsed;
    }

    private static readonly TimeSpan RelayDeadline = TimeSpan.FromMinutes(10);

    private static Task<long> CountAsync(TableClient table, string partition, string keyPrefix) =>
        CountAsync(table, partition, keyPrefix, keyPrefix[..^1] + (char)(keyPrefix[^1] + 1));

    private static async Task<long> CountAsync(TableClient table, string partition, string keyPrefix, string end)
    {
        long count = 0;
        await foreach (var _ in table.QueryAsync<TableEntity>(
            TableClient.CreateQueryFilter($"PartitionKey eq {partition} and RowKey ge {keyPrefix} and RowKey lt {end}"), maxPerPage: 1000, select: ["RowKey"]))
        {
            count++;
        }

        return count;
    }

    private static async Task ExpectRowsAsync(TableClient table, string partition, string keyPrefix, long expected, string what)
    {
        var count = await CountAsync(table, partition, keyPrefix);
        if (count != expected)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"the tenant holds {count:N0} {what}; the file has {expected:N0}"));
        }
    }

    /// <summary>The export baseline: the tenant's item rows scanned with the SDK and written with the export's columns to a CSV file.</summary>
    private static async Task<TimeSpan> ScanToCsvAsync(TableClient table, string partition, string path, long expected)
    {
        var wall = Stopwatch.StartNew();
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        long written;
        await using (var writer = TabularWriter.Create(file, TabularFormat.Csv, ExportColumns))
        {
            await foreach (var item in table.QueryAsync<ItemEntity>(
                TableClient.CreateQueryFilter($"PartitionKey eq {partition} and RowKey ge {ItemEntity.KeyPrefix} and RowKey lt {"i;"}"), maxPerPage: 1000))
            {
                await writer.WriteRowAsync(
                [
                    item.Id, item.Sku, item.Name, item.Description, item.Category, item.LocationId, Text(item.Quantity), item.Unit, Text(item.UnitCost),
                    Text(item.ReorderPoint), Text(item.ReorderQuantity), Text(item.ExpiresAt), item.Supplier, string.Join(';', item.TagList),
                    item.Fields == "{}" ? null : item.Fields, item.Status, Text(item.CreatedAt), Text(item.UpdatedAt),
                ], CancellationToken.None);
            }

            written = writer.RowsWritten;
        }

        await file.FlushAsync();
        var elapsed = wall.Elapsed;
        if (written != expected)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"the SDK scan found {written:N0} items; {expected:N0} were imported"));
        }

        return elapsed;

        static string? Text(object? value) => value switch
        {
            null => null,
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            DateTimeOffset t => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
            _ => value.ToString(),
        };
    }

    /// <summary>
    /// Resets the process's peak resident size (writing 5 to /proc/&lt;pid&gt;/clear_refs) and samples VmRSS every 50 ms
    /// while <paramref name="run"/> runs; the peak is the larger of VmHWM and the largest sample.
    /// </summary>
    /// <summary>
    /// The two memory figures on <paramref name="server"/>: dry runs of a 100 MB CSV and a 20 MB xlsx, each measured with
    /// the peak reset right before it, in a tenant of their own (a dry run reads each row's SKU, so an existing tenant's
    /// items would be in the way). The tags keep their SKUs apart from other files'.
    /// </summary>
    private static async Task<(MemoryFigure Csv, MemoryFigure Xlsx)> MemoryFiguresAsync(
        HttpClient client, ServerProcess server, string folder, string csvTag, string xlsxTag, string where)
    {
        var jobs = new JobDriver(client, server, await BenchAdmin.SignUpAsync(client, server));
        var bigCsv = Path.Combine(folder, "big.csv");
        var csvRows = await WriteFileAsync(bigCsv, TabularFormat.Csv, ItemColumns, Enumerable.Range(0, int.MaxValue).Select(n => ItemValues(csvTag, n, LongDescriptionChars)), MemoryCsvBytes);
        var csv = await MeasureMemoryAsync(server, () => jobs.ImportAsync(bigCsv, CsvType, ItemsKind, dryRun: true, csvRows, TimeSpan.FromMilliseconds(500)));
        File.Delete(bigCsv);
        await Progress($"100 MB CSV dry run{where}: {csv.Job.Seconds:0.0} s, peak {csv.Peak / 1048576.0:0} MiB");

        var bigXlsx = Path.Combine(folder, "big.xlsx");
        var xlsxRows = await WriteFileAsync(bigXlsx, TabularFormat.Xlsx, ItemColumns, Enumerable.Range(0, int.MaxValue).Select(n => ItemValues(xlsxTag, n, LongDescriptionChars)), MemoryXlsxBytes);
        var xlsx = await MeasureMemoryAsync(server, () => jobs.ImportAsync(bigXlsx, XlsxType, ItemsKind, dryRun: true, xlsxRows, TimeSpan.FromMilliseconds(500)));
        File.Delete(bigXlsx);
        await Progress($"20 MB xlsx dry run{where}: {xlsx.Job.Seconds:0.0} s, peak {xlsx.Peak / 1048576.0:0} MiB");
        return (csv, xlsx);
    }

    private static async Task<MemoryFigure> MeasureMemoryAsync(ServerProcess server, Func<Task<JobRun>> run)
    {
        var before = server.ReadMemory().Resident;
        var reset = false;
        try
        {
            await File.WriteAllTextAsync($"/proc/{server.Id}/clear_refs", "5");
            reset = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or not allowed: the sampled peak stands alone.
        }

        using var stop = new CancellationTokenSource();
        var sampledPeak = 0L;
        var sampling = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                sampledPeak = Math.Max(sampledPeak, server.ReadMemory().Resident);
                try
                {
                    await Task.Delay(50, stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        });
        var job = await run();
        await stop.CancelAsync();
        await sampling;
        var hwm = reset ? server.ReadMemory().Peak : 0;
        return new MemoryFigure(job, before, Math.Max(hwm, sampledPeak), reset);
    }

    private static async Task<ResumeFigure> KillAndResumeAsync(
        HttpClient client, string executable, Dictionary<string, string> environment, TableClient inventory, string folder, int rows)
    {
        var file = Path.Combine(folder, "resume.csv");
        await WriteFileAsync(file, TabularFormat.Csv, ItemColumns, Enumerable.Range(0, rows).Select(n => ItemValues("R", n)), long.MaxValue);
        BenchAdmin admin;
        string jobId;
        long atKill;
        Stopwatch sinceKill;
        using (var first = ServerProcess.Start(executable, environment))
        {
            try
            {
                await first.WaitForOkAsync(client, "/api/health/live", StartTimeout);
                await first.WaitForOkAsync(client, "/api/health/ready", StartTimeout);
                admin = await BenchAdmin.SignUpAsync(client, first);
                jobId = await new JobDriver(client, first, admin).StartImportAsync(file, CsvType, ItemsKind, dryRun: false);

                // Killed when half the file's items are stored: mid-wave, with chunks partly written.
                var deadline = Stopwatch.StartNew();
                while ((atKill = await CountAsync(inventory, admin.TenantId, SkuIndexEntity.KeyPrefix)) < rows / 2)
                {
                    if (deadline.Elapsed > JobTimeout || first.HasExited)
                    {
                        throw new TimeoutException($"the import did not reach half its rows (at {atKill:N0}):{Environment.NewLine}{first.OutputTail()}");
                    }

                    await Task.Delay(20);
                }

                first.Kill();
                sinceKill = Stopwatch.StartNew();
                atKill = await CountAsync(inventory, admin.TenantId, SkuIndexEntity.KeyPrefix);
            }
            catch (Exception e) when (IsMeasurementFailure(e))
            {
                throw new InvalidOperationException($"{e.Message}{Environment.NewLine}first app's output (tail):{Environment.NewLine}{first.OutputTail()}", e);
            }
        }

        await Progress(string.Create(CultureInfo.InvariantCulture, $"killed the app with {atKill:N0} of {rows:N0} items stored"));
        using var second = ServerProcess.Start(executable, environment);
        try
        {
            await second.WaitForOkAsync(client, "/api/health/live", StartTimeout);
            var up = sinceKill.Elapsed;
            TimeSpan? progressing = null;
            // Access tokens name the address of the process that issued them: sign in again on the new one.
            var driver = new JobDriver(client, second, new BenchAdmin(admin.Slug, admin.Email, admin.Password, admin.TenantId));
            JsonElement job;
            while (true)
            {
                job = await driver.GetJobAsync(jobId);
                if (progressing is null && await CountAsync(inventory, admin.TenantId, SkuIndexEntity.KeyPrefix) > atKill)
                {
                    progressing = sinceKill.Elapsed;
                }

                var status = job.GetProperty("status").GetString();
                if (status is not ("queued" or "running"))
                {
                    break;
                }

                if (sinceKill.Elapsed > JobTimeout)
                {
                    throw new TimeoutException("the resumed import did not finish");
                }

                await Task.Delay(100);
            }

            var finished = sinceKill.Elapsed;
            var items = await CountAsync(inventory, admin.TenantId, ItemEntity.KeyPrefix);
            var skus = await CountAsync(inventory, admin.TenantId, SkuIndexEntity.KeyPrefix);
            var progress = job.GetProperty("progress");
            return new ResumeFigure(rows, atKill, job.GetProperty("status").GetString()!, progress.GetProperty("succeeded").GetInt64(),
                progress.GetProperty("failed").GetInt64(), items, skus, up, progressing ?? finished, finished);
        }
        catch (Exception e) when (IsMeasurementFailure(e))
        {
            throw new InvalidOperationException($"{e.Message}{Environment.NewLine}second app's output (tail):{Environment.NewLine}{second.OutputTail()}", e);
        }
        finally
        {
            await second.StopAsync(StopGrace);
        }
    }

    /// <summary>One job, timed from the request's send: when it answered, when the file was split (total known), and when it finished.</summary>
    private sealed record JobRun(string Id, double Posted, double Split, double Applied, double Seconds, long Succeeded, long Failed, double Download = 0);

    private sealed record MemoryFigure(JobRun Job, long Before, long Peak, bool Reset);

    private sealed record ResumeFigure(
        long Rows, long AtKill, string Status, long Succeeded, long Failed, long Items, long Skus, TimeSpan Up, TimeSpan Progressing, TimeSpan Finished);

    /// <summary>The job routes, as a client drives them.</summary>
    private sealed class JobDriver(HttpClient client, ServerProcess server, BenchAdmin admin)
    {
        public async Task<string> StartImportAsync(string path, string contentType, string kind, bool dryRun)
        {
            await using var file = File.OpenRead(path);
            using var request = new HttpRequestMessage(HttpMethod.Post,
                new Uri(server.BaseAddress, $"/api/v1/jobs/imports?kind={kind}&mode=create&dryRun={(dryRun ? "true" : "false")}"))
            {
                Content = new StreamContent(file, 1 << 16) { Headers = { ContentType = new MediaTypeHeaderValue(contentType) } },
            };
            return await SendAsync(request);
        }

        /// <summary>Starts an import and polls it every <paramref name="poll"/> until it ends; it must succeed with every row.</summary>
        public async Task<JobRun> ImportAsync(string path, string contentType, string kind, bool dryRun, long rows, TimeSpan poll)
        {
            var started = Stopwatch.StartNew();
            var id = await StartImportAsync(path, contentType, kind, dryRun);
            var run = await WaitAsync(id, started, poll);
            if (run.Succeeded != rows || run.Failed != 0)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"the {kind} import ({(dryRun ? "dry run" : "applied")}) of {rows:N0} rows ended with {run.Succeeded:N0} succeeded and {run.Failed:N0} failed"));
            }

            return run;
        }

        /// <summary>Starts an export, waits for it and downloads its file; the file must hold every row.</summary>
        public async Task<JobRun> ExportAsync(string kind, string path, long rows)
        {
            var started = Stopwatch.StartNew();
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress, "/api/v1/jobs/exports"))
            {
                Content = JsonContent.Create(new { kind, format = "csv" }),
            };
            var id = await SendAsync(request);
            var run = await WaitAsync(id, started, TimeSpan.FromMilliseconds(100));

            using var download = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress, $"/api/v1/jobs/{id}/result"));
            download.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await admin.TokenAsync(client, server));
            using var response = await client.SendAsync(download, HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"GET the export's result answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }

            long lines = 0;
            await using (var output = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            await using (var body = await response.Content.ReadAsStreamAsync())
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await body.ReadAsync(buffer)) > 0)
                {
                    lines += buffer.AsSpan(0, read).Count((byte)'\n');
                    await output.WriteAsync(buffer.AsMemory(0, read));
                }
            }

            var total = started.Elapsed.TotalSeconds;
            if (lines - 1 != rows || run.Succeeded != rows)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"the export counted {run.Succeeded:N0} rows and its file has {lines - 1:N0}; {rows:N0} were imported"));
            }

            return run with { Seconds = total, Download = total - run.Seconds };
        }

        public async Task<JsonElement> GetJobAsync(string id)
        {
            var (_, body) = await admin.TimedGetAsync(client, server, $"/api/v1/jobs/{id}");
            using var json = JsonDocument.Parse(body);
            return json.RootElement.Clone();
        }

        private async Task<string> SendAsync(HttpRequestMessage request)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await admin.TokenAsync(client, server));
            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            if ((int)response.StatusCode != 202)
            {
                throw new InvalidOperationException($"{request.Method} {request.RequestUri?.PathAndQuery} answered {(int)response.StatusCode}: {text}");
            }

            using var json = JsonDocument.Parse(text);
            return json.RootElement.GetProperty("id").GetString()!;
        }

        private async Task<JobRun> WaitAsync(string id, Stopwatch started, TimeSpan poll)
        {
            var posted = started.Elapsed.TotalSeconds;
            double? split = null, applied = null;
            while (true)
            {
                var job = await GetJobAsync(id);
                var now = started.Elapsed.TotalSeconds;
                var status = job.GetProperty("status").GetString();
                var progress = job.GetProperty("progress");
                var total = progress.GetProperty("total").GetInt64();
                if (total > 0)
                {
                    split ??= now;
                    if (progress.GetProperty("processed").GetInt64() >= total)
                    {
                        applied ??= now;
                    }
                }

                if (status is not ("queued" or "running"))
                {
                    if (status is not "succeeded")
                    {
                        throw new InvalidOperationException($"job {id} ended {status}: {job.GetRawText()}");
                    }

                    return new JobRun(id, posted, split ?? now, applied ?? now, now, progress.GetProperty("succeeded").GetInt64(), progress.GetProperty("failed").GetInt64());
                }

                if (started.Elapsed > JobTimeout)
                {
                    throw new TimeoutException($"job {id} did not finish within {JobTimeout}");
                }

                await Task.Delay(poll);
            }
        }
    }

    /// <summary>What was measured; a run that stopped half way prints what it has.</summary>
    private sealed class Report(int rows)
    {
        public JobRun? DryRun { get; set; }
        public JobRun? Items { get; set; }
        public TimeSpan? ItemsRaw { get; set; }
        public JobRun? Users { get; set; }
        public TimeSpan? UsersRaw { get; set; }
        public TimeSpan? ItemsRelayed { get; set; }
        public TimeSpan? UsersRelayed { get; set; }
        public JobRun? Export { get; set; }
        public TimeSpan? ExportRaw { get; set; }
        public MemoryFigure? MemoryCsv { get; set; }
        public MemoryFigure? MemoryXlsx { get; set; }
        public MemoryFigure? FreshMemoryCsv { get; set; }
        public MemoryFigure? FreshMemoryXlsx { get; set; }
        /// <summary>Raw seconds over import seconds, round by round (round 1 is <see cref="Items"/> and <see cref="ItemsRaw"/>).</summary>
        public List<double> ItemsRatios { get; } = [];
        public List<double> UsersRatios { get; } = [];
        public List<double> OverheadGet { get; } = [];
        public List<double> OverheadJob { get; } = [];
        public ResumeFigure? Resume { get; set; }

        public void Print()
        {
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine();
            Console.WriteLine(string.Create(inv, $"{"import / export, " + rows.ToString("N0", inv) + " rows",-56} {"seconds",9} {"rows/s",9}   where the time went"));
            Import("items import (CSV, upload to succeeded)", Items, "  baseline: SDK, item + SKU rows", ItemsRaw);
            Relayed("  items' events relayed (outbox empty), after the job", ItemsRelayed);
            Import("users import (CSV, no passwords)", Users, "  baseline: SDK, user + email rows", UsersRaw);
            Relayed("  users' events relayed (outbox empty), after the job", UsersRelayed);
            Rounds("items", ItemsRatios);
            Rounds("users", UsersRatios);
            if (DryRun is { } dry)
            {
                Line("items dry run (CSV, upload to succeeded)", dry.Seconds, Phases(dry));
            }

            if (Export is { } export)
            {
                Line("items export (CSV, request to succeeded + download)", export.Seconds,
                    string.Create(inv, $"job {export.Seconds - export.Download:0.0} s, download {export.Download:0.0} s"));
            }

            if (ExportRaw is { } scan)
            {
                Line("  baseline: SDK scan written to a CSV file", scan.TotalSeconds, "");
                Ratio("export", scan.TotalSeconds, Export!.Seconds);
            }

            if (MemoryCsv is not null || MemoryXlsx is not null || FreshMemoryCsv is not null || FreshMemoryXlsx is not null)
            {
                Console.WriteLine();
                Console.WriteLine(string.Create(inv, $"{"peak resident memory of the app (goal < 400 MB)",-56} {"rows",9} {"seconds",9} {"before",10} {"peak",10}"));
                Memory($"{MemoryCsvBytes / 1_000_000} MB CSV, dry run", MemoryCsv);
                Memory($"{MemoryXlsxBytes / 1_000_000} MB xlsx, dry run", MemoryXlsx);
                Memory($"{MemoryCsvBytes / 1_000_000} MB CSV, dry run, a process of its own", FreshMemoryCsv);
                Memory($"{MemoryXlsxBytes / 1_000_000} MB xlsx, dry run, a process of its own", FreshMemoryXlsx);
            }

            if (OverheadJob.Count > 0 && OverheadGet.Count > 0)
            {
                Console.WriteLine();
                Console.WriteLine(string.Create(inv, $"{"engine overhead, " + OverheadJob.Count + " runs (interleaved)",-56} {"p50",9} {"p99",9}"));
                Console.WriteLine(string.Create(inv,
                    $"{"1-row CSV import, dry run: request to succeeded",-56} {Statistics.Ms(Statistics.Percentile(OverheadJob, 50)),9} {Statistics.Ms(Statistics.Percentile(OverheadJob, 99)),9}"));
                Console.WriteLine(string.Create(inv,
                    $"{"  baseline: GET /api/v1/me",-56} {Statistics.Ms(Statistics.Percentile(OverheadGet, 50)),9} {Statistics.Ms(Statistics.Percentile(OverheadGet, 99)),9}"));
            }

            if (Resume is { } r)
            {
                Console.WriteLine();
                Console.WriteLine(string.Create(inv, $"kill-and-resume, {r.Rows:N0} items (MessageVisibilityTimeout {ResumeVisibility.TotalSeconds:0} s for this figure)"));
                Console.WriteLine(string.Create(inv, $"  killed (SIGKILL) with {r.AtKill:N0} items stored ({100.0 * r.AtKill / r.Rows:0} %)"));
                var verdict = r.Items == r.Rows && r.Skus == r.Rows && r.Succeeded == r.Rows ? "exactly once" : "MISMATCH";
                Console.WriteLine(string.Create(inv,
                    $"  job {r.Status}: succeeded {r.Succeeded:N0}, failed {r.Failed:N0}; item rows {r.Items:N0}, SKU rows {r.Skus:N0}, rows in the file {r.Rows:N0}: {verdict}"));
                Console.WriteLine(string.Create(inv,
                    $"  after the kill: new process live {r.Up.TotalSeconds:0.0} s, items growing again {r.Progressing.TotalSeconds:0.0} s (the pause), job finished {r.Finished.TotalSeconds:0.0} s"));
            }

            void Import(string name, JobRun? app, string baseline, TimeSpan? raw)
            {
                if (raw is { } r)
                {
                    Line(baseline, r.TotalSeconds, "");
                }

                if (app is { } a)
                {
                    Line(name, a.Seconds, Phases(a));
                    Ratio(name[..name.IndexOf(' ', StringComparison.Ordinal)] + " import", raw!.Value.TotalSeconds, a.Seconds);
                }
            }

            void Rounds(string name, List<double> ratios)
            {
                if (ratios.Count > 1)
                {
                    Console.WriteLine(string.Create(inv,
                        $"  {name} import over {ratios.Count} rounds (raw, then import, each round in a tenant of its own): {string.Join(", ", ratios.Select(r => (100 * r).ToString("0", inv) + " %"))}; median {100 * Statistics.Median(ratios):0} % of the raw rate (goal >= 70 %)"));
                }
            }

            void Relayed(string name, TimeSpan? after)
            {
                if (after is { } a)
                {
                    Console.WriteLine(string.Create(inv, $"{name,-56} {a.TotalSeconds,9:0.0}"));
                }
            }

            void Line(string name, double seconds, string phases) =>
                Console.WriteLine(string.Create(inv, $"{name,-56} {seconds,9:0.0} {rows / seconds,9:0}   {phases}"));

            void Ratio(string name, double raw, double app) =>
                Console.WriteLine(string.Create(inv, $"  {name}: {100 * raw / app:0} % of the raw rate (goal >= 70 %)"));

            void Memory(string name, MemoryFigure? m)
            {
                if (m is not null)
                {
                    Console.WriteLine(string.Create(inv,
                        $"{name + (m.Reset ? " (VmHWM, reset before)" : " (VmRSS sampled every 50 ms)"),-56} {m.Job.Succeeded,9:N0} {m.Job.Seconds,9:0.0} {m.Before / 1048576.0,6:0} MiB {m.Peak / 1048576.0,6:0} MiB = {m.Peak / 1e6:0} MB ({(m.Peak < 400e6 ? "under" : "OVER")} the goal)"));
                }
            }

            static string Phases(JobRun run) => string.Create(CultureInfo.InvariantCulture,
                $"upload {run.Posted:0.0} s, split {run.Split - run.Posted:0.0} s, apply {run.Applied - run.Split:0.0} s, finish {run.Seconds - run.Applied:0.0} s");
        }
    }
}
