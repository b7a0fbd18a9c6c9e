using Azure.Data.Tables;
using Azure;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>Tenant rows are reachable only through a partition pinned to one tenant.</summary>
public sealed class TenantPartitionTests(Azurite azurite) : IAsyncLifetime
{
    private static readonly TenantId TenantA = new("01TENANTA");
    private static readonly TenantId TenantB = new("01TENANTB");
    private readonly TenantTable _table = PlatformApp.StorageFor(azurite, PlatformApp.NewPrefix()).TenantTable("partitiontests");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() =>
        await PlatformApp.StorageFor(azurite, "").TableService.CreateTableIfNotExistsAsync(_table.Name, Ct);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task CannotReadRowsOfAnotherTenant()
    {
        var job = new SampleRow { RowKey = Ids.New(), Type = "export" };
        await _table.For(TenantA).AddAsync(job, Ct);

        Assert.NotNull(await _table.For(TenantA).GetAsync<SampleRow>(job.RowKey, Ct));
        Assert.Null(await _table.For(TenantB).GetAsync<SampleRow>(job.RowKey, Ct));
        Assert.Empty(await _table.For(TenantB).QueryAsync<SampleRow>(cancellationToken: Ct).ToListAsync(Ct));
        Assert.Empty(await _table.For(TenantB).QueryAsync<SampleRow>(job.RowKey[..5], cancellationToken: Ct).ToListAsync(Ct));
    }

    [Fact]
    public async Task CannotWriteAnEntityOfAnotherTenantThroughAPartition()
    {
        var job = new SampleRow { PartitionKey = TenantA.Value, RowKey = Ids.New(), Type = "export" };

        await Assert.ThrowsAsync<InvalidOperationException>(() => _table.For(TenantB).AddAsync(job, Ct));
        await Assert.ThrowsAsync<InvalidOperationException>(() => _table.For(TenantB).SubmitTransactionAsync(
            [new TableTransactionAction(TableTransactionActionType.Add, job)], Ct));
    }

    [Fact]
    public async Task RowKeyPrefixQueryStaysInsideTheTenant()
    {
        await _table.For(TenantA).AddAsync(new SampleRow { RowKey = "report-1", Type = "a" }, Ct);
        await _table.For(TenantA).AddAsync(new SampleRow { RowKey = "report-2", Type = "a" }, Ct);
        await _table.For(TenantA).AddAsync(new SampleRow { RowKey = "reportz", Type = "a" }, Ct);
        await _table.For(TenantB).AddAsync(new SampleRow { RowKey = "report-3", Type = "b" }, Ct);

        var rows = await _table.For(TenantA).QueryAsync<SampleRow>("report-", cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal(["report-1", "report-2"], rows.Select(r => r.RowKey));
    }

    [Fact]
    public async Task ConditionalUpdateWithAStaleETagIsRefused()
    {
        var partition = _table.For(TenantA);
        var job = new SampleRow { RowKey = Ids.New(), Type = "export" };
        await partition.AddAsync(job, Ct);
        var stale = job.ETag;
        job.Attempts = 1;
        await partition.UpdateAsync(job, job.ETag, Ct);

        job.Attempts = 2;
        var refused = await Assert.ThrowsAsync<Azure.RequestFailedException>(() => partition.UpdateAsync(job, stale, Ct));

        Assert.Equal(412, refused.Status);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a'b")]
    [InlineData("tenant or true")]
    [InlineData("a/b")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123X")]
    public void TenantIdRefusesAnythingButLettersAndDigits(string value)
    {
        Assert.Throws<ArgumentException>(() => new TenantId(value));
        Assert.False(TenantId.TryParse(value, out _));
    }
}

/// <summary>A row of a tenant table, for tests of the partition guard itself.</summary>
public sealed class SampleRow : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }
    public string Type { get; set; } = "";
    public int Attempts { get; set; }
}
