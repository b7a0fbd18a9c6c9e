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

        var read = new List<(DateTimeOffset Period, UsageSlice Slice)>();
        await store.ReadAsync(tenant, minute, minute.AddMinutes(1), (period, slice) => read.Add((period, slice)), TestContext.Current.CancellationToken);
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
        var outside = 0;
        await store.ReadAsync(tenant, minute.AddMinutes(1), minute.AddMinutes(2), (_, _) => outside++, TestContext.Current.CancellationToken);
        await store.ReadAsync(tenant, minute.AddMinutes(-1), minute, (_, _) => outside++, TestContext.Current.CancellationToken);
        Assert.Equal(0, outside);
    }
}
