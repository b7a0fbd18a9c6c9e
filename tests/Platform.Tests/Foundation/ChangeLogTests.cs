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
        var storage = PlatformApp.StorageFor(azurite, _prefix, Layout(), _clock);
        await storage.Table(Table).CreateIfNotExistsAsync(Ct);
        _table = storage.TenantTable(Table);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static StorageLayout Layout()
    {
        var layout = new StorageLayout();
        layout.ChangeLogged[Table] = ["x:"];
        return layout;
    }

    private async Task<List<ChangeEntity>> EntriesAsync(TenantId tenant) =>
        await ChangeLog.ReadAllAsync(_table.For(tenant), Ct).ToListAsync(Ct);

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
        Assert.Equal([1L, 2, 3, 4, 5], entries.Select(e => e.Sequence));
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
    public async Task ATransactionOfLoggedRowsLeavesRoomForItsEntryAndTheSequenceRow()
    {
        var full = Enumerable.Range(0, 99).Select(i => new TableTransactionAction(TableTransactionActionType.Add, new TableEntity { RowKey = $"x:{i:D3}" })).ToList();

        await Assert.ThrowsAsync<InvalidOperationException>(() => _table.For(TenantA).SubmitTransactionAsync(full, Ct));
        await _table.For(TenantA).SubmitTransactionAsync(full[..98], Ct);

        Assert.Equal(98, Assert.Single(await EntriesAsync(TenantA)).ChangedKeys().Length);
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
    public async Task EntriesAreReadAfterANumber()
    {
        var partition = _table.For(TenantA);
        await partition.AddAsync(new TableEntity { RowKey = "x:before" }, Ct);
        var seen = await ChangeLog.PositionAsync(partition, Ct);
        await partition.AddAsync(new TableEntity { RowKey = "x:after" }, Ct);

        var read = await ChangeLog.Read(partition, seen, "x:", 100, Ct);

        Assert.Equal(1, seen.Total);
        Assert.Equal(["x:after"], read!.Value.Keys);
        Assert.Equal(2, read.Value.Last.Total);
    }

    [Fact]
    public async Task InstancesWritingInTurnNumberEveryWriteOnceWithoutHoles()
    {
        // Each instance remembers the sequence row it last wrote; the other's writes make that stale, and the stale
        // write must be renumbered, not refused or given a number already taken.
        var other = PlatformApp.StorageFor(azurite, _prefix, Layout(), _clock).TenantTable(Table).For(TenantA);
        var partition = _table.For(TenantA);
        for (var i = 0; i < 6; i++)
        {
            await (i % 2 == 0 ? partition : other).AddAsync(new TableEntity { RowKey = $"x:{i}" }, Ct);
        }

        await Task.WhenAll(Enumerable.Range(6, 20).Select(i => (i % 2 == 0 ? partition : other).AddAsync(new TableEntity { RowKey = $"x:{i}" }, Ct)));

        var entries = await EntriesAsync(TenantA);
        Assert.Equal(26, entries.Count);
        Assert.All(entries.GroupBy(e => e.Lane), lane => Assert.Equal(Enumerable.Range(1, lane.Count()).Select(n => (long)n), lane.Select(e => e.Sequence)));
        Assert.Equal(26, entries.SelectMany(e => e.ChangedKeys()).Distinct().Count());
        Assert.Equal(26, (await ChangeLog.PositionAsync(partition, Ct)).Total);
    }

    [Fact]
    public async Task ConcurrentWritersOfOneTenantCommitInParallelLanes()
    {
        // One sequence row serialized every logged write of a tenant; writers in flight together now take free lanes.
        var partition = _table.For(TenantA);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => partition.AddAsync(new TableEntity { RowKey = $"x:{i}" }, Ct)));

        var entries = await EntriesAsync(TenantA);
        Assert.True(entries.Select(e => e.Lane).Distinct().Count() > 1, "all writes went through one lane");
        Assert.All(entries.GroupBy(e => e.Lane), lane => Assert.Equal(Enumerable.Range(1, lane.Count()).Select(n => (long)n), lane.Select(e => e.Sequence)));

        var read = await ChangeLog.Read(partition, LogPosition.Start, "x:", 100, Ct);
        Assert.Equal(20, read!.Value.Keys.Count);
    }

    [Fact]
    public async Task AReaderFindsAHoleInAnyLaneAndReloads()
    {
        var partition = _table.For(TenantA);
        await Task.WhenAll(Enumerable.Range(0, 6).Select(i => partition.AddAsync(new TableEntity { RowKey = $"x:{i}" }, Ct)));
        var entries = await EntriesAsync(TenantA);
        var victim = entries.First(e => e.Sequence == 1);
        var raw = PlatformApp.StorageFor(azurite, _prefix, Layout(), _clock).Table(Table);
        await raw.DeleteEntityAsync(TenantA.Value, victim.RowKey, cancellationToken: Ct);

        Assert.Null(await ChangeLog.Read(partition, LogPosition.Start, "x:", 100, Ct));
    }

    [Fact]
    public async Task MoreThanAThousandExpiredEntriesAreAllTrimmed()
    {
        // A trim used to stop after 1,000 entries per 10 minutes: sustained writes outgrew it and the log grew forever.
        var partition = _table.For(TenantA);
        for (var i = 0; i < 1250; i++)
        {
            await partition.UpsertAsync(new TableEntity { RowKey = "x:busy", ["N"] = i }, Ct);
        }

        _clock.Advance(ChangeLog.Retention + ChangeLog.TrimEvery);
        await partition.AddAsync(new TableEntity { RowKey = "x:later" }, Ct);

        var left = await EntriesAsync(TenantA);
        Assert.Equal(["x:later"], left.SelectMany(e => e.ChangedKeys()));
        Assert.Equal(1251, Assert.Single(left).Sequence);
    }

    [Fact]
    public async Task TrimmingKeepsPaceWithWritesWithoutWaitingForItsTimer()
    {
        var partition = _table.For(TenantA);
        for (var i = 0; i < 150; i++)
        {
            await partition.UpsertAsync(new TableEntity { RowKey = "x:busy", ["N"] = i }, Ct);
        }

        // The timer's trim runs a minute before those entries expire; the next is ten minutes away, so whatever
        // expires in between must go with the writes themselves.
        _clock.Advance(ChangeLog.Retention - TimeSpan.FromMinutes(1));
        await partition.AddAsync(new TableEntity { RowKey = "x:trigger" }, Ct);
        _clock.Advance(TimeSpan.FromMinutes(2));
        for (var i = 0; i < 250; i++)
        {
            await partition.UpsertAsync(new TableEntity { RowKey = "x:busy", ["N"] = i }, Ct);
        }

        // Number 200 and 300 each trimmed the expired entries; the 251 written since stay.
        var left = await EntriesAsync(TenantA);
        Assert.Equal(Enumerable.Range(151, 251).Select(n => (long)n), left.Select(e => e.Sequence));
    }
}
