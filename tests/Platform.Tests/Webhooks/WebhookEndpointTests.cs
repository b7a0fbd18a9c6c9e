using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Webhooks;
using Platform.Functions.Webhooks.Receivers;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Webhooks;

/// <summary>The endpoint routes through HTTP: CRUD, validation, the limit, tenancy, permissions and the catalogue.</summary>
public sealed partial class WebhookEndpointTests(Azurite azurite) : WebhookTestBase(azurite)
{
    private const string Url = "http://127.0.0.1:9/hooks";
    private static readonly string[] All = ["*"];
    private static readonly string[] UserAndInventory = ["user.created", "inventory.*"];
    private static readonly string[] Unknown = ["user.exploded"];
    private static readonly string[] UnknownPrefix = ["nothing.*"];
    private static readonly string[] JobStatuses = ["succeeded", "completed_with_errors", "failed", "cancelled"];

    [Fact]
    public async Task CreateListGetPatchDelete()
    {
        var created = await Admin.PostAsJsonAsync("/api/v1/webhooks/endpoints", new
        {
            url = Url,
            events = UserAndInventory,
            description = "ERP",
            headers = new Dictionary<string, string> { ["Authorization"] = "Bearer abc" },
            rateLimitPerSecond = 5,
        }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await created.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var id = body.GetProperty("id").GetString()!;
        var secret = body.GetProperty("secret").GetString()!;
        Assert.Matches("^whsec_[A-Za-z0-9+/]{43}=$", secret);
        Assert.Equal(32, Convert.FromBase64String(secret[6..]).Length);
        Assert.Equal($"/api/v1/webhooks/endpoints/{id}", created.Headers.Location?.ToString());

        // At rest the secret is sealed: the stored bytes are neither the key nor contain it.
        var row = await App.Services.GetRequiredService<WebhookDirectory>().GetAsync(new Platform.Functions.Storage.TenantId(Tenant.Id), id, Ct);
        Assert.False(row!.Secret.AsSpan().IndexOf(Convert.FromBase64String(secret[6..])) >= 0);

        var got = await Admin.GetAsync($"/api/v1/webhooks/endpoints/{id}", Ct);
        var view = await got.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.False(view.TryGetProperty("secret", out _));
        Assert.Equal("********", view.GetProperty("headers").GetProperty("Authorization").GetString());
        Assert.Equal(5, view.GetProperty("rateLimitPerSecond").GetInt32());

        var list = await Admin.GetFromJsonAsync<JsonElement>("/api/v1/webhooks/endpoints", Ct);
        Assert.Equal(id, Assert.Single(list.GetProperty("items").EnumerateArray()).GetProperty("id").GetString());

        var stale = new HttpRequestMessage(HttpMethod.Patch, $"/api/v1/webhooks/endpoints/{id}") { Content = JsonContent.Create(new { enabled = false }) };
        stale.Headers.IfMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue("\"nope\""));
        await (await Admin.SendAsync(stale, Ct)).ReadProblemAsync(412, "precondition_failed");

        var patch = new HttpRequestMessage(HttpMethod.Patch, $"/api/v1/webhooks/endpoints/{id}") { Content = JsonContent.Create(new { enabled = false, events = All, rateLimitPerSecond = (int?)null }) };
        patch.Headers.IfMatch.Add(got.Headers.ETag!);
        var patched = await (await Admin.SendAsync(patch, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.False(patched.GetProperty("enabled").GetBoolean());
        Assert.Equal("*", Assert.Single(patched.GetProperty("events").EnumerateArray()).GetString());
        Assert.Equal(JsonValueKind.Null, patched.GetProperty("rateLimitPerSecond").ValueKind);

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/webhooks/endpoints/{id}", Ct)).StatusCode);
        await (await Admin.GetAsync($"/api/v1/webhooks/endpoints/{id}", Ct)).ReadProblemAsync(404, "not_found");
    }

    public static TheoryData<string, object> BadEndpoints => new()
    {
        { "url", new { url = "ftp://example.com/x", events = All } },
        { "url", new { url = "http://169.254.169.254/latest", events = All } },
        { "url", new { url = "http://[fe80::1]/", events = All } },
        { "url", new { url = "http://user:pw@example.com/", events = All } },
        { "url", new { url = "not a url", events = All } },
        { "url", new { events = All } },
        { "events", new { url = Url, events = Unknown } },
        { "events", new { url = Url, events = UnknownPrefix } },
        { "events", new { url = Url, events = Array.Empty<string>() } },
        { "events", new { url = Url } },
        { "headers", new { url = Url, events = All, headers = new Dictionary<string, string> { ["webhook-signature"] = "v1,forged" } } },
        { "headers", new { url = Url, events = All, headers = new Dictionary<string, string> { ["Host"] = "evil" } } },
        { "headers", new { url = Url, events = All, headers = new Dictionary<string, string> { ["X-A"] = "line\r\nbreak" } } },
        { "headers", new { url = Url, events = All, headers = Enumerable.Range(0, 21).ToDictionary(i => $"X-H{i}", _ => "v") } },
        { "rateLimitPerSecond", new { url = Url, events = All, rateLimitPerSecond = 0 } },
        { "description", new { url = Url, events = All, description = new string('d', 501) } },
    };

    [Theory]
    [MemberData(nameof(BadEndpoints))]
    public async Task InvalidEndpointsAre400WithTheFieldNamed(string field, object request)
    {
        var problem = await (await Admin.PostAsJsonAsync("/api/v1/webhooks/endpoints", request, Ct)).ReadProblemAsync(400, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task AtMostFiftyEndpoints()
    {
        for (var i = 0; i < 50; i++)
        {
            await CreateEndpointAsync(Admin, $"{Url}/{i}");
        }

        await (await Admin.PostAsJsonAsync("/api/v1/webhooks/endpoints", new { url = Url, events = All }, Ct)).ReadProblemAsync(409, "webhook_endpoint_limit_reached");

        var first = (await Admin.GetFromJsonAsync<JsonElement>("/api/v1/webhooks/endpoints?pageSize=10", Ct)).GetProperty("items")[0].GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/webhooks/endpoints/{first}", Ct)).StatusCode);
        await CreateEndpointAsync(Admin, Url);
    }

    [Fact]
    public async Task AnotherTenantSeesNoneOfItAndGets404OnEveryRoute()
    {
        var receiver = await ReceiverAsync();
        var (id, _) = await CreateEndpointAsync(Admin, receiver.Url);
        await RaiseRoleEventAsync(Admin, "tenancy");
        var delivery = (await Eventually.Until(() => DeliveriesAsync(Admin, id), d => d.Count == 1, "a delivery"))[0].GetProperty("id").GetString();

        var other = await App.SignUpAsync();
        using var intruder = await App.SignedInClientAsync(other);
        var list = await intruder.GetFromJsonAsync<JsonElement>("/api/v1/webhooks/endpoints", Ct);
        Assert.Empty(list.GetProperty("items").EnumerateArray());

        var requests = new[]
        {
            new HttpRequestMessage(HttpMethod.Get, $"/api/v1/webhooks/endpoints/{id}"),
            new HttpRequestMessage(HttpMethod.Patch, $"/api/v1/webhooks/endpoints/{id}") { Content = JsonContent.Create(new { enabled = false }) },
            new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/webhooks/endpoints/{id}"),
            new HttpRequestMessage(HttpMethod.Post, $"/api/v1/webhooks/endpoints/{id}/rotate-secret") { Content = JsonContent.Create(new { graceSeconds = 0 }) },
            new HttpRequestMessage(HttpMethod.Post, $"/api/v1/webhooks/endpoints/{id}/test"),
            new HttpRequestMessage(HttpMethod.Post, $"/api/v1/webhooks/endpoints/{id}/recover") { Content = JsonContent.Create(new { since = DateTimeOffset.UtcNow.AddDays(-1) }) },
            new HttpRequestMessage(HttpMethod.Get, $"/api/v1/webhooks/endpoints/{id}/deliveries"),
            new HttpRequestMessage(HttpMethod.Post, $"/api/v1/webhooks/deliveries/{delivery}/replay"),
        };
        foreach (var request in requests)
        {
            await (await intruder.SendAsync(request, Ct)).ReadProblemAsync(404, "not_found");
        }

        // Still there, unchanged, and nothing more was sent.
        var endpoint = await Admin.GetFromJsonAsync<JsonElement>($"/api/v1/webhooks/endpoints/{id}", Ct);
        Assert.True(endpoint.GetProperty("enabled").GetBoolean());
        Assert.Single(await DeliveriesAsync(Admin, id));
    }

    [Fact]
    public async Task UsersWithoutWebhookPermissionsAreRefused()
    {
        using var user = await SignedInAsync("plain@example.com");
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync("/api/v1/webhooks/endpoints", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsJsonAsync("/api/v1/webhooks/endpoints", new { url = Url, events = All }, Ct)).StatusCode);
    }

    [Fact]
    public async Task TheCatalogueListsEveryTypeWithAnExample()
    {
        var catalogue = await Admin.GetFromJsonAsync<JsonElement>("/api/v1/webhooks/event-types", Ct);
        var items = catalogue.GetProperty("items").EnumerateArray().ToList();
        var types = items.Select(i => i.GetProperty("type").GetString()!).ToHashSet();
        Assert.Contains("webhook.test", types);
        Assert.Contains("webhook.endpoint.disabled", types);
        Assert.All(items, i =>
        {
            Assert.False(string.IsNullOrWhiteSpace(i.GetProperty("description").GetString()));
            Assert.Equal(i.GetProperty("type").GetString(), i.GetProperty("example").GetProperty("type").GetString());
            Assert.True(i.GetProperty("example").TryGetProperty("data", out _));
        });
    }

    /// <summary>
    /// Scans the app's source for event type literals (dotted lowercase names of the areas that publish events) and
    /// for job statuses (jobs publish <c>job.{status}</c>): each must be in the catalogue. Literals that are not
    /// event types (permissions, activity names) are listed here, so a new event type cannot slip past unlisted.
    /// </summary>
    [Fact]
    public void EveryPublishedEventTypeIsInTheCatalogue()
    {
        // The demo workflow's inventory.reorder is a tenant's own event type (a webhook step publishes it), not a product one.
        var notEvents = new HashSet<string>(Platform.Functions.Roles.Permissions.All, StringComparer.Ordinal)
        {
            "job.finished", ReceiverActions.InventoryMovements, ReceiverActions.JobsStart, Platform.Functions.Workflows.DemoWorkflows.ReorderEvent,
            Platform.Functions.Backups.BackupVerifyOrchestrator.Name,
        };
        var app = Path.Combine(Repo.Root, "functions", "Platform.Functions");
        var missing = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(app, "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal)))
        {
            foreach (Match literal in EventLiteral().Matches(File.ReadAllText(file)))
            {
                var type = literal.Groups["type"].Value;
                if (!notEvents.Contains(type) && !EventCatalogue.Types.Contains(type))
                {
                    missing.Add($"{type} ({Path.GetFileName(file)})");
                }
            }
        }

        foreach (var status in JobStatuses)
        {
            if (!EventCatalogue.Types.Contains("job." + status))
            {
                missing.Add("job." + status);
            }
        }

        Assert.True(missing.Count == 0, "Published but not in the catalogue: " + string.Join(", ", missing));
        Assert.Matches(EventLiteral(), "new PlatformEvent(\"inventory.item.moved\"");
    }

    [GeneratedRegex("\"(?<type>(?:auth|user|users|role|apikey|tenant|schema|inventory|job|jobs|webhook|report|backup|restore|workflow|schedule)\\.[a-z_]+(?:\\.[a-z_]+)*)\"")]
    private static partial Regex EventLiteral();
}
