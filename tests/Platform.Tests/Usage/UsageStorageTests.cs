using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Storage;
using Platform.Functions.Usage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Usage;

/// <summary>
/// The stored form of usage against real Azurite, at sizes HTTP traffic of a test cannot reach: a minute whose slices
/// need several 60 KB properties, several rows and several transactions comes back whole, histograms included.
/// </summary>
public sealed class UsageStorageTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    [Fact]
    public async Task AMinuteOfManyKeysIsSplitAcrossPropertiesRowsAndTransactionsAndReadBackWhole()
    {
        var store = App.Services.GetRequiredService<UsageStore>();
        var tenant = new TenantId(Tenant.Id);
        var minute = UsageStore.Floor(Clock.GetUtcNow(), TimeSpan.FromMinutes(1));
        var random = new Random(19);
        var slices = new List<UsageSlice>();
        var expected = new UsageSlice("all", "all");
        for (var i = 0; i < 6000; i++)
        {
            var slice = new UsageSlice($"apikey:K{i % 500}", $"GET /api/v1/things{i / 500}/{{id}}");
            for (var j = 0; j < 1000; j++)
            {
                slice.Latency.RecordValue(random.Next(50, 5_000_000));
            }

            slice.Counts[0] = 300;
            slice.Counts[2] = 70;
            slice.Counts[3] = 30;
            slices.Add(slice);
            expected.Add(slice);
        }

        var rows = UsageRows.Pack(slices, part => $"{UsageRows.MinuteKey(minute)}:test:{part}");
        Assert.True(rows.Count >= 3, $"{rows.Count} rows of {rows.Sum(UsageRows.SizeOf)} bytes");
        Assert.Contains(rows, r => r.ContainsKey("D1"));
        Assert.True(rows.Sum(UsageRows.SizeOf) > UsageRows.MaxTransactionBytes, "more than one transaction's worth");

        await store.WriteAsync(tenant, rows, TestContext.Current.CancellationToken);

        var read = await store.ReadAsync(tenant, minute, minute.AddMinutes(1), () => new List<(DateTimeOffset Period, UsageSlice Slice)>(),
            (read, period, slice) => read.Add((period, slice)), TestContext.Current.CancellationToken);
        Assert.Equal(slices.Count, read.Count);
        Assert.All(read, r => Assert.Equal(minute, r.Period));
        Assert.Equal(slices.Select(s => (s.Caller, s.Endpoint)).Order(), read.Select(r => (r.Slice.Caller, r.Slice.Endpoint)).Order());
        var total = new UsageSlice("all", "all");
        foreach (var (_, slice) in read)
        {
            total.Add(slice);
        }

        Assert.Equal(expected.Counts, total.Counts);
        Assert.Equal(expected.Latency.TotalCount, total.Latency.TotalCount);
        foreach (var percentile in new[] { 50.0, 95, 99 })
        {
            Assert.Equal(expected.Latency.GetValueAtPercentile(percentile), total.Latency.GetValueAtPercentile(percentile));
        }

        // The minute before and after it hold nothing.
        Assert.Empty(await store.ReadAsync(tenant, minute.AddMinutes(1), minute.AddMinutes(2), () => new List<UsageSlice>(), (o, _, slice) => o.Add(slice), TestContext.Current.CancellationToken));
        Assert.Empty(await store.ReadAsync(tenant, minute.AddMinutes(-1), minute, () => new List<UsageSlice>(), (o, _, slice) => o.Add(slice), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task AReadWhileTheRollupMergesMinutesIntoHoursCountsEveryRequestOnce()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = App.Services.GetRequiredService<UsageStore>();
        var tenant = new TenantId(Tenant.Id);
        var thisHour = UsageStore.Floor(Clock.GetUtcNow(), TimeSpan.FromHours(1));
        var from = thisHour.AddHours(-12);

        // Twelve past hours of minute rows, one request each, as flushes of one instance would leave them.
        var rows = new List<Azure.Data.Tables.TableEntity>();
        for (var minute = from; minute < thisHour; minute = minute.AddMinutes(3))
        {
            var slice = new UsageSlice("apikey:K1", "GET /api/v1/users");
            slice.Counts[0] = 1;
            slice.Latency.RecordValue(1000);
            rows.AddRange(UsageRows.Pack([slice], part => $"{UsageRows.MinuteKey(minute)}:race:{part}"));
        }

        await store.WriteAsync(tenant, rows, ct);

        async Task<long> RequestsAsync() =>
            (await store.ReadAsync(tenant, from, thisHour, () => new long[1], (total, _, slice) => total[0] += slice.Requests, ct))[0];

        Assert.Equal(rows.Count, await RequestsAsync());

        // Reads go on for as long as the rollup runs (twelve merges, each a read and a transaction); each one sees
        // every request exactly once, whether before, during or after a merge.
        await using var scope = App.Services.CreateAsyncScope();
        var rollup = scope.ServiceProvider.GetRequiredService<UsageRollup>().RollUpAsync(tenant, thisHour, ct);
        var seen = new List<long>();
        while (!rollup.IsCompleted)
        {
            seen.Add(await RequestsAsync());
        }

        Assert.Equal(rows.Count, await rollup);
        seen.Add(await RequestsAsync());
        Assert.All(seen, requests => Assert.Equal(rows.Count, requests));
    }
}
