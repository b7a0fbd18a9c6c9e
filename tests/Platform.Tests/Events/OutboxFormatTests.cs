using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Events;

/// <summary>
/// Outbox rows hold their events packed (zlib-compressed JSON in binary parts). Rows an earlier version wrote as JSON
/// text, still waiting when the new version starts, are relayed all the same; a row that cannot be read is relayed as
/// nothing and deleted rather than blocking its partition.
/// </summary>
public sealed class OutboxFormatTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private TenantPartition Users => App.Storage.TenantTable(UserDirectory.TableName).For(new TenantId(Tenant.Id));

    private async Task<List<TableEntity>> OutboxAsync() => await EventOutbox.PendingAsync(Users, 100, Ct).ToListAsync(Ct);

    private static PublishedEvent Event(string id, string type, string targetId, IReadOnlyDictionary<string, object?>? changes = null) =>
        new(id, DateTimeOffset.UtcNow, new PlatformEvent(type, Actor.System, "user", targetId, changes));

    private async Task<List<JsonElement>> AuditOfAsync(string targetId) =>
        [.. (await Admin.GetJsonAsync($"/api/v1/audit?targetId={targetId}&pageSize=100")).GetProperty("items").EnumerateArray()];

    [Fact]
    public async Task A_change_commits_its_events_packed_under_the_outbox_prefix_and_they_read_back_whole()
    {
        // A hundred events whose changes are long and unlike each other: the packed row needs several binary parts.
        var random = new Random(7);
        var events = Enumerable.Range(0, 100)
            .Select(i => Event(Ids.New(), "user.updated", $"target-{i}", new Dictionary<string, object?>
            {
                ["displayName"] = new string([.. Enumerable.Range(0, 600).Select(_ => (char)random.Next('a', 'z' + 1))]),
                ["quote"] = "\"quoted\" and \\ escaped",
            }))
            .ToList();
        var row = EventOutbox.Row(events);

        Assert.StartsWith(EventOutbox.KeyPrefix, row.RowKey, StringComparison.Ordinal);
        Assert.True(row.GetInt32("Packed") > 1, "the events take several parts");
        Assert.IsType<byte[]>(row["Events0"]);

        // Through storage: written as a change would write it, read back by the relay's query.
        await Users.SubmitTransactionAsync([new TableTransactionAction(TableTransactionActionType.Add, row)], Ct);
        var stored = Assert.Single(await OutboxAsync(), r => r.RowKey == row.RowKey);
        var read = EventOutbox.EventsOf(stored);

        Assert.Equal(events.Select(e => e.Id), read.Select(e => e.Id));
        Assert.Equal(events.Select(e => e.Event.TargetId), read.Select(e => e.Event.TargetId));
        Assert.Equal(
            events.Select(e => (string?)e.Event.Changes!["displayName"]),
            read.Select(e => ((JsonElement)e.Event.Changes!["displayName"]!).GetString()));
        Assert.Equal("\"quoted\" and \\ escaped", ((JsonElement)read[99].Event.Changes!["quote"]!).GetString());
    }

    [Fact]
    public async Task An_outbox_row_an_earlier_version_wrote_as_json_text_is_relayed_to_the_audit_trail_and_deleted()
    {
        // As the earlier version wrote it: the events' JSON in string parts under ~outbox:, read by that version's relay.
        var target = Ids.New();
        var first = Ids.New();
        var json = JsonSerializer.Serialize(new List<PublishedEvent> { Event(first, "user.updated", target), Event(Ids.New(), "user.locked", target) }, JsonSerializerOptions.Web);
        var text = new TableEntity(Tenant.Id, EventOutbox.TextKeyPrefix + first) { ["Count"] = 2, ["Parts"] = 2, ["Events0"] = json[..40], ["Events1"] = json[40..] };
        await Users.SubmitTransactionAsync([new TableTransactionAction(TableTransactionActionType.Add, text)], Ct);

        // The audit route relays what is waiting before it reads. (Two ids made in one millisecond need not sort in the
        // order they were made, so the entries are compared as a set.)
        var audited = await AuditOfAsync(target);

        Assert.Equal(["user.locked", "user.updated"], audited.Select(e => e.Str("action")).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(await OutboxAsync(), r => r.RowKey == text.RowKey);
    }

    [Theory]
    [InlineData("bytes")]
    [InlineData("parts")]
    [InlineData("text parts")]
    [InlineData("unpacks past its bound")]
    public async Task An_outbox_row_that_cannot_be_read_is_relayed_as_nothing_and_deleted(string damage)
    {
        var target = Ids.New();
        var broken = EventOutbox.Row([Event(Ids.New(), "user.updated", target)]);
        switch (damage)
        {
            case "bytes":
                broken["Events0"] = new byte[] { 0x78, 0x01, 0xFF, 0x00, 0x13 };
                break;
            case "parts":
                broken["Packed"] = int.MaxValue;
                break;
            case "unpacks past its bound":
                // A few kilobytes packed: one event whose changes inflate to 17 MiB.
                broken = EventOutbox.Row([Event(Ids.New(), "user.updated", target, new Dictionary<string, object?> { ["note"] = new string('x', EventOutbox.MaxUnpackedBytes + (1 << 20)) })]);
                break;
            default:
                broken = new TableEntity(Tenant.Id, EventOutbox.TextKeyPrefix + Ids.New()) { ["Parts"] = int.MaxValue, ["Events0"] = "[" };
                break;
        }

        await Users.SubmitTransactionAsync([new TableTransactionAction(TableTransactionActionType.Add, broken)], Ct);

        Assert.Empty(await AuditOfAsync(target));
        Assert.DoesNotContain(await OutboxAsync(), r => r.RowKey == broken.RowKey);

        // The partition still relays what comes after it.
        var ada = await Admin.CreateUserIdAsync("ada@example.com");
        Assert.Equal(["user.created"], (await AuditOfAsync(ada)).Select(e => e.Str("action")));
    }
}
