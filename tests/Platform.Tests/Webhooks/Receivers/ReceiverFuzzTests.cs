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

/// <summary>Odd input that is signed (so it gets past the signature) or well-formed enough to reach storage: never a 5xx.</summary>
public sealed class ReceiverOddInputTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "100000",
    };

    private async Task<int> StatusAsync(HttpRequestMessage request)
    {
        using var client = App.CreateClient();
        using (request)
        {
            return (int)(await client.SendAsync(request, Ct)).StatusCode;
        }
    }

    private static readonly string[] OddIds =
    [
        "evt_\u0000nul", "evt_\u0001\u001f\u007f", "evt_\ufffe\uffff", "\ud83d\ude00", "", " ", "evt_" + new string('x', 252), "evt_" + new string('x', 253),
        "evt_\\/\\'\"#?%&", "evt_\u2028\u2029",
    ];

    [Fact]
    public async Task SignedMessagesWithOddIdsAndHeadersNeverGetA5xx()
    {
        var standard = await Admin.CreateReceiverAsync("inventory.movements");
        var github = await Admin.CreateReceiverAsync("inventory.movements", "github");
        var stripe = await Admin.CreateReceiverAsync("inventory.movements", "stripe");
        var statuses = new List<(string Case, int Status)>();

        // Stripe's id comes from the (signed) body: any JSON string, escapes and all.
        foreach (var id in OddIds)
        {
            var body = "{\"id\":\"" + id + "\",\"data\":{\"movements\":[]}}";
            statuses.Add(("stripe id " + id[..Math.Min(20, id.Length)], await StatusAsync(SignedStripe(stripe, body))));
        }

        // Standard Webhooks' id is a header the sender signs: long, odd characters.
        foreach (var id in new[] { new string('i', 256), new string('i', 257), new string('i', 4096), new string('i', 5000), "id with spaces", "\"quoted\"", "a,b", "%00" })
        {
            statuses.Add(("standard id " + id.Length, await StatusAsync(SignedStandard(standard, """{"movements":[]}""", id: id))));
        }

        // GitHub's delivery id is not signed at all.
        foreach (var delivery in new[] { new string('d', 256), new string('d', 257), new string('d', 60_000), "", "x\ty" })
        {
            var body = "{\"movements\":[],\"n\":" + statuses.Count + "}";
            statuses.Add(("github delivery " + delivery.Length, await StatusAsync(SignedGitHub(github, body, delivery))));
        }

        // Content types with odd parameters (the body is signed and fine).
        foreach (var contentType in new[]
        {
            "application/json; charset=utf-16", "application/json; charset=nonsense", "application/json;;;", "application/json; a=\"\\\"\"",
            "application/json; boundary=" + new string('b', 8000), "application/JSON", "application/vnd.api+json; version=2", "application/json, text/plain",
            "application/json; charset=\"utf-8\"; q=0.5",
        })
        {
            var request = SignedStandard(standard, """{"movements":[]}""");
            request.Content!.Headers.Remove("Content-Type");
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            statuses.Add(("content type " + contentType[..Math.Min(40, contentType.Length)], await StatusAsync(request)));
        }

        // Lengths around the limit, declared and not.
        foreach (var length in new[] { 0, 1, ReceiverOptionsLimit - 1, ReceiverOptionsLimit, ReceiverOptionsLimit + 1 })
        {
            var request = Post(standard, "");
            request.Content = new ByteArrayContent(new byte[length]);
            request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
            statuses.Add(("length " + length, await StatusAsync(request)));
        }

        Assert.All(statuses, s => Assert.True(s.Status is >= 200 and < 500, $"{s.Case}: {s.Status}"));
    }

    private const int ReceiverOptionsLimit = 1024 * 1024;

    [Fact]
    public async Task OddManagementInputNeverGetsA5xx()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var statuses = new List<(string Case, int Status)>();
        foreach (var (method, uri, body, ifMatch) in new (HttpMethod, string, string?, string?)[]
        {
            (HttpMethod.Post, ReceiversPath, "{\"name\":\"nul \\u0000 and \\u0001\",\"action\":\"jobs.start\"}", null),
            (HttpMethod.Post, ReceiversPath, "{\"name\":\"x\",\"action\":\"jobs.start\",\"options\":{\"k\":\"\\u0000\\ud800\"}}", null),
            (HttpMethod.Post, ReceiversPath, "{\"name\":\"x\",\"action\":\"jobs.start\",\"options\":{\"\\u0000\":1}}", null),
            (HttpMethod.Post, ReceiversPath, "{\"name\":\"x\",\"action\":\"jobs.start\",\"scheme\":\"stripe\",\"options\":{\"secret\":\"whsec_\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\"}}", null),
            (HttpMethod.Post, ReceiversPath, "{\"name\":\"x\",\"action\":\"jobs.start\",\"scheme\":\"github\",\"options\":{\"secret\":{\"a\":[1]}}}", null),
            (HttpMethod.Post, ReceiversPath, "{\"name\":\"x\",\"action\":\"jobs.start\",\"scheme\":\"github\",\"options\":{\"secret\":null,\"secret\":\"" + new string('s', 100_000) + "\"}}", null),
            (HttpMethod.Post, ReceiversPath, "{\"name\":\"x\",\"action\":\"jobs.start\",\"scheme\":\"" + new string('s', 100_000) + "\"}", null),
            (HttpMethod.Delete, ReceiversPath + "/" + receiver.Id, null, "garbage"),
            (HttpMethod.Delete, ReceiversPath + "/" + receiver.Id, null, "W/\"x\", \"" + new string('e', 10_000) + "\""),
            (HttpMethod.Get, ReceiversPath + "/" + receiver.Id + "/messages?pageSize=99999999999999999999", null, null),
            (HttpMethod.Get, ReceiversPath + "/" + receiver.Id + "/messages?pageSize=-1", null, null),
            (HttpMethod.Post, ReceiversPath, "null", null),
            (HttpMethod.Post, ReceiversPath, "[]", null),
            (HttpMethod.Post, ReceiversPath, "\"receiver\"", null),
            (HttpMethod.Post, ReceiversPath, "{\"name\":null,\"action\":null,\"scheme\":null,\"options\":null}", null),
            (HttpMethod.Get, ReceiversPath + "/%C0%80/messages", null, null),
            (HttpMethod.Get, ReceiversPath + "/" + new string('0', 26) + "/messages", null, null),
            (HttpMethod.Get, ReceiversPath + "/" + receiver.Id + "/messages?continuationToken=" + Uri.EscapeDataString("\u0000.\u0000"), null, null),
            (HttpMethod.Get, ReceiversPath + "?pageSize=1&continuationToken=" + new string('A', 20_000), null, null),
        })
        {
            using var request = new HttpRequestMessage(method, uri);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
            }

            if (ifMatch is not null)
            {
                request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
            }

            statuses.Add(($"{method} {uri[..Math.Min(80, uri.Length)]} {body?[..Math.Min(80, body.Length)]}", (int)(await Admin.SendAsync(request, Ct)).StatusCode));
        }

        Assert.All(statuses, s => Assert.True(s.Status is >= 200 and < 500, $"{s.Case}: {s.Status}"));
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

