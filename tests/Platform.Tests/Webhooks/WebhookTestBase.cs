using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Webhooks;

/// <summary>An app that may reach loopback receivers, with a fast retry schedule, and helpers to drive webhooks over HTTP.</summary>
public abstract class WebhookTestBase(Azurite azurite) : SignedUpTenantTests(azurite), IAsyncLifetime
{
    /// <summary>Quick retries, so a test sees several attempts; the last attempt is the 8th, as in production.</summary>
    protected const string FastSchedule = "00:00:00,00:00:00.200,00:00:00.300,00:00:00.500,00:00:00.500,00:00:01,00:00:01,00:00:01";

    protected override bool UsesFakeClock => false;

    protected override bool SignsInAdmin => true;

    protected virtual IDictionary<string, string?> MoreSettings => new Dictionary<string, string?>();

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = new Dictionary<string, string?>
            {
                ["Platform:Webhooks:AllowPrivateNetworks"] = "true",
                ["Platform:Webhooks:RetrySchedule"] = FastSchedule,
                ["Platform:Webhooks:LaneBudget"] = "00:00:05",
                ["Platform:Webhooks:LaneLease"] = "00:00:30",
            };
            foreach (var (key, value) in MoreSettings)
            {
                settings[key] = value;
            }

            return settings;
        }
    }

    private static readonly string[] RoleEvents = ["role.*"];
    private static readonly string[] InventoryRead = ["inventory.read"];
    private readonly List<WebhookReceiver> _receivers = [];

    protected async Task<WebhookReceiver> ReceiverAsync()
    {
        var receiver = await WebhookReceiver.StartAsync();
        _receivers.Add(receiver);
        return receiver;
    }

    /// <summary>For scenarios shared between test classes.</summary>
    internal Task<WebhookReceiver> StartReceiverAsync() => ReceiverAsync();

    internal HttpClient AdminClient => Admin;

    protected static async Task<(string Id, string Secret)> CreateEndpointAsync(HttpClient client, string url, object? events = null, object? headers = null, int? rateLimitPerSecond = null)
    {
        var response = await client.PostAsJsonAsync("/api/v1/webhooks/endpoints",
            new { url, events = events ?? RoleEvents, description = "test", headers, rateLimitPerSecond }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return (body.GetProperty("id").GetString()!, body.GetProperty("secret").GetString()!);
    }

    /// <summary>A product event: creating a role publishes <c>role.created</c>.</summary>
    protected static async Task<string> RaiseRoleEventAsync(HttpClient client, string name)
    {
        var response = await client.PutAsJsonAsync($"/api/v1/roles/{name}", new { permissions = InventoryRead }, Ct);
        Assert.True(response.IsSuccessStatusCode, $"PUT role {name}: {(int)response.StatusCode}");
        return name;
    }

    protected static async Task<List<JsonElement>> DeliveriesAsync(HttpClient client, string endpointId)
    {
        var body = await client.GetFromJsonAsync<JsonElement>($"/api/v1/webhooks/endpoints/{endpointId}/deliveries", Ct);
        return [.. body.GetProperty("items").EnumerateArray()];
    }

    protected static string RoleOf(ReceivedHook hook) =>
        JsonDocument.Parse(hook.Body).RootElement.GetProperty("data").GetProperty("id").GetString()!;

    public override async ValueTask DisposeAsync()
    {
        foreach (var receiver in _receivers)
        {
            await receiver.DisposeAsync();
        }

        await base.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
