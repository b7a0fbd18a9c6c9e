using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Platform.Tests.Infrastructure;
using static Platform.Tests.Webhooks.Receivers.ReceiverApi;

namespace Platform.Tests.Webhooks.Receivers;

/// <summary>Random and hostile input at the hook and the management routes: never a 5xx, and the per-receiver rate limit.</summary>
public sealed class ReceiverFuzzTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "100000",
    };

    private static readonly string[] ContentTypes = ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "application/cloudevents+json", "", "application/json; charset=\"", "*/*"];

    private static byte[] RandomBody(Random random)
    {
        switch (random.Next(7))
        {
            case 0:
                var bytes = new byte[random.Next(0, 4096)];
                random.NextBytes(bytes);
                return bytes;
            case 1:
                var depth = random.Next(1, 5000);
                return Encoding.UTF8.GetBytes(new string('[', depth) + new string(']', depth));
            case 2:
                return Encoding.UTF8.GetBytes("{\"movements\":[" + string.Join(',', Enumerable.Range(0, random.Next(0, 800)).Select(i => $"{{\"sku\":\"S{i}\",\"type\":\"in\",\"quantity\":{random.Next(-5, 5)}}}")) + "]}");
            case 3:
                return [0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d];
            case 4:
                return Encoding.UTF8.GetBytes("{\"data\":{\"movements\":\"" + new string('x', random.Next(0, 10000)) + "\"}, \"id\": 5}");
            case 5:
                return Encoding.UTF8.GetBytes("{\"type\":\"import\",\"parameters\":{\"kind\":\"users\",\"url\":\"file:///etc/passwd\"}}");
            default:
                return Encoding.UTF8.GetBytes("not json at all \u0000 \ud7ff");
        }
    }

    private static string RandomHeader(Random random) => random.Next(6) switch
    {
        0 => new string('v', random.Next(4000, 20000)),
        1 => "v1," + Convert.ToBase64String(RandomBytes(random, random.Next(0, 100))),
        2 => "v1,!!!not-base64 v1, v2,abc " + new string(' ', 50),
        3 => "sha256=" + new string('g', 64),
        4 => "t=-1,v1=" + new string('0', 64) + ",t=99999999999999999999",
        _ => string.Concat(Enumerable.Range(0, random.Next(0, 200)).Select(_ => (char)random.Next(0x20, 0x7f))),
    };

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public async Task RandomBodiesAndHeadersNeverGetA5xx()
    {
        var receivers = new[]
        {
            await Admin.CreateReceiverAsync("inventory.movements"),
            await Admin.CreateReceiverAsync("jobs.start", "github"),
            await Admin.CreateReceiverAsync("inventory.movements", "stripe"),
        };
        var random = new Random(18);
        using var anonymous = App.CreateClient();
        var statuses = new List<int>();
        for (var i = 0; i < 300; i++)
        {
            var receiver = receivers[random.Next(receivers.Length)];
            var noise = RandomHeader(random);
            var path = random.Next(8) switch
            {
                0 => "/api/v1/hooks/" + Uri.EscapeDataString(noise[..Math.Min(50, noise.Length)]),
                1 => "/api/v1/hooks/" + new string('A', 5000),
                _ => receiver.Path,
            };
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(RandomBody(random)) };
            var contentType = ContentTypes[random.Next(ContentTypes.Length)];
            if (contentType.Length > 0)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }

            foreach (var name in new[] { "webhook-id", "webhook-timestamp", "webhook-signature", "X-Hub-Signature-256", "X-GitHub-Delivery", "Stripe-Signature" })
            {
                if (random.Next(2) == 0)
                {
                    request.Headers.TryAddWithoutValidation(name, RandomHeader(random));
                }
            }

            if (random.Next(4) == 0)
            {
                // A correctly signed message with a hostile body: it reaches the queued action.
                var signed = SignedStandard(receivers[0], Encoding.UTF8.GetString(RandomBody(random)));
                using (signed)
                {
                    var response = await anonymous.SendAsync(signed, Ct);
                    statuses.Add((int)response.StatusCode);
                }
            }

            statuses.Add((int)(await anonymous.SendAsync(request, Ct)).StatusCode);
        }

        Assert.DoesNotContain(statuses, s => s >= 500);
        Assert.Contains(401, statuses);

        // The management routes with hostile ids, paging and bodies.
        foreach (var (method, uri, body) in new (HttpMethod, string, string?)[]
        {
            (HttpMethod.Get, ReceiversPath + "/" + new string('x', 3000), null),
            (HttpMethod.Get, ReceiversPath + "/..%2F..%2Fr:", null),
            (HttpMethod.Delete, ReceiversPath + "/%25zz%2F", null),
            (HttpMethod.Get, ReceiversPath + "/" + receivers[0].Id + "/messages?pageSize=0", null),
            (HttpMethod.Get, ReceiversPath + "/" + receivers[0].Id + "/messages?pageSize=abc&continuationToken=zzz", null),
            (HttpMethod.Get, ReceiversPath + "/" + receivers[0].Id + "/messages?continuationToken=" + new string('a', 5000), null),
            (HttpMethod.Get, ReceiversPath + "?continuationToken=a.b", null),
            (HttpMethod.Post, ReceiversPath, "{\"name\":" + new string('[', 3000) + "}"),
            (HttpMethod.Post, ReceiversPath, "{\"name\":\"x\",\"action\":\"jobs.start\",\"options\":{\"a\":\"" + new string('b', 10000) + "\"}}"),
            (HttpMethod.Post, ReceiversPath, "{\"name\":1,\"action\":[],\"scheme\":{}}"),
            (HttpMethod.Post, ReceiversPath, "\u00ff\u00fe"),
        })
        {
            using var request = new HttpRequestMessage(method, uri);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
            }

            var status = (int)(await Admin.SendAsync(request, Ct)).StatusCode;
            Assert.True(status is >= 400 and < 500, $"{method} {uri[..Math.Min(80, uri.Length)]}: {status}");
        }

        // Every signed message was processed to a final status, none left stuck.
        await Admin.ProcessedMessageAsync(receivers[0].Id);
    }
}

/// <summary>The per-receiver limit of the public hook.</summary>
public sealed class ReceiverRateLimitTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "3",
    };

    [Fact]
    public async Task AReceiverTakesAtMostItsRequestsPerMinuteAndOthersAreNotSlowedByIt()
    {
        var busy = await Admin.CreateReceiverAsync("inventory.movements");
        var quiet = await Admin.CreateReceiverAsync("inventory.movements");
        using var client = App.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            using var ok = SignedStandard(busy, "{\"movements\":[]}");
            Assert.Equal(HttpStatusCode.Accepted, (await client.SendAsync(ok, Ct)).StatusCode);
        }

        using var over = SignedStandard(busy, "{\"movements\":[]}");
        var limited = await client.SendAsync(over, Ct);
        await limited.ReadProblemAsync(429, "rate_limited");
        Assert.NotNull(limited.Headers.RetryAfter);

        using var other = SignedStandard(quiet, "{\"movements\":[]}");
        Assert.Equal(HttpStatusCode.Accepted, (await client.SendAsync(other, Ct)).StatusCode);
    }
}
