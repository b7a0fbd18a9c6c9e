using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Housekeeping;
using Platform.Functions.Triggers;
using Platform.Functions.Webhooks;
using Platform.Functions.Webhooks.Receivers;
using Platform.Tests.Infrastructure;
using static Platform.Tests.Webhooks.Receivers.ReceiverApi;

namespace Platform.Tests.Webhooks;

/// <summary>
/// What webhooks keep, and for how long (30 days by default): the fake clock moves, and the <c>StorageHousekeeping</c>
/// timer's handler runs as the timer would.
/// </summary>
public sealed class WebhookRetentionTests(Azurite azurite) : WebhookTestBase(azurite)
{
    protected override bool UsesFakeClock => true;

    private async Task RunHousekeepingAsync()
    {
        await using var scope = App.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<StorageHousekeeping>().RunAsync(new TimerInvocation(false, null, null), Ct);
    }

    /// <summary>Moves the clock, signs the admin in again (the old access token has expired) and runs housekeeping.</summary>
    private async Task LaterAsync(TimeSpan by)
    {
        Clock.Advance(by);
        await SignInAdminAgainAsync();
        await RunHousekeepingAsync();
    }

    private List<TableEntity> Rows(string table, string rowKeyPrefix) =>
        [.. App.Storage.Table(table).Query<TableEntity>($"PartitionKey eq '{Tenant.Id}'", cancellationToken: Ct).Where(e => e.RowKey.StartsWith(rowKeyPrefix, StringComparison.Ordinal))];

    private int Payloads(string receiverId) =>
        App.Storage.Container(ReceiverStore.PayloadContainer).GetBlobs(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"{Tenant.Id}/{receiverId}/", Ct).Count();

    [Fact]
    public async Task TheDeliveryLogIsKeptThirtyDaysThenHousekeepingDeletesIt()
    {
        var receiver = await ReceiverAsync();
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        await RaiseRoleEventAsync(Admin, "kept-a-while");
        var delivery = Assert.Single(await Eventually.Until(() => DeliveriesAsync(Admin, id),
            d => d.Count == 1 && d[0].GetProperty("status").GetString() == "succeeded", "the delivery"));
        var deliveryId = delivery.GetProperty("id").GetString()!;
        Assert.Single(Rows(WebhookDirectory.TableName, "log:"));
        Assert.Single(Rows(WebhookDirectory.TableName, "dlv:"));

        await LaterAsync(TimeSpan.FromDays(29));
        Assert.Single(await DeliveriesAsync(Admin, id));

        await LaterAsync(TimeSpan.FromDays(1) + TimeSpan.FromHours(2));
        Assert.Empty(await DeliveriesAsync(Admin, id));
        Assert.Empty(Rows(WebhookDirectory.TableName, "log:"));
        Assert.Empty(Rows(WebhookDirectory.TableName, "dlv:"));
        var replay = await Admin.PostAsync($"/api/v1/webhooks/deliveries/{deliveryId}/replay", null, Ct);
        await replay.ReadProblemAsync(404, "not_found");

        // The endpoint itself is not history: it stays, and still delivers.
        var endpoint = await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/webhooks/endpoints/{id}", Ct);
        Assert.True(endpoint.GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public async Task AReceivedMessageItsBodyAndItsSeenIdGoAfterThirtyDays()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var body = JsonSerializer.Serialize(new { type = "erp.receipt", data = new { movements = new[] { new { sku = "NO-SUCH-SKU", type = "in", quantity = 1 } } } });
        using var hooks = App.CreateClient();
        var accepted = await hooks.SendAsync(SignedStandard(receiver, body, id: "msg-kept-30-days", at: Clock.GetUtcNow()), Ct);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal(1, Payloads(receiver.Id));
        Assert.Single(Rows(ReceiverStore.TableName, $"d:{receiver.Id}:"));

        await LaterAsync(TimeSpan.FromDays(29));
        Assert.Single(await Admin.MessagesAsync(receiver.Id));
        Assert.Equal(1, Payloads(receiver.Id));

        await LaterAsync(TimeSpan.FromDays(1) + TimeSpan.FromHours(2));
        Assert.Empty(await Admin.MessagesAsync(receiver.Id));
        Assert.Equal(0, Payloads(receiver.Id));
        Assert.Empty(Rows(ReceiverStore.TableName, $"d:{receiver.Id}:"));
        Assert.Empty(Rows(ReceiverStore.TableName, "m:"));

        // The receiver stays; the sender id is forgotten with its message, so a repeat now is a new message.
        var again = await hooks.SendAsync(SignedStandard(receiver, body, id: "msg-kept-30-days", at: Clock.GetUtcNow()), Ct);
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        Assert.False((await again.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("duplicate").GetBoolean());
        Assert.Single(await Admin.MessagesAsync(receiver.Id));
    }
}
