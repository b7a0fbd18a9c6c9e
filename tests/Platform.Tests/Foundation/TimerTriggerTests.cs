using System.Text.Json;
using Azure.Data.Tables;
using Cronos;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>The standalone timer runtime: one firing per occurrence across instances, and past-due runs after downtime.</summary>
public sealed class TimerTriggerTests(Azurite azurite)
{
    private const string FiringsTable = "firings";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EachOccurrenceRunsOnceWhenTwoInstancesShareStorageAndTheSurvivorTakesOver()
    {
        var prefix = PlatformApp.NewPrefix();
        var first = await StartAsync(prefix, "EverySecond", "* * * * * *");
        var second = await StartAsync(prefix, "EverySecond", "* * * * * *");
        var firings = first.Storage.Table(FiringsTable);

        var early = await Eventually.Until(() => ReadFirings(firings), f => f.Count >= 3, "three firings");
        var holder = early[0].Instance;
        var (stopping, surviving) = holder == Instance(first) ? (first, second) : (second, first);
        await stopping.DisposeAsync();

        var all = await Eventually.Until(() => ReadFirings(firings), f => f.Count(x => x.Instance == Instance(surviving)) >= 3,
            "three firings on the surviving instance", TimeSpan.FromSeconds(45));
        await surviving.DisposeAsync();

        Assert.All(all.GroupBy(f => f.Occurrence), occurrence => Assert.Single(occurrence));
        Assert.Equal(2, all.Select(f => f.Instance).Distinct().Count());
    }

    [Fact]
    public async Task OccurrenceMissedWhileDownRunsOnceOnStartAsPastDue()
    {
        var prefix = PlatformApp.NewPrefix();
        const string schedule = "0 0 * * * *";
        var hourly = CronExpression.Parse(schedule, CronFormat.IncludeSeconds);
        var missed = hourly.GetNextOccurrence(DateTime.UtcNow.AddHours(-3))!.Value;
        var container = PlatformApp.StorageFor(azurite, prefix).Container(TriggerExtensions.StateContainer);
        await container.CreateIfNotExistsAsync(cancellationToken: Ct);
        await container.GetBlobClient("timers/Hourly.json").UploadAsync(
            BinaryData.FromObjectAsJson(new { last = missed.AddHours(-1), next = missed, lastUpdated = missed.AddHours(-1) }), Ct);

        await using var app = await StartAsync(prefix, "Hourly", schedule);

        var firings = await Eventually.Until(() => ReadFirings(app.Storage.Table(FiringsTable)), f => f.Count >= 1, "the missed firing");
        var firing = Assert.Single(firings);
        Assert.True(firing.IsPastDue);
        var status = (await app.Storage.Container(TriggerExtensions.StateContainer).GetBlobClient("timers/Hourly.json").DownloadContentAsync(Ct))
            .Value.Content.ToObjectFromJson<JsonElement>();
        Assert.Equal(new DateTimeOffset(missed), status.GetProperty("last").GetDateTimeOffset());
        Assert.True(status.GetProperty("next").GetDateTimeOffset() > DateTimeOffset.UtcNow);
    }

    [Fact]
    public async Task AnOccurrenceCutOffMidRunRunsAgainOnTheNextScheduler()
    {
        var prefix = PlatformApp.NewPrefix();
        const string schedule = "0 0 * * * *";
        var hourly = CronExpression.Parse(schedule, CronFormat.IncludeSeconds);
        var due = hourly.GetNextOccurrence(DateTime.UtcNow.AddHours(-3))!.Value;
        var container = PlatformApp.StorageFor(azurite, prefix).Container(TriggerExtensions.StateContainer);
        await container.CreateIfNotExistsAsync(cancellationToken: Ct);
        await container.GetBlobClient("timers/Hourly.json").UploadAsync(
            BinaryData.FromObjectAsJson(new { last = due.AddHours(-1), next = due, lastUpdated = due.AddHours(-1) }), Ct);

        // The first scheduler claims the due occurrence and is shut down while its handler still runs.
        var first = await new PlatformApp(azurite, prefix, services: s =>
        {
            s.AddSingleton<RunGate>();
            s.AddTimerFunction<BlockUntilCancelled>("Hourly", schedule);
        }).ReadyAsync();
        var gate = first.Services.GetRequiredService<RunGate>();
        await gate.Started.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await first.DisposeAsync();
        Assert.True(gate.Cancelled.Task.IsCompleted);

        // The occurrence never completed, so the next scheduler runs it - once.
        await using var second = await StartAsync(prefix, "Hourly", schedule);
        var firings = await Eventually.Until(() => ReadFirings(second.Storage.Table(FiringsTable)), f => f.Count >= 1, "the cut-off occurrence to run again");
        Assert.True(Assert.Single(firings).IsPastDue);
        var status = (await container.GetBlobClient("timers/Hourly.json").DownloadContentAsync(Ct)).Value.Content.ToObjectFromJson<JsonElement>();
        Assert.Equal(new DateTimeOffset(due), status.GetProperty("last").GetDateTimeOffset());
    }

    private sealed class RunGate
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class BlockUntilCancelled(RunGate gate) : ITimerHandler
    {
        public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
        {
            gate.Started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                gate.Cancelled.TrySetResult();
                throw;
            }
        }
    }

    private async Task<PlatformApp> StartAsync(string prefix, string name, string schedule)
    {
        var instance = Guid.NewGuid().ToString("N");
        return await new PlatformApp(azurite, prefix, services: s =>
        {
            s.AddSingleton(new InstanceName(instance));
            s.AddStorageTable(FiringsTable);
            s.AddTimerFunction<RecordFiring>(name, schedule);
        }).ReadyAsync();
    }

    private static string Instance(PlatformApp app) => app.Services.GetRequiredService<InstanceName>().Value;

    private static async Task<List<Firing>> ReadFirings(TableClient table)
    {
        var firings = new List<Firing>();
        await foreach (var row in table.QueryAsync<TableEntity>(cancellationToken: Ct))
        {
            firings.Add(new Firing(row.PartitionKey, row.GetString("Instance"), row.GetBoolean("IsPastDue") ?? false, row.Timestamp));
        }

        return [.. firings.OrderBy(f => f.At)];
    }

    private sealed record Firing(string Occurrence, string Instance, bool IsPastDue, DateTimeOffset? At);

    private sealed record InstanceName(string Value);

    /// <summary>Writes one row per firing, keyed by the occurrence it was fired for (its <c>Next</c> is unique to it).</summary>
    private sealed class RecordFiring(StorageAccount storage, InstanceName instance) : ITimerHandler
    {
        public Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken) =>
            storage.Table(FiringsTable).AddEntityAsync(new TableEntity(timer.Next!.Value.UtcTicks.ToString("D19", System.Globalization.CultureInfo.InvariantCulture), instance.Value)
            {
                ["Instance"] = instance.Value,
                ["IsPastDue"] = timer.IsPastDue,
            }, cancellationToken);
    }
}
