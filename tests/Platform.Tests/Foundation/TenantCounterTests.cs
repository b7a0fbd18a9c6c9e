using Azure.Data.Tables;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>A tenant's count against a cap is split over shards that commit in parallel, and the cap still holds exactly.</summary>
public sealed class TenantCounterTests(Azurite azurite) : IAsyncLifetime
{
    private const string Table = "counted";
    private const string Key = "~count:things";
    private static readonly TenantId Tenant = new("01TENANTCOUNT");
    private readonly string _prefix = PlatformApp.NewPrefix();
    private StorageAccount _storage = null!;
    private long _cap;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _storage = PlatformApp.StorageFor(azurite, _prefix);
        await _storage.Table(Table).CreateIfNotExistsAsync(Ct);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private TenantPartition Partition => _storage.TenantTable(Table).For(Tenant);

    /// <summary>A counter as one app instance holds it: each remembers the shard rows it wrote.</summary>
    private TenantCounter NewInstance() =>
        new(tenant => _storage.TenantTable(Table).For(tenant), Key, async (partition, ct) => await partition.QueryAsync<TableEntity>("x:", cancellationToken: ct).CountAsync(ct), () => _cap);

    private static async Task<bool> AddUnderCapAsync(TenantCounter counter, string id, long cap) =>
        await counter.SubmitAsync(Tenant, count => count >= cap ? null : new([new(TableTransactionActionType.Add, new TableEntity { RowKey = "x:" + id })], +1), Ct) is not null;

    private async Task<int> StoredAsync() => await Partition.QueryAsync<TableEntity>("x:", cancellationToken: Ct).CountAsync(Ct);

    [Fact]
    public async Task ParallelCreatesOnTwoInstancesStopExactlyAtTheCap()
    {
        _cap = 20;
        var one = NewInstance();
        var two = NewInstance();

        var results = await Task.WhenAll(Enumerable.Range(0, 60).Select(i => AddUnderCapAsync(i % 2 == 0 ? one : two, $"{i:D3}", _cap)));

        Assert.Equal(20, results.Count(r => r));
        Assert.Equal(20, await StoredAsync());
        Assert.Equal(20, await one.ReadAsync(Tenant, Ct));
    }

    [Fact]
    public async Task WritersInFlightTogetherCommitOnSeveralShards()
    {
        _cap = 1000;
        var counter = NewInstance();

        await Task.WhenAll(Enumerable.Range(0, 24).Select(i => AddUnderCapAsync(counter, $"{i:D3}", _cap)));

        var shards = await Partition.QueryAsync<TableEntity>(Key + ":", cancellationToken: Ct).ToListAsync(Ct);
        Assert.Equal(TenantCounter.Shards, shards.Count);
        Assert.True(shards.Count(s => s.GetInt64("Count") > 0) > 1, "every create went through one shard");
        Assert.Equal(24, shards.Sum(s => s.GetInt64("Count")));
        Assert.True(shards.Sum(s => s.GetInt64("Quota")) <= _cap);
    }

    [Fact]
    public async Task ACapRaisedOrLoweredAppliesToTheWholeTenant()
    {
        _cap = 5;
        var counter = NewInstance();
        for (var i = 0; i < 7; i++)
        {
            await AddUnderCapAsync(counter, $"a{i}", _cap);
        }

        Assert.Equal(5, await StoredAsync());

        _cap = 8;
        for (var i = 0; i < 5; i++)
        {
            await AddUnderCapAsync(counter, $"b{i}", _cap);
        }

        Assert.Equal(8, await StoredAsync());

        // Lowered below the count: nothing more until deletes bring the tenant under it.
        _cap = 4;
        Assert.False(await AddUnderCapAsync(counter, "c0", _cap));
        var stored = await Partition.QueryAsync<TableEntity>("x:", cancellationToken: Ct).ToListAsync(Ct);
        foreach (var row in stored.Take(5))
        {
            await counter.SubmitAsync(Tenant, _ => new([new(TableTransactionActionType.Delete, row, row.ETag)], -1), Ct);
        }

        Assert.True(await AddUnderCapAsync(counter, "c1", _cap));
        Assert.False(await AddUnderCapAsync(counter, "c2", _cap));
        Assert.Equal(4, await counter.ReadAsync(Tenant, Ct));
    }

    [Fact]
    public async Task ATenantCountedInOneRowBeforeShardsKeepsItsCount()
    {
        _cap = 10;
        for (var i = 0; i < 7; i++)
        {
            await Partition.AddAsync(new TableEntity { RowKey = $"x:old{i}" }, Ct);
        }

        await Partition.AddAsync(new TableEntity { RowKey = Key, ["Count"] = 7L }, Ct);
        var counter = NewInstance();

        var added = 0;
        for (var i = 0; i < 5; i++)
        {
            added += await AddUnderCapAsync(counter, $"new{i}", _cap) ? 1 : 0;
        }

        Assert.Equal(3, added);
        Assert.Equal(10, await counter.ReadAsync(Tenant, Ct));
    }
}
