using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Platform.Functions.Auth;
using Platform.Functions.Backups;
using Platform.Functions.Hosting;
using Platform.Functions.Inventory;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Benchmarks;

/// <summary>
/// <c>backups [users=100000] [items=100000]</c>: one tenant of that many users and items (rows shaped as the app writes
/// them, seeded as for the reports figure). Backup rows/s of its users and inventory tables (a consistent snapshot:
/// scan, gzip, seal, then the change-log and key/ETag reconciling) next to a raw SDK scan of the same partitions;
/// restore rows/s of those parts into a new tenant (open, check, upsert in 98-row transactions through the change log)
/// next to raw SDK 100-row transactions of the same rows, one at a time like the restore; stored bytes per 1,000 rows;
/// verify MB/s of stored bytes. In-process, from the app's own composition; the job's orchestration is not timed.
/// Goal (issue 20): backup and restore at least 60 % of their baselines.
/// </summary>
internal static class BackupsFigure
{
    public static async Task<int> RunAsync(string[] args)
    {
        var users = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100_000;
        var items = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100_000;
        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (string.IsNullOrEmpty(storage) || users < 1 || items < 1)
        {
            await Console.Error.WriteLineAsync("usage: backups [users=100000] [items=100000]; set AzureWebJobsStorage (infra/bench/backups.sh does)");
            return 2;
        }

        var prefix = "backups" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
        var preload = TablePreload.FromEnvironment(http);
        await using var app = BuildApp(storage, prefix);
        var account = app.Services.GetRequiredService<StorageAccount>();
        await account.Table(UserDirectory.TableName).CreateIfNotExistsAsync();
        await account.Table(InventoryStore.TableName).CreateIfNotExistsAsync();
        await account.Container(BackupStore.ContainerName).CreateIfNotExistsAsync();
        await account.Table(BackupStore.TableName).CreateIfNotExistsAsync();

        var tenant = new TenantId(Ids.New());
        var seeding = Stopwatch.StartNew();
        await ReportsFigure.SeedUsersAsync(account.Table(UserDirectory.TableName), preload, tenant.Value, users, DateTimeOffset.UtcNow);
        await ReportsFigure.SeedInventoryAsync(account.Table(InventoryStore.TableName), preload, tenant.Value, items, 0, DateTimeOffset.UtcNow);
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"backups: seeded in {seeding.Elapsed.TotalSeconds:0} s"));
        string[] tables = [UserDirectory.TableName, InventoryStore.TableName];

        // Baseline 1: the SDK scanning the same partitions, rows kept in memory for the insert baseline.
        var rows = new Dictionary<string, List<TableEntity>>(StringComparer.Ordinal);
        var scan = Stopwatch.StartNew();
        foreach (var table in tables)
        {
            rows[table] = [];
            await foreach (var row in account.Table(table).QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {tenant.Value}"), maxPerPage: 1000))
            {
                rows[table].Add(row);
            }
        }

        scan.Stop();
        var total = rows.Values.Sum(r => r.Count);

        // The backup of the same tables.
        var store = app.Services.GetRequiredService<BackupStore>();
        var files = app.Services.GetRequiredService<BackupFiles>();
        var backupId = Ids.New();
        var (key, wrapped) = store.NewKey(tenant, backupId);
        await store.Rows(tenant).AddAsync(new BackupEntity { RowKey = BackupEntity.KeyFor(backupId), Id = backupId, Status = BackupEntity.Succeeded, CreatedAt = DateTimeOffset.UtcNow, WrappedKey = wrapped });
        var parts = new List<BackupPart>();
        var backup = Stopwatch.StartNew();
        foreach (var table in tables)
        {
            parts.Add(await files.WriteTableAsync(tenant, backupId, key, table, CancellationToken.None));
        }

        backup.Stop();
        var backedUp = parts.Sum(p => p.Count);
        var stored = parts.Sum(p => p.Bytes);

        var verify = Stopwatch.StartNew();
        foreach (var part in parts)
        {
            await files.VerifyPartAsync(tenant, backupId, key, part, CancellationToken.None);
        }

        verify.Stop();

        // The restore of those parts into a new tenant, as the restore job's activity writes them.
        var restored = 0L;
        var target = Ids.New();
        var restore = Stopwatch.StartNew();
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var activity = ActivatorUtilities.CreateInstance<RestorePart>(scope.ServiceProvider);
            var step = new RestoreStepInput(tenant.Value, backupId, target, "bench-sandbox", DateTimeOffset.UtcNow);
            foreach (var part in parts)
            {
                restored += await activity.RunAsync(null!, new RestorePartInput(step, part));
            }
        }

        restore.Stop();

        // Baseline 2: the SDK inserting the same rows in 100-row transactions, one at a time.
        var other = Ids.New();
        var insert = Stopwatch.StartNew();
        foreach (var (table, list) in rows)
        {
            var client = account.Table(table);
            foreach (var chunk in list.Chunk(100))
            {
                await client.SubmitTransactionAsync(chunk.Select(r =>
                {
                    var copy = new TableEntity(r) { PartitionKey = other, RowKey = r.RowKey };
                    return new TableTransactionAction(TableTransactionActionType.UpsertReplace, copy);
                }));
            }
        }

        insert.Stop();

        if (backedUp != total || restored != total)
        {
            throw new InvalidOperationException($"rows: {total} scanned, {backedUp} backed up, {restored} restored");
        }

        double PerSecond(long n, Stopwatch s) => n / s.Elapsed.TotalSeconds;
        var scanRate = PerSecond(total, scan);
        var backupRate = PerSecond(total, backup);
        var insertRate = PerSecond(total, insert);
        var restoreRate = PerSecond(total, restore);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
            backups: one tenant of {users:N0} users and {items:N0} items ({total:N0} rows in users + inventory), {Environment.ProcessorCount} cores, rows {(preload is null ? "written with the SDK" : "preloaded")}
              baseline  SDK scan of the partitions       {scanRate,10:N0} rows/s  ({scan.Elapsed.TotalSeconds:0.0} s)
              backup    snapshot, gzip, seal              {backupRate,10:N0} rows/s  ({backup.Elapsed.TotalSeconds:0.0} s)  {backupRate / scanRate:P0} of baseline (goal >= 60 %)
              baseline  SDK 100-row transactions          {insertRate,10:N0} rows/s  ({insert.Elapsed.TotalSeconds:0.0} s)
              restore   open, check, 98-row transactions  {restoreRate,10:N0} rows/s  ({restore.Elapsed.TotalSeconds:0.0} s)  {restoreRate / insertRate:P0} of baseline (goal >= 60 %)
              size      {stored:N0} bytes stored, {stored * 1000.0 / total:N0} bytes per 1,000 rows
              verify    {stored / 1e6 / verify.Elapsed.TotalSeconds:0.0} MB/s of stored bytes ({verify.Elapsed.TotalSeconds:0.0} s)
            """));
        return 0;
    }

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
            ["Platform:Auth:SigningKey"] = ECDsa.Create(ECCurve.NamedCurves.nistP256).ExportPkcs8PrivateKeyPem(),
        });
        builder.AddPlatformHosting();
        builder.AddPlatformStorage();
        builder.Services.AddMemoryCache();
        builder.Services.AddValidatedOptions<AuthOptions>(AuthOptions.Section);
        builder.Services.AddSingleton<KeyMaterial>();
        builder.AddUsers();
        builder.AddInventory();
        // The backup reads the tenant's own row through the tenants capability (its directory table).
        builder.Services.AddStorageTable(Platform.Functions.Tenants.TenantDirectory.TableName);
        builder.Services.AddSingleton<Platform.Functions.Tenants.TenantDirectory>();
        // A part restored into a new tenant re-seals what is sealed to the tenant (TOTP seeds), as in the app.
        builder.Services.AddSingleton<SecretBox>();
        builder.Services.AddSingleton<Mfa>();
        builder.Services.AddSingleton<ISandboxResealer, Platform.Functions.Users.TotpResealer>();
        builder.Services.AddSingleton<BackupStore>();
        builder.Services.AddSingleton<BackupFiles>();
        return builder.Build();
    }
}
