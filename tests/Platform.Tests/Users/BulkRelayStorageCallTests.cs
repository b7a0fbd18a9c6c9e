using System.Net;
using Platform.Functions.Events;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;

namespace Platform.Tests.Users;

/// <summary>
/// A counted bulk write (users created in bulk, as an import creates them) hands its committed outbox rows to the relay
/// from memory: the relay writes the audit entries and deletes the rows, and reads none of them back.
/// </summary>
public sealed class BulkRelayStorageCallTests(Azurite azurite) : CountedStorageTests(azurite)
{
    [Fact]
    public async Task The_events_of_a_bulk_create_are_relayed_without_reading_their_outbox_rows_back()
    {
        var before = Calls.All.Count;
        var operations = Enumerable.Range(0, 150).Select(i => new { op = "create", data = new { email = $"relayed{i:D3}@example.com", displayName = $"Relayed {i}" } });
        var results = (await (await Admin.BulkAsync(operations)).ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray().ToList();
        Assert.All(results, r => Assert.Equal(201, r.GetProperty("status").GetInt32()));
        var last = results[^1].Id();

        // Background calls about this tenant's users and audit rows, until every outbox row the bulk create wrote is
        // deleted: a drain hands its rows' events to the audit trail before it deletes them. (Audit bundles are stored
        // packed, so their calls do not show the users' ids.)
        var background = await Eventually.Until(
            () => Task.FromResult(Calls.All.Skip(before).Where(c => c.Route is null && c.Text.Contains(Tenant.Id, StringComparison.Ordinal)).ToList()),
            calls => calls.Any(c => c.Table(App.Prefix) == "audit" && c.Kind == "transaction") &&
                Outboxes(calls, "DELETE") == Outboxes(Calls.All.Skip(before).Where(c => c.Route is not null), "POST"),
            "the bulk create's events to be relayed");

        Assert.True(Outboxes(background, "DELETE") >= 2, "the bulk create wrote its users in several transactions");
        Assert.DoesNotContain(background, c => c.Table(App.Prefix) == "users" && c.Kind is "query" or "read" && c.Text.Contains("~outbox", StringComparison.Ordinal));
        Assert.Contains("user.created", await Admin.AuditActionsAsync(last));
    }

    /// <summary>Outbox rows of the users table added (POST: their entity in the body) or deleted (DELETE: in the action's address) by the transactions among the calls.</summary>
    private int Outboxes(IEnumerable<StorageCall> calls, string method) =>
        calls.Where(c => c.Kind == "transaction" && c.Table(App.Prefix) == "users")
            .Sum(c => method == "DELETE"
                ? c.Text.Split('\n').Count(line => line.StartsWith("DELETE ", StringComparison.Ordinal) && line.Contains(EventOutbox.KeyPrefix, StringComparison.Ordinal))
                : c.Text.Split($"\"RowKey\":\"{EventOutbox.KeyPrefix}").Length - 1);
}
