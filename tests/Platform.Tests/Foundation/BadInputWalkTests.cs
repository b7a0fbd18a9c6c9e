using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Auth;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>
/// Walks every operation of the served OpenAPI document and sends it boundary and malformed values - in path and
/// query parameters, bodies and credentials - as a signed-in admin and anonymously: nothing may answer 5xx or
/// hang. Entra ID is configured, so bearer tokens of other issuers take that path too.
/// </summary>
public sealed class BadInputWalkTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string EntraClientId = "5b0f3c1e-8a7d-4e29-9c4b-6d2e1f7a3b90";
    private static readonly string[] Methods = ["get", "put", "post", "delete", "patch"];
    private static readonly string[] UsersRead = ["users.read"];
    private readonly RsaSecurityKey _entraKey = new(RSA.Create(2048)) { KeyId = "walk-entra-key" };

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["AzureAd:Instance"] = "https://login.microsoftonline.com/",
        ["AzureAd:TenantId"] = "organizations",
        ["AzureAd:ClientId"] = EntraClientId,
    };

    // What login.microsoftonline.com would serve, so no request leaves the machine.
    // The services hold this test's own state.
    protected override bool SharesApp => false;

    protected override void ConfigureServices(IServiceCollection services) =>
        services.PostConfigure<JwtBearerOptions>(Entra.Scheme, o =>
        {
            var metadata = new OpenIdConnectConfiguration { Issuer = "https://login.microsoftonline.com/{tenantid}/v2.0" };
            metadata.SigningKeys.Add(_entraKey);
            o.Configuration = metadata;
            o.TokenValidationParameters.IssuerSigningKeys = [_entraKey];
        });

    /// <summary>Already percent-encoded: sent as they are in a path segment.</summary>
    private static readonly string[] BadIds =
    [
        new string('a', 3000),
        "%C3%BC%E5%90%8D%F0%9F%99%82",
        "..%2F..%2Fetc%2Fpasswd",
        "%2E%2E",
        // A NUL in the path never reaches the app: Kestrel answers 400 itself, and the test host refuses to send it.
        "%2500",
        "a%2500b",
        "%FF%FE",
        "%2F",
        "%20",
        "%27%20or%20%271%27%20eq%20%271",
        "PartitionKey%20ne%20%27%27",
        "*",
        "-1",
        "99999999999999999999999999",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ];

    /// <summary>Already percent-encoded: sent as they are as a query value.</summary>
    private static readonly string[] BadQueryValues =
    [
        "99999999999999999999999999",
        "-1",
        "0",
        "2147483648",
        "-2147483649",
        "1e309",
        "NaN",
        "9999-12-31T23%3A59%3A59.9999999Z",
        "0001-01-01T00%3A00%3A00Z",
        "-0001-01-01T00%3A00%3A00Z",
        "10000-01-01",
        "",
        new string('a', 4000),
        "%C3%BC%E5%90%8D%F0%9F%99%82",
        "..%2F..%2Fetc",
        "%00",
        "%FF",
        "a.b.c",
        "eyJ9.eyJ9",
        "garbage",
        "%27",
        "((((((((((((((((((((",
        "fields.x%20eq%201",
        "-",
    ];

    /// <summary>JSON values each body property gets in turn, whatever its type.</summary>
    private static readonly string[] BadPropertyValues =
    [
        "\"x\"",
        "123456789012345678901234567890",
        "1e400",
        "-1",
        "true",
        "{}",
        "[]",
        "[{}]",
        "null",
        "\"9999-12-31T23:59:59.9999999Z\"",
        "\"0001-01-01T00:00:00Z\"",
        "\"-0001-01-01T00:00:00Z\"",
        JsonSerializer.Serialize(new string('x', 20_000)),
        "\"\\u0000../ü名🙂\"",
    ];

    private static readonly (string Name, string Body)[] BadBodies =
    [
        ("empty", ""),
        ("null", "null"),
        ("[]", "[]"),
        ("{}", "{}"),
        ("string", "\"x\""),
        ("number", "1e400"),
        ("truncated", "{\"a\":"),
        ("deeply nested", string.Concat(Enumerable.Repeat("{\"a\":", 5000)) + "1" + new string('}', 5000)),
        ("deeply nested arrays", new string('[', 5000) + new string(']', 5000)),
        ("oversized", "{\"x\":\"" + new string('x', 1_100_000) + "\"}"),
    ];

    private readonly ConcurrentBag<string> _failures = [];
    private readonly ConcurrentDictionary<string, TimeSpan> _elapsed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, int> _statuses = new();
    private JsonElement _document;
    private Dictionary<string, string> _ids = null!;
    private Dictionary<string, string> _validBodies = null!;
    private int _requests;

    [Fact]
    public async Task NoOperationAnswers5xxToBadInput()
    {
        using (var anonymous = App.CreateClient())
        {
            _document = JsonDocument.Parse(await anonymous.GetStringAsync("/api/openapi/v1.json", Ct)).RootElement;
        }

        await CreateResourcesAsync();
        var operations = Operations().ToList();
        Assert.True(operations.Count >= 65, $"only {operations.Count} operations in the document");

        // Four workers, each with its own session (a logout or session revocation then ends only that worker's
        // session, which it replaces), each taking all operations of one resource so they do not race each other.
        var started = System.Diagnostics.Stopwatch.StartNew();
        var queue = new ConcurrentQueue<IGrouping<string, Operation>>(operations.GroupBy(o => o.Path.Split('{')[0].TrimEnd('/')).OrderByDescending(g => g.Count()));
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => WorkAsync(queue)));

        TestContext.Current.TestOutputHelper?.WriteLine($"{_requests} requests to {operations.Count} operations in {started.Elapsed.TotalSeconds:F1} s; slowest: " +
            string.Join(", ", _elapsed.OrderByDescending(e => e.Value).Take(8).Select(e => $"{e.Key} {e.Value.TotalSeconds:F1} s")) +
            "; answers: " + string.Join(", ", _statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}")));
        Assert.True(_requests > 1000, $"only {_requests} requests were sent");
        Assert.True(_failures.IsEmpty, $"{_failures.Count} of {_requests} requests failed:\n" + string.Join("\n", _failures.Order(StringComparer.Ordinal)));
    }

    private async Task WorkAsync(ConcurrentQueue<IGrouping<string, Operation>> queue)
    {
        var admin = await SignedInAsync();
        try
        {
            using var anonymous = App.CreateClient();
            anonymous.Timeout = TimeSpan.FromSeconds(30);
            while (queue.TryDequeue(out var resource))
            {
                foreach (var operation in resource)
                {
                    var started = System.Diagnostics.Stopwatch.StartNew();
                    if (!operation.Anonymous)
                    {
                        await WalkAsync(admin, operation);
                    }

                    await WalkAnonymouslyAsync(anonymous, operation);
                    _elapsed[$"{operation.Method} {operation.Path}"] = started.Elapsed;
                    if ((await admin.GetAsync("/api/v1/me", Ct)).StatusCode == HttpStatusCode.Unauthorized)
                    {
                        admin.Dispose();
                        admin = await SignedInAsync();
                    }
                }
            }
        }
        finally
        {
            admin.Dispose();
        }
    }

    private async Task<HttpClient> SignedInAsync()
    {
        var client = await App.SignedInClientAsync(Tenant);
        client.Timeout = TimeSpan.FromSeconds(30);
        return client;
    }

    private sealed record Operation(string Method, string Path, JsonElement Definition)
    {
        public IEnumerable<string> Parameters(string location) =>
            Definition.TryGetProperty("parameters", out var parameters)
                ? parameters.EnumerateArray().Where(p => p.GetProperty("in").GetString() == location).Select(p => p.GetProperty("name").GetString()!)
                : [];

        public bool Anonymous => !Definition.TryGetProperty("security", out _);
    }

    private IEnumerable<Operation> Operations() =>
        _document.GetProperty("paths").EnumerateObject().SelectMany(path => path.Value.EnumerateObject()
            .Where(op => Methods.Contains(op.Name))
            .Select(op => new Operation(op.Name.ToUpperInvariant(), path.Name, op.Value)));

    /// <summary>One real resource of each kind, so a walk reaches past "not found" into each handler.</summary>
    private async Task CreateResourcesAsync()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        async Task<JsonElement> Send(HttpMethod method, string uri, object body)
        {
            var response = await admin.SendAsync(new HttpRequestMessage(method, uri) { Content = JsonContent.Create(body) }, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.IsSuccessStatusCode, $"{method} {uri}: {(int)response.StatusCode} {text}");
            return JsonDocument.Parse(text).RootElement;
        }

        var location = (await Send(HttpMethod.Post, "/api/v1/inventory/locations", new { name = "Walk" })).GetProperty("id").GetString()!;
        var item = (await Send(HttpMethod.Post, "/api/v1/inventory/items", new { sku = "WALK-1", name = "Walker", locationId = location, reorderPoint = 100 })).GetProperty("id").GetString()!;
        var movement = (await Send(HttpMethod.Post, $"/api/v1/inventory/items/{item}/movements", new { type = "in", quantity = 5, toLocationId = location }))
            .GetProperty("movement").GetProperty("id").GetString()!;
        var apiKey = (await Send(HttpMethod.Post, "/api/v1/api-keys", new { name = "walk", permissions = UsersRead })).GetProperty("id").GetString()!;
        await Send(HttpMethod.Put, "/api/v1/roles/walkers", new { permissions = UsersRead });
        var spareSession = (await App.LoginAsync(Tenant)).SessionId;
        var alerts = JsonDocument.Parse(await admin.GetStringAsync("/api/v1/inventory/alerts", Ct)).RootElement.GetProperty("items");
        var alert = alerts.GetArrayLength() > 0 ? alerts[0].GetProperty("id").GetString()! : "01ARZ3NDEKTSV4RRFFQ69G5FAV";

        // Bodies a handler accepts, so that one wrong property at a time gets past validation of the others. None
        // can lock the admin out (wrong passwords) or take their roles away.
        _validBodies = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["CreateApiKey"] = """{"name":"walk","permissions":["users.read"],"expiresAt":"2030-01-01T00:00:00Z"}""",
            ["RotateApiKey"] = """{"graceSeconds":1}""",
            ["PutRole"] = """{"permissions":["users.read"]}""",
            ["CreateItem"] = $$"""{"sku":"WALK-2","name":"Walker 2","locationId":"{{location}}","unitCost":1.5,"reorderPoint":1,"reorderQuantity":2,"expiresAt":"2030-01-01T00:00:00Z","tags":["a"]}""",
            ["UpdateItem"] = """{"name":"Walker","unitCost":2,"reorderPoint":3,"expiresAt":"2031-01-01T00:00:00Z"}""",
            ["CreateLocation"] = """{"name":"Walk 2"}""",
            ["UpdateLocation"] = """{"name":"Walk"}""",
            ["RecordMovement"] = $$"""{"type":"in","quantity":1,"toLocationId":"{{location}}","batch":"b1","supplier":"s1","reference":"r1"}""",
            ["CreateUser"] = """{"email":"walk@example.com","displayName":"Walk"}""",
            ["UpdateUser"] = """{"displayName":"Admin"}""",
            ["BulkUsers"] = """{"operations":[{"op":"create","data":{"email":"bulk@example.com","displayName":"Bulk"}}]}""",
            ["PutUserSchema"] = """{"fields":[{"name":"walk","type":"string","maxLength":10}]}""",
            ["UpdateMe"] = """{"displayName":"Admin"}""",
            ["PutEntraTrust"] = $$"""{"entraTenantId":"{{Guid.NewGuid()}}","allowEmailLinking":false}""",
            ["LinkEntraUser"] = $$"""{"objectId":"{{Guid.NewGuid()}}"}""",
            ["Login"] = $$"""{"tenant":"{{Tenant.Slug}}","email":"nobody@example.com","password":"not the password"}""",
            ["ForgotPassword"] = $$"""{"tenant":"{{Tenant.Slug}}","email":"nobody@example.com"}""",
        };

        _ids = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["/api/v1/users/"] = Tenant.AdminId,
            ["/api/v1/inventory/items/"] = item,
            ["/api/v1/inventory/locations/"] = location,
            ["/api/v1/inventory/movements/"] = movement,
            ["/api/v1/inventory/alerts/"] = alert,
            ["/api/v1/api-keys/"] = apiKey,
            ["/api/v1/auth/sessions/"] = spareSession,
            ["/api/v1/roles/"] = "walkers",
        };
    }

    /// <summary>The path with each parameter replaced by a real id, or by <paramref name="bad"/> for <paramref name="badParameter"/>.</summary>
    private string PathFor(Operation operation, string? badParameter = null, string? bad = null)
    {
        var path = operation.Path;
        foreach (var name in operation.Parameters("path"))
        {
            var marker = "{" + name + "}";
            var prefix = path[..path.IndexOf(marker, StringComparison.Ordinal)];
            var value = name == badParameter ? bad! : _ids.TryGetValue(prefix, out var id) ? Uri.EscapeDataString(id) : "none";
            path = path.Replace(marker, value, StringComparison.Ordinal);
        }

        return path;
    }

    private static string? MediaTypeOf(Operation operation) =>
        operation.Definition.TryGetProperty("requestBody", out var body) ? body.GetProperty("content").EnumerateObject().First().Name : null;

    private async Task WalkAsync(HttpClient client, Operation operation)
    {
        var mediaType = MediaTypeOf(operation);
        var plausible = mediaType is null ? null : PlausibleBody(operation);

        foreach (var parameter in operation.Parameters("path"))
        {
            foreach (var bad in BadIds)
            {
                await SendAsync(client, operation, PathFor(operation, parameter, bad), plausible, $"path {parameter}={Shorten(bad)}");
            }
        }

        foreach (var parameter in operation.Parameters("query"))
        {
            foreach (var bad in BadQueryValues)
            {
                await SendAsync(client, operation, $"{PathFor(operation)}?{parameter}={bad}", plausible, $"query {parameter}={Shorten(bad)}");
            }
        }

        if (mediaType is null)
        {
            await SendAsync(client, operation, PathFor(operation), null, "no body");
            return;
        }

        foreach (var (name, body) in BadBodies)
        {
            await SendAsync(client, operation, PathFor(operation), body, $"body {name}");
        }

        foreach (var (description, body) in WrongTypeBodies(operation))
        {
            await SendAsync(client, operation, PathFor(operation), body, description);
        }
    }

    /// <summary>Anonymous routes get every input without a credential; the others get broken credentials.</summary>
    private async Task WalkAnonymouslyAsync(HttpClient client, Operation operation)
    {
        if (operation.Anonymous)
        {
            await WalkAsync(client, operation);
        }

        var path = PathFor(operation);
        var body = MediaTypeOf(operation) is null ? null : PlausibleBody(operation);
        foreach (var (header, value) in BrokenCredentials())
        {
            await SendAsync(client, operation, path, body, $"{header}: {Shorten(value)}", (header, value));
        }
    }

    private IEnumerable<(string Header, string Value)> BrokenCredentials()
    {
        var now = DateTime.UtcNow;
        var tid = Guid.NewGuid().ToString();
        var foreign = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = $"https://login.microsoftonline.com/{tid}/v2.0",
            Audience = EntraClientId,
            Expires = now.AddMinutes(5),
            Claims = new Dictionary<string, object> { ["tid"] = tid, ["oid"] = "not-a-guid", ["ver"] = "2.0" },
            SigningCredentials = new SigningCredentials(_entraKey, SecurityAlgorithms.RsaSha256),
        });
        return
        [
            ("Authorization", "Bearer a.b.c"),
            ("Authorization", "Bearer e30.e30."),
            ("Authorization", "Bearer a.b.c.d.e"),
            ("Authorization", "Bearer garbage"),
            ("Authorization", "Bearer " + new string('a', 8000)),
            ("Authorization", "Bearer " + foreign),
            ("Authorization", "Bearer"),
            ("Authorization", "ApiKey garbage"),
            ("Authorization", "ApiKey pk_" + new string('x', 500)),
            ("Authorization", "Basic Og=="),
            ("X-Api-Key", "../../etc/passwd"),
            ("X-Api-Key", "ü名🙂"),
        ];
    }

    /// <summary>A valid body where one is known, else one of the operation's schema with a harmless value in every property.</summary>
    private string PlausibleBody(Operation operation) => BaseBody(operation)?.ToJsonString() ?? "{}";

    private JsonNode? BaseBody(Operation operation) =>
        operation.Definition.TryGetProperty("operationId", out var id) && _validBodies.TryGetValue(id.GetString()!, out var valid)
            ? JsonNode.Parse(valid)
            : Plausible(BodySchema(operation), 0);

    private JsonElement? BodySchema(Operation operation) =>
        operation.Definition.GetProperty("requestBody").GetProperty("content").EnumerateObject().First().Value.TryGetProperty("schema", out var schema)
            ? Resolve(schema)
            : null;

    private JsonElement Resolve(JsonElement schema) =>
        schema.TryGetProperty("$ref", out var reference)
            ? _document.GetProperty("components").GetProperty("schemas").GetProperty(reference.GetString()!["#/components/schemas/".Length..])
            : schema;

    private static IEnumerable<string> Types(JsonElement schema) =>
        !schema.TryGetProperty("type", out var type) ? [] : type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!) : [type.GetString()!];

    private JsonNode? Plausible(JsonElement? maybe, int depth)
    {
        if (maybe is not { } schema || depth > 3)
        {
            return null;
        }

        schema = Resolve(schema);
        if (schema.TryGetProperty("enum", out var values))
        {
            return JsonNode.Parse(values[0].GetRawText());
        }

        var types = Types(schema).ToList();
        if (schema.TryGetProperty("properties", out var properties))
        {
            var node = new JsonObject();
            foreach (var property in properties.EnumerateObject())
            {
                node[property.Name] = Plausible(property.Value, depth + 1);
            }

            return node;
        }

        return types.Contains("array") ? new JsonArray(schema.TryGetProperty("items", out var items) ? Plausible(items, depth + 1) : null)
            : types.Contains("string") ? (schema.TryGetProperty("format", out var format) && format.GetString() == "date-time" ? "2030-01-01T00:00:00Z" : "walk")
            : types.Contains("integer") || types.Contains("number") ? 1
            : types.Contains("boolean") ? false
            : types.Contains("object") ? new JsonObject()
            : null;
    }

    /// <summary>The plausible body with one property (also one level down) replaced by each bad value in turn.</summary>
    private IEnumerable<(string Description, string Body)> WrongTypeBodies(Operation operation)
    {
        if (BaseBody(operation) is not JsonObject plausible)
        {
            yield break;
        }

        foreach (var (path, parent, key) in Slots(plausible, ""))
        {
            var original = parent[key]?.DeepClone();
            foreach (var bad in BadPropertyValues)
            {
                parent[key] = JsonNode.Parse(bad);
                yield return ($"body {path}={Shorten(bad)}", plausible.ToJsonString());
            }

            parent[key] = original;
        }
    }

    private static IEnumerable<(string Path, JsonNode Parent, string Key)> Slots(JsonObject node, string prefix)
    {
        foreach (var (key, value) in node.ToList())
        {
            yield return (prefix + key, node, key);
            var inner = value as JsonObject ?? (value as JsonArray)?.FirstOrDefault() as JsonObject;
            if (inner is not null && prefix.Length == 0)
            {
                foreach (var slot in Slots(inner, key + "."))
                {
                    yield return slot;
                }
            }
        }
    }

    private async Task SendAsync(HttpClient client, Operation operation, string uri, string? body, string input, (string Header, string Value)? header = null)
    {
        Interlocked.Increment(ref _requests);
        using var request = new HttpRequestMessage(new HttpMethod(operation.Method), uri);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypeOf(operation) ?? "application/json");
        }

        if (header is var (name, value))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        try
        {
            using var response = await client.SendAsync(request, Ct);
            _statuses.AddOrUpdate((int)response.StatusCode, 1, (_, count) => count + 1);
            if ((int)response.StatusCode >= 500)
            {
                var text = await response.Content.ReadAsStringAsync(Ct);
                _failures.Add($"{operation.Method} {operation.Path} [{input}] -> {(int)response.StatusCode} {Shorten(text, 200)}");
            }
        }
        catch (Exception ex) when (!Ct.IsCancellationRequested)
        {
            _failures.Add($"{operation.Method} {operation.Path} [{input}] -> {ex.GetType().Name}: {Shorten(ex.Message, 200)}");
        }
    }

    private static string Shorten(string text, int length = 60) => text.Length <= length ? text : text[..length] + $"...({text.Length} chars)";
}
