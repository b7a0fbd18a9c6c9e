using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Time.Testing;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>Writes to logged rows carry their change-log entry in the same transaction, whatever the write path.</summary>
public sealed class ChangeLogTests(Azurite azurite) : IAsyncLifetime
{
    private const string Table = "logged";
    private static readonly TenantId TenantA = new("01TENANTA");
    private static readonly TenantId TenantB = new("01TENANTB");
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 23, 9, 0, 0, TimeSpan.Zero));
    private readonly string _prefix = PlatformApp.NewPrefix();
    private TenantTable _table = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var layout = new StorageLayout();
        layout.ChangeLogged[Table] = ["x:"];
        var storage = PlatformApp.StorageFor(azurite, _prefix, layout, _clock);
        await storage.Table(Table).CreateIfNotExistsAsync(Ct);
        _table = storage.TenantTable(Table);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async Task<List<ChangeEntity>> EntriesAsync(TenantId tenant) =>
        await ChangeLog.ReadSinceAsync(_table.For(tenant), DateTimeOffset.UnixEpoch, Ct).ToListAsync(Ct);

    [Fact]
    public async Task EveryWriteOfALoggedRowIsLoggedAndOthersAreNot()
    {
        var partition = _table.For(TenantA);
        var row = new TableEntity { RowKey = "x:1", ["Name"] = "one" };
        await partition.AddAsync(row, Ct);
        row["Name"] = "two";
        await partition.UpdateAsync(row, row.ETag, Ct);
        await partition.UpsertAsync(new TableEntity { RowKey = "x:2" }, Ct);
        await partition.DeleteAsync("x:2", cancellationToken: Ct);
        await partition.AddAsync(new TableEntity { RowKey = "y:1" }, Ct);
        await partition.SubmitTransactionAsync(
            [new(TableTransactionActionType.Add, new TableEntity { RowKey = "x:3" }), new(TableTransactionActionType.Add, new TableEntity { RowKey = "y:2" })], Ct);

        var entries = await EntriesAsync(TenantA);

        // Entries of one millisecond come in any order; readers only need the set.
        Assert.Equal(["x:1", "x:1", "x:2", "x:2", "x:3"], entries.SelectMany(e => e.ChangedKeys()).Order(StringComparer.Ordinal));
        Assert.Empty(await EntriesAsync(TenantB));
    }

    [Fact]
    public async Task AFailedWriteLeavesNoEntryAndKeepsItsStatus()
    {
        var partition = _table.For(TenantA);
        var row = new TableEntity { RowKey = "x:stale" };
        await partition.AddAsync(row, Ct);
        var stale = row.ETag;
        await partition.UpdateAsync(row, row.ETag, Ct);

        var refused = await Assert.ThrowsAnyAsync<RequestFailedException>(() => partition.UpdateAsync(row, stale, Ct));
        var duplicate = await Assert.ThrowsAnyAsync<RequestFailedException>(() => partition.AddAsync(new TableEntity { RowKey = "x:stale" }, Ct));

        Assert.Equal(412, refused.Status);
        Assert.Equal(409, duplicate.Status);
        Assert.Equal(2, (await EntriesAsync(TenantA)).Count);
    }

    [Fact]
    public async Task ATransactionOfLoggedRowsLeavesRoomForItsEntry()
    {
        var full = Enumerable.Range(0, 100).Select(i => new TableTransactionAction(TableTransactionActionType.Add, new TableEntity { RowKey = $"x:{i:D3}" })).ToList();

        await Assert.ThrowsAsync<InvalidOperationException>(() => _table.For(TenantA).SubmitTransactionAsync(full, Ct));
        await _table.For(TenantA).SubmitTransactionAsync(full[..99], Ct);

        Assert.Equal(99, Assert.Single(await EntriesAsync(TenantA)).ChangedKeys().Length);
    }

    [Fact]
    public async Task EntriesOlderThanTheRetentionAreTrimmedByLaterWrites()
    {
        var partition = _table.For(TenantA);
        await partition.AddAsync(new TableEntity { RowKey = "x:old" }, Ct);
        _clock.Advance(ChangeLog.Retention + ChangeLog.TrimEvery);

        await partition.AddAsync(new TableEntity { RowKey = "x:new" }, Ct);

        Assert.Equal(["x:new"], (await EntriesAsync(TenantA)).SelectMany(e => e.ChangedKeys()));
    }

    [Fact]
    public async Task EntriesAreReadFromAMomentOn()
    {
        var partition = _table.For(TenantA);
        await partition.AddAsync(new TableEntity { RowKey = "x:before" }, Ct);
        _clock.Advance(TimeSpan.FromMinutes(1));
        var since = _clock.GetUtcNow();
        await partition.AddAsync(new TableEntity { RowKey = "x:after" }, Ct);

        var entries = await ChangeLog.ReadSinceAsync(partition, since, Ct).ToListAsync(Ct);

        Assert.Equal(["x:after"], entries.SelectMany(e => e.ChangedKeys()));
    }
}
