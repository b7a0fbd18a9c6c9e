using System.Collections.Concurrent;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Events;

/// <summary>
/// A relay that falls behind a partition's writes (a bulk import outruns the audit trail) holds at most
/// <c>Platform:Events:MaxHeldRows</c> committed outbox rows in memory. It relays those without reading them back, then
/// reads from storage only the rows committed past the bound, and hands every event over once.
/// The relay is held back by a subscriber of the test's own that waits when told to: a real subscriber on the real
/// event path, next to the audit trail and webhook fan-out.
/// </summary>
public sealed partial class RelayBacklogTests(Azurite azurite) : CountedStorageTests(azurite)
{
    private const int HeldRows = 2;

    /// <summary>Users per bulk call: the bulk route writes them in transactions of 48, so 150 are 4 outbox rows.</summary>
    private const int UsersPerCall = 150;

    private readonly HoldingSubscriber _subscriber = new();

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Events:MaxHeldRows"] = HeldRows.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    protected override void ConfigureServices(IServiceCollection services)
    {
        base.ConfigureServices(services);
        services.AddSingleton<IEventSubscriber>(_subscriber);
    }

    [Fact]
    public async Task A_relay_behind_its_partition_relays_the_rows_it_holds_from_memory_and_reads_back_only_the_rows_past_its_bound()
    {
        var (start, first) = await BacklogAsync();
        first.Release();
        await RelayedAsync(start, 3 * UsersPerCall);

        // Rows in the order they committed (each call's transactions run one after another, the calls too).
        var committed = OutboxRowsWritten(start);
        var handedFirst = committed.Count(row => _subscriber.FirstBatch.Contains(row[EventOutbox.KeyPrefix.Length..]));
        Assert.InRange(handedFirst, 1, committed.Count - HeldRows - 1);
        var readBack = OutboxRowsReadBack(start).Order(StringComparer.Ordinal).ToList();
        Assert.DoesNotContain(readBack, row => _subscriber.FirstBatch.Contains(row[EventOutbox.KeyPrefix.Length..]));
        if (handedFirst == HeldRows && readBack.Count == committed.Count - handedFirst)
        {
            // The first relay started late (writes are fast, the machine busy): it took a full list of rows, and rows were
            // already committed past it, so after its hand-over it read the outbox; rows committed meanwhile were found
            // there and not handed over again from memory. Everything after its rows was read back, once.
            Assert.Equal(committed.Skip(handedFirst).Order(StringComparer.Ordinal), readBack);
        }
        else
        {
            // The first relay took fewer rows than it may hold: the next two were held in memory, the rest read back.
            Assert.Equal(committed.Skip(handedFirst + HeldRows).Order(StringComparer.Ordinal), readBack);
        }
        Assert.Equal(_subscriber.Seen.Count, _subscriber.Seen.Distinct().Count());
    }

    [Fact]
    public async Task Rows_a_relay_reads_from_storage_while_this_instance_still_holds_them_are_handed_over_once()
    {
        var (start, first) = await BacklogAsync();

        // Next the relay hands over the rows it holds and stops again; rows committed meanwhile are in storage and in the
        // instance's list for the next relay, and the query for the rows past the bound finds them too.
        var second = _subscriber.HoldNext();
        first.Release();
        await second.Entered.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await CreateUsersAsync(3);
        second.Release();
        await RelayedAsync(start, 4 * UsersPerCall);

        // One more write: the partition's next relay, which would hand over anything this instance still (wrongly) held.
        await CreateUsersAsync(4, users: 1);
        await RelayedAsync(start, 4 * UsersPerCall + 1);

        // The rows of the call made while the relay was held (4 transactions) were read by its query, and handed over by it alone.
        Assert.All(OutboxRowsWritten(start).SkipLast(1).TakeLast(4), row => Assert.Contains(row, OutboxRowsReadBack(start)));
        Assert.Empty(_subscriber.Seen.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key));

