using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;
using StandardWebhooks;

namespace Platform.Tests.Webhooks.Receivers;

/// <summary>A receiver as its creator got it: the id, the public URL's path and the secret shown once.</summary>
public sealed record TestReceiver(string Id, string Url, string Secret, string Scheme)
{
    public string Path => new Uri(Url).AbsolutePath;
}

/// <summary>Drives the receiver routes and plays the sender: signs messages as each scheme does.</summary>
internal static class ReceiverApi
{
    public const string ReceiversPath = "/api/v1/webhooks/receivers";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static async Task<TestReceiver> CreateReceiverAsync(this HttpClient client, string action, string scheme = "standard", object? options = null)
    {
        var created = await (await client.PostAsJsonAsync(ReceiversPath, new { name = "ERP " + action, action, scheme, options }, Ct)).ReadJsonAsync(HttpStatusCode.Created);
        return new TestReceiver(created.Id(), created.Str("url")!, created.Str("secret")!, scheme);
    }

    /// <summary>A request signed the Standard Webhooks way by the reference library.</summary>
    public static HttpRequestMessage SignedStandard(TestReceiver receiver, string body, string? id = null, DateTimeOffset? at = null, string? secret = null)
    {
        id ??= "msg_" + Guid.NewGuid().ToString("N");
        var timestamp = at ?? DateTimeOffset.UtcNow;
        var signature = new StandardWebhook(secret ?? receiver.Secret).Sign(id, timestamp, body);
        var request = Post(receiver, body);
        request.Headers.Add("webhook-id", id);
        request.Headers.Add("webhook-timestamp", timestamp.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", signature);
        return request;
    }

    public static HttpRequestMessage SignedGitHub(TestReceiver receiver, string body, string delivery, string? secret = null)
    {
        var request = Post(receiver, body);
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret ?? receiver.Secret), Encoding.UTF8.GetBytes(body));
        request.Headers.Add("X-Hub-Signature-256", "sha256=" + Convert.ToHexStringLower(mac));
        request.Headers.Add("X-GitHub-Delivery", delivery);
        return request;
    }

    public static HttpRequestMessage SignedStripe(TestReceiver receiver, string body, DateTimeOffset? at = null)
    {
        var request = Post(receiver, body);
        var t = (at ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(receiver.Secret), Encoding.UTF8.GetBytes($"{t}.{body}"));
        request.Headers.Add("Stripe-Signature", $"t={t},v1={Convert.ToHexStringLower(mac)}");
        return request;
    }

    public static HttpRequestMessage Post(TestReceiver receiver, string body, string contentType = "application/json") =>
        new(HttpMethod.Post, receiver.Path) { Content = new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue(contentType)) };

    public static async Task<IReadOnlyList<JsonElement>> MessagesAsync(this HttpClient client, string receiverId) =>
        [.. (await client.GetJsonAsync($"{ReceiversPath}/{receiverId}/messages")).GetProperty("items").EnumerateArray()];

    /// <summary>The receiver's newest message once it is in a final status.</summary>
    public static async Task<JsonElement> ProcessedMessageAsync(this HttpClient client, string receiverId, int count = 1)
    {
        IReadOnlyList<JsonElement> last = [];
        try
        {
            return (await Eventually.Until(async () => last = await client.MessagesAsync(receiverId),
                messages => messages.Count >= count && messages.All(m => m.Str("status") is "succeeded" or "completed_with_errors" or "failed"),
                $"{count} message(s) of receiver {receiverId} to be processed"))[0];
        }
        catch (TimeoutException e)
        {
            // Say where each message stood, not just that the wait ended.
            throw new TimeoutException($"{e.Message}; messages: {string.Join(", ", last.Select(m => m.ToString()))}", e);
        }
    }
}