/// <summary>The hook's limits that hold whatever the receiver id: per instance, and per client address.</summary>
public sealed class ReceiverHookLimitTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "100000",
        ["Platform:Webhooks:Receivers:RequestsPerMinutePerInstance"] = "5",
    };

    [Fact]
    public async Task SprayingMadeUpReceiverIdsIsLimitedForTheWholeInstance()
    {
        // Each made-up id had a window of its own, so a spray of them was never limited (and each one was looked up).
        using var client = App.CreateClient();
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? last = null;
        for (var i = 0; i < 12; i++)
        {
            var id = "01J" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12))[..23];
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/hooks/" + id) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
            last = await client.SendAsync(request, Ct);
            statuses.Add(last.StatusCode);
        }

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.Unauthorized, 5).Concat(Enumerable.Repeat(HttpStatusCode.TooManyRequests, 7)), statuses);
        await last!.ReadProblemAsync(429, "rate_limited");
        Assert.NotNull(last!.Headers.RetryAfter);

        // Other routes are not limited by it.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/health/live", Ct)).StatusCode);
    }
}

/// <summary>The hook's per-address limit, which comes before the instance's.</summary>
public sealed class ReceiverHookPerIpLimitTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "100000",
        ["Platform:Webhooks:Receivers:RequestsPerMinutePerIp"] = "3",
    };

    [Fact]
    public async Task OneAddressGetsAtMostItsShare()
    {
        using var client = App.CreateClient();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/hooks/01JZZZZZZZZZZZZZZZZZZZZZZ" + i) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
            statuses.Add((await client.SendAsync(request, Ct)).StatusCode);
        }

        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
    }
}