        // The audit trail wrote its entries in transactions only: no transaction refused for an entry it already had,
        // retried an entry at a time.
        Assert.DoesNotContain(Calls.All.Skip(start), c => c.Table(App.Prefix) == AuditTrail.TableName && c.Kind == "insert");
    }

    /// <summary>
    /// A bulk call whose first relay is held in the middle of its hand-over, and two more calls that commit 8 outbox rows
    /// behind it (more than the relay may hold); returns where the storage calls of the test start, and the hold.
    /// </summary>
    private async Task<(int Start, Hold First)> BacklogAsync()
    {
        _subscriber.Tenant = Tenant.Id;
        var first = _subscriber.HoldNext();
        var start = Calls.All.Count;
        await CreateUsersAsync(0);
        await first.Entered.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await CreateUsersAsync(1);
        await CreateUsersAsync(2);
        return (start, first);
    }

    private async Task CreateUsersAsync(int call, int users = UsersPerCall)
    {
        var operations = Enumerable.Range(0, users)
            .Select(i => new { op = "create", data = new { email = $"backlog{call}-{i:D3}@example.com", displayName = $"Backlog {call} {i}" } });
        var results = (await (await Admin.BulkAsync(operations)).ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray();
        Assert.All(results, r => Assert.Equal(201, r.GetProperty("status").GetInt32()));
    }

    /// <summary>Until the subscriber saw every user's creation and every outbox row the calls wrote is deleted.</summary>
    private async Task RelayedAsync(int start, int users) =>
        await Eventually.Until(
            () => Task.FromResult(Calls.All.Skip(start).ToList()),
            calls => _subscriber.Created.Count >= users && OutboxRowsWritten(start).Count == Deleted(calls),
            "the backlog to be relayed");

    /// <summary>The users table's outbox rows the bulk calls wrote, in the order they were sent.</summary>
    private List<string> OutboxRowsWritten(int start) =>
        [.. Calls.All.Skip(start)
            .Where(c => c.Route is not null && c.Kind == "transaction" && c.Table(App.Prefix) == UserDirectory.TableName)
            .SelectMany(c => OutboxKey().Matches(c.Text).Select(m => m.Groups["key"].Value))];

    /// <summary>Outbox rows of the users table that background queries returned.</summary>
    private HashSet<string> OutboxRowsReadBack(int start) =>
        [.. Calls.All.Skip(start)
            .Where(c => c.Route is null && c.Kind == "query" && c.Table(App.Prefix) == UserDirectory.TableName && c.Answer is not null)
            .SelectMany(c => OutboxKey().Matches(c.Answer!).Select(m => m.Groups["key"].Value))];

    private int Deleted(IEnumerable<StorageCall> calls) =>
        calls.Where(c => c.Kind == "transaction" && c.Table(App.Prefix) == UserDirectory.TableName)
            .Sum(c => c.Text.Split('\n').Count(line => line.StartsWith("DELETE ", StringComparison.Ordinal) && line.Contains(EventOutbox.KeyPrefix, StringComparison.Ordinal)));

    [GeneratedRegex("\"RowKey\":\"(?<key>~outbox~[0-9A-Z]+)\"")]
    private static partial Regex OutboxKey();

    /// <summary>Records the events of one tenant it receives; told to, it waits in its next call until released.</summary>
    private sealed class HoldingSubscriber : IEventSubscriber
    {
        private Hold? _next;

        public string? Tenant { get; set; }

        public ConcurrentQueue<string> Seen { get; } = new();

        public ConcurrentQueue<string> Created { get; } = new();

        /// <summary>The event ids of the first call held.</summary>
        public HashSet<string> FirstBatch { get; private set; } = [];

        public Hold HoldNext() => _next = new Hold();

        public async Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken)
        {
            if (tenant.Value != Tenant || !events.Any(e => e.Event.Type == "user.created"))
            {
                return;
            }

            foreach (var e in events)
            {
                Seen.Enqueue(e.Id);
                if (e.Event.Type == "user.created")
                {
                    Created.Enqueue(e.Id);
                }
            }

            if (Interlocked.Exchange(ref _next, null) is { } hold)
            {
                if (FirstBatch.Count == 0)
                {
                    FirstBatch = [.. events.Select(e => e.Id)];
                }

                hold.Enter();
                await hold.Released.WaitAsync(cancellationToken);
            }
        }
    }

    private sealed class Hold
    {
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Entered => _entered.Task;

        public Task Released => _released.Task;

        public void Enter() => _entered.TrySetResult();

        public void Release() => _released.TrySetResult();
    }
}
