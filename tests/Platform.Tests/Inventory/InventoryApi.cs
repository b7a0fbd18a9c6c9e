using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Platform.Tests.Inventory;

/// <summary>The inventory routes as a test drives them: through HTTP, like a warehouse script would.</summary>
internal static class InventoryApi
{
    public const string Locations = "/api/v1/inventory/locations";
    public const string Items = "/api/v1/inventory/items";
    public const string Movements = "/api/v1/inventory/movements";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static async Task<HttpResponseMessage> SendAsync(this HttpClient client, HttpMethod method, string uri, object? body = null, string? ifMatch = null, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        if (idempotencyKey is not null)
        {
            request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
        }

        return await client.SendAsync(request, Ct);
    }

    public static async Task<JsonElement> ReadJsonAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        return JsonSerializer.Deserialize<JsonElement>(text);
    }

    public static async Task<JsonElement> GetJsonAsync(this HttpClient client, string uri) =>
        await (await client.GetAsync(uri, Ct)).ReadJsonAsync(HttpStatusCode.OK);

    public static async Task<JsonElement> CreateLocationAsync(this HttpClient client, string name, string? parentId = null, string? code = null) =>
        await (await client.PostAsJsonAsync(Locations, new { name, parentId, code }, Ct)).ReadJsonAsync(HttpStatusCode.Created);

    public static async Task<string> CreateLocationIdAsync(this HttpClient client, string name, string? parentId = null) =>
        (await client.CreateLocationAsync(name, parentId)).Id();

    /// <summary>The items of one page of a list route (asserting it is the last page).</summary>
    public static async Task<IReadOnlyList<JsonElement>> ListAsync(this HttpClient client, string uri)
    {
        var page = await client.GetJsonAsync(uri);
        Assert.Equal(JsonValueKind.Null, page.GetProperty("continuationToken").ValueKind);
        return [.. page.GetProperty("items").EnumerateArray()];
    }

    public static string Id(this JsonElement item) => item.GetProperty("id").GetString()!;

    public static string? Str(this JsonElement item, string property) => item.GetProperty(property).GetString();

    public static double Num(this JsonElement item, string property) => item.GetProperty(property).GetDouble();
}

internal static class ItemApi
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static Task<HttpResponseMessage> PostItemAsync(this HttpClient client, object body) =>
        client.PostAsJsonAsync(InventoryApi.Items, body, Ct);

    public static async Task<JsonElement> CreateItemAsync(this HttpClient client, string sku, string? name = null, object? extra = null)
    {
        var body = new Dictionary<string, object?> { ["sku"] = sku, ["name"] = name ?? $"Item {sku}" };
        if (extra is not null)
        {
            foreach (var property in JsonSerializer.SerializeToElement(extra, JsonSerializerOptions.Web).EnumerateObject())
            {
                body[property.Name] = property.Value;
            }
        }

        return await (await client.PostItemAsync(body)).ReadJsonAsync(HttpStatusCode.Created);
    }

    /// <summary>The actions recorded in the audit trail about one target, oldest first.</summary>
    public static async Task<IReadOnlyList<string>> AuditActionsAsync(this HttpClient client, string targetId) =>
        [.. (await client.GetJsonAsync($"/api/v1/audit?pageSize=1000&targetId={targetId}")).GetProperty("items").EnumerateArray()
            .Select(e => e.GetProperty("action").GetString()!).Order(StringComparer.Ordinal)];
}
