using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Storage;
using Platform.Functions.Webhooks.Receivers;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;
using static Platform.Tests.Webhooks.Receivers.ReceiverApi;

namespace Platform.Tests.Webhooks.Receivers;

/// <summary>Incoming webhook receivers through HTTP: management, the signed public hook and the queued actions.</summary>
public sealed class ReceiverTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Webhooks:Receivers:MaxReceiversPerTenant"] = "4",
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "100000",

        // A test below plays a run that crashed mid-way while another queue message of it comes along: that one takes
        // over once the lease is over.
        ["Platform:Webhooks:Receivers:ProcessingLease"] = "00:00:01",

        // A deleted receiver's messages go a few per run, so the runs chain.
        ["Platform:Webhooks:Receivers:CleanupPerRun"] = "3",
    };

    private static readonly int[] OneNumber = [1];
    private static readonly string[] ErpKeyPermissions = ["webhooks.manage", "inventory.write", "inventory.read"];

    private static readonly string[] HookPermissions = ["webhooks.manage", "webhooks.read"];

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request)
    {
        using var client = App.CreateClient();
        using (request)
        {
            return await client.SendAsync(request, Ct);
        }
    }

    private async Task<double> QuantityAsync(string itemId) => (await Admin.GetJsonAsync($"{InventoryApi.Items}/{itemId}")).Num("quantity");

    private static string Movements(params object[] lines) => JsonSerializer.Serialize(new { type = "erp.receipt", data = new { movements = lines } });

    [Fact]
    public async Task CreatingAReceiverGivesItsUrlAndAStandardSecretOnceAndKeepsTheSecretSealed()
    {
        var response = await Admin.PostAsJsonAsync(ReceiversPath, new { name = "ERP", action = "inventory.movements" }, Ct);
        var created = await response.ReadJsonAsync(HttpStatusCode.Created);
        var id = created.Id();
        Assert.Equal($"http://localhost:7071/api/v1/hooks/{id}", created.Str("url"));
        Assert.Equal($"{ReceiversPath}/{id}", response.Headers.Location?.OriginalString);
        var secret = created.Str("secret")!;
        Assert.StartsWith("whsec_", secret, StringComparison.Ordinal);
        Assert.Equal(32, Convert.FromBase64String(secret["whsec_".Length..]).Length);
        Assert.Equal("standard", created.Str("scheme"));

        var read = await Admin.GetJsonAsync($"{ReceiversPath}/{id}");
        Assert.False(read.TryGetProperty("secret", out _));
        Assert.Single(await Admin.ListAsync(ReceiversPath));

        // At rest the key is sealed: neither its text nor its bytes are in the row.
        var row = await App.Services.GetRequiredService<ReceiverStore>().Rows(new TenantId(Tenant.Id)).GetAsync<TableEntity>($"r:{id}", Ct);
        var stored = string.Join("|", row!.Select(kv => kv.Value).Select(v => v is byte[] b ? Convert.ToBase64String(b) : v?.ToString()));
        Assert.DoesNotContain(secret["whsec_".Length..], stored, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadInputToCreateIsRefused()
    {
        // workflows.event is an action since workflows exist (tests/Platform.Tests/Workflows cover it).
        await (await Admin.PostAsJsonAsync(ReceiversPath, new { name = "x", action = "reports.run" }, Ct)).ReadProblemAsync(400, "validation_failed");
        await (await Admin.PostAsJsonAsync(ReceiversPath, new { name = "x", action = "jobs.start", scheme = "svix" }, Ct)).ReadProblemAsync(400, "validation_failed");
        await (await Admin.PostAsJsonAsync(ReceiversPath, new { name = "", action = "jobs.start" }, Ct)).ReadProblemAsync(400, "validation_failed");
        await (await Admin.PostAsJsonAsync(ReceiversPath, new { name = "x", action = "jobs.start", options = OneNumber }, Ct)).ReadProblemAsync(400, "validation_failed");
        Assert.Empty(await Admin.ListAsync(ReceiversPath));
    }

    [Fact]
    public async Task ATenantHasAtMostItsCapOfReceivers()
    {
        for (var i = 0; i < 4; i++)
        {
            await Admin.CreateReceiverAsync("jobs.start");
        }

        await (await Admin.PostAsJsonAsync(ReceiversPath, new { name = "one more", action = "jobs.start" }, Ct)).ReadProblemAsync(409, "receiver_limit_reached");
        var first = (await Admin.ListAsync(ReceiversPath))[0].Id();
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{ReceiversPath}/{first}", Ct)).StatusCode);
        await Admin.CreateReceiverAsync("jobs.start");
    }

    [Fact]
    public async Task AReceiverNeverGetsMoreThanItsCreatorHolds()
    {
        var role = await Admin.PutAsJsonAsync("/api/v1/roles/hooks", new { permissions = HookPermissions }, Ct);
        Assert.True(role.IsSuccessStatusCode);
        using var hooksOnly = await SignedInAsync("hooks@example.com", "hooks");
        var refused = await (await hooksOnly.PostAsJsonAsync(ReceiversPath, new { name = "x", action = "inventory.movements" }, Ct)).ReadProblemAsync(403, "permission_not_held");
        Assert.Equal("inventory.write", refused.GetProperty("permissions")[0].GetString());
        await (await hooksOnly.PostAsJsonAsync(ReceiversPath, new { name = "x", action = "jobs.start" }, Ct)).ReadProblemAsync(403, "permission_not_held");

        using var user = await SignedInAsync("plain@example.com");
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsJsonAsync(ReceiversPath, new { name = "x", action = "jobs.start" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync(ReceiversPath, Ct)).StatusCode);
    }

    [Fact]
    public async Task AMessageSignedByTheReferenceLibraryIsAcceptedAt202AndItsMovementsAppliedAsTheReceiver()
    {
        var item = (await Admin.CreateItemAsync("BOLT-10")).Id();
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");

        var response = await SendAsync(SignedStandard(receiver, Movements(new { sku = "bolt-10", type = "in", quantity = 40, reference = "PO-1" }, new { itemId = item, type = "out", quantity = 15 })));
        var accepted = await response.ReadJsonAsync(HttpStatusCode.Accepted);
        Assert.False(accepted.GetProperty("duplicate").GetBoolean());

        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal("succeeded", message.Str("status"));
        Assert.Equal(2, message.GetProperty("linesApplied").GetInt32());
        Assert.StartsWith("msg_", message.Str("webhookId"), StringComparison.Ordinal);
        Assert.Equal(25, await QuantityAsync(item));

        var audit = (await Admin.GetJsonAsync($"/api/v1/audit?pageSize=1000&actorId={receiver.Id}")).GetProperty("items").EnumerateArray().ToList();
        var movements = audit.Where(e => e.Str("action") == "inventory.movement.created").ToList();
        Assert.Equal(2, movements.Count);
        Assert.All(movements, e => Assert.Equal("receiver", e.Str("actorType")));
        Assert.Contains(audit, e => e.Str("action") == "webhook.message.processed");
    }

    [Fact]
    public async Task AReceiverCreatedWithAnApiKeyStopsActingWhenTheKeyIsRevoked()
    {
        var item = (await Admin.CreateItemAsync("NUT-10")).Id();
        var key = await (await Admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "erp", permissions = ErpKeyPermissions }, Ct))
            .ReadJsonAsync(HttpStatusCode.Created);
        using var byKey = App.CreateClient();
        byKey.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("ApiKey", key.Str("key"));
        var receiver = await byKey.CreateReceiverAsync("inventory.movements");
        await SendAsync(SignedStandard(receiver, Movements(new { sku = "nut-10", type = "in", quantity = 5 })));
        Assert.Equal("succeeded", (await Admin.ProcessedMessageAsync(receiver.Id)).Str("status"));

        // The key is revoked: what it set up must not go on acting for its creator.
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/api-keys/{key.Id()}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedStandard(receiver, Movements(new { sku = "nut-10", type = "in", quantity = 7 })))).StatusCode);

        var refused = await Admin.ProcessedMessageAsync(receiver.Id, count: 2);
        Assert.Equal("failed", refused.Str("status"));
        Assert.Contains("API key", refused.Str("error"), StringComparison.Ordinal);
        Assert.Equal(5, await QuantityAsync(item));
    }

    [Fact]
    public async Task SeveralSignaturesAreAcceptedWhenOneIsRight()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var body = Movements(new { sku = "NONE", type = "in", quantity = 1 });
        var request = SignedStandard(receiver, body);
        var good = request.Headers.GetValues("webhook-signature").Single();
        request.Headers.Remove("webhook-signature");
        request.Headers.Add("webhook-signature", $"v1,{Convert.ToBase64String(new byte[32])} v1a,xyz {good}");
        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task AReplayedMessageIdAnswers200AndActsOnce()
    {
        var item = (await Admin.CreateItemAsync("NUT-5")).Id();
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var body = Movements(new { sku = "NUT-5", type = "in", quantity = 7 });

        var first = await (await SendAsync(SignedStandard(receiver, body, id: "evt_1"))).ReadJsonAsync(HttpStatusCode.Accepted);
        await Admin.ProcessedMessageAsync(receiver.Id);
        var again = await (await SendAsync(SignedStandard(receiver, body, id: "evt_1"))).ReadJsonAsync(HttpStatusCode.OK);
        Assert.True(again.GetProperty("duplicate").GetBoolean());
        Assert.Equal(first.Id(), again.Id());

        Assert.Single(await Admin.MessagesAsync(receiver.Id));
        Assert.Equal(7, await QuantityAsync(item));
    }

    [Fact]
    public async Task AMessageProcessedTwiceAppliesEachLineOnce()
    {
        var item = (await Admin.CreateItemAsync("WASHER")).Id();
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        await SendAsync(SignedStandard(receiver, Movements(new { sku = "WASHER", type = "in", quantity = 10 }, new { sku = "WASHER", type = "out", quantity = 3 })));
        var done = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal(7, await QuantityAsync(item));

        // A consumer that applied the lines and crashed before recording it: the row still says processing, and the
        // queue hands the same message out again.
        var store = App.Services.GetRequiredService<ReceiverStore>();
        var tenant = new TenantId(Tenant.Id);
        var row = await store.Rows(tenant).QueryAsync<ReceivedMessageEntity>(ReceivedMessageEntity.PrefixFor(receiver.Id), cancellationToken: Ct).SingleAsync(Ct);
        row.Status = MessageStatus.Processing;
        await store.Rows(tenant).UpdateAsync(row, Azure.ETag.All, Ct);
        await store.EnqueueAsync(tenant, row, Ct);

        var again = await Eventually.Until(() => Admin.MessagesAsync(receiver.Id),
            m => m[0].GetProperty("attempts").GetInt32() == 2 && m[0].Str("status") == "succeeded", "the message to be processed again");
        Assert.Equal(done.Id(), again[0].Id());
        Assert.Equal(7, await QuantityAsync(item));
        var movements = (await Admin.GetJsonAsync($"{InventoryApi.Items}/{item}/movements")).GetProperty("items").GetArrayLength();
        Assert.Equal(2, movements);
    }

    [Fact]
    public async Task BadLinesFailAloneAndAreListedWithTheMessage()
    {
        var item = (await Admin.CreateItemAsync("GEAR")).Id();
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        await SendAsync(SignedStandard(receiver, Movements(
            new { sku = "GEAR", type = "in", quantity = 5 },
            new { sku = "NO-SUCH-SKU", type = "in", quantity = 1 },
            new { sku = "GEAR", type = "sideways", quantity = 1 },
            new { sku = "GEAR", type = "out", quantity = 500 },
            new { type = "in", quantity = 1 },
            new { sku = "GEAR", type = "out", quantity = 2 })));

        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal("completed_with_errors", message.Str("status"));
        Assert.Equal(2, message.GetProperty("linesApplied").GetInt32());
        Assert.Equal(4, message.GetProperty("linesFailed").GetInt32());
        var errors = message.GetProperty("errors").EnumerateArray().ToDictionary(e => e.GetProperty("index").GetInt32(), e => e.Str("code"));
        Assert.Equal(new Dictionary<int, string?> { [1] = "not_found", [2] = "validation_failed", [3] = "insufficient_stock", [4] = "invalid_line" }, errors);
        Assert.Equal(3, await QuantityAsync(item));
    }

    [Fact]
    public async Task AMessageWithoutMovementsFails()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        await SendAsync(SignedStandard(receiver, """{"hello":"world"}"""));
        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal("failed", message.Str("status"));
        Assert.Contains("movements", message.Str("error"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadSignatureOldTimestampAndUnknownReceiverAre401AndStoreNothing()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var body = Movements(new { sku = "X", type = "in", quantity = 1 });

        var wrongSecret = "whsec_" + Convert.ToBase64String(new byte[32]);
        var bad = await (await SendAsync(SignedStandard(receiver, body, secret: wrongSecret))).ReadProblemAsync(401, "invalid_signature");
        var unknown = await (await SendAsync(SignedStandard(receiver with { Url = "http://localhost/api/v1/hooks/01JZZZZZZZZZZZZZZZZZZZZZZZ" }, body))).ReadProblemAsync(401, "invalid_signature");
        Assert.Equal(bad.GetProperty("detail").GetString(), unknown.GetProperty("detail").GetString());

        var tampered = SignedStandard(receiver, body);
        tampered.Content = new StringContent(body.Replace("1", "9", StringComparison.Ordinal), Encoding.UTF8, "application/json");
        await (await SendAsync(tampered)).ReadProblemAsync(401, "invalid_signature");

        var unsigned = Post(receiver, body);
        await (await SendAsync(unsigned)).ReadProblemAsync(401, "invalid_signature");

        await (await SendAsync(SignedStandard(receiver, body, at: DateTimeOffset.UtcNow.AddMinutes(-6)))).ReadProblemAsync(401, "timestamp_out_of_range");
        await (await SendAsync(SignedStandard(receiver, body, at: DateTimeOffset.UtcNow.AddMinutes(6)))).ReadProblemAsync(401, "timestamp_out_of_range");

        Assert.Empty(await Admin.MessagesAsync(receiver.Id));
    }

    [Fact]
    public async Task BodiesOverOneMegabyteWrongContentTypesAndEmptyBodiesAreRefused()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var huge = "{\"pad\":\"" + new string('a', ReceiverOptions.MaxBodyBytes) + "\"}";
        await (await SendAsync(SignedStandard(receiver, huge))).ReadProblemAsync(413, "payload_too_large");

        // A chunked body (no Content-Length) is stopped at the limit too.
        var chunked = SignedStandard(receiver, "{}");
        chunked.Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(huge)));
        chunked.Content.Headers.ContentType = new("application/json");
        await (await SendAsync(chunked)).ReadProblemAsync(413, "payload_too_large");

        await (await SendAsync(Post(receiver, "hello", "text/plain"))).ReadProblemAsync(415, "unsupported_media_type");
        await (await SendAsync(SignedStandard(receiver, ""))).ReadProblemAsync(400, "invalid_body");
        await (await SendAsync(SignedStandard(receiver, "{not json"))).ReadProblemAsync(400, "invalid_json");

        // Just under the limit is accepted.
        var fits = "{\"pad\":\"" + new string('a', ReceiverOptions.MaxBodyBytes - 20) + "\"}";
        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedStandard(receiver, fits))).StatusCode);
    }

    [Fact]
    public async Task GitHubSignedDeliveriesAreAcceptedAndDeduplicatedByDeliveryId()
    {
        var item = (await Admin.CreateItemAsync("CABLE")).Id();
        var receiver = await Admin.CreateReceiverAsync("inventory.movements", "github");
        Assert.DoesNotContain("whsec_", receiver.Secret, StringComparison.Ordinal);
        var body = JsonSerializer.Serialize(new { movements = new[] { new { sku = "CABLE", type = "in", quantity = 3 } } });

        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedGitHub(receiver, body, "72d3162e-cc78-11e3-81ab-4c9367dc0958"))).StatusCode);
        await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(SignedGitHub(receiver, body, "72d3162e-cc78-11e3-81ab-4c9367dc0958"))).StatusCode);
        await (await SendAsync(SignedGitHub(receiver, body, "other", secret: "not the secret"))).ReadProblemAsync(401, "invalid_signature");
        Assert.Equal(3, await QuantityAsync(item));
    }

    [Fact]
    public async Task StripeSignedEventsAreAcceptedByTheirIdAndStaleOnesRefused()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements", "stripe");
        var body = JsonSerializer.Serialize(new { id = "evt_1NG8Du2eZvKYlo2CUI79vXWy", type = "invoice.paid", data = new { movements = new[] { new { sku = "NONE", type = "in", quantity = 1 } } } });

        var accepted = await (await SendAsync(SignedStripe(receiver, body))).ReadJsonAsync(HttpStatusCode.Accepted);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(SignedStripe(receiver, body))).StatusCode);
        await (await SendAsync(SignedStripe(receiver, body, DateTimeOffset.UtcNow.AddMinutes(-10)))).ReadProblemAsync(401, "timestamp_out_of_range");
        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal(accepted.Id(), message.Id());
        Assert.Equal("evt_1NG8Du2eZvKYlo2CUI79vXWy", message.Str("webhookId"));
    }

    [Fact]
    public async Task ADeletedReceiverStopsAcceptingAndItsMessagesGo()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var body = Movements(new { sku = "X", type = "in", quantity = 1 });
        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedStandard(receiver, body))).StatusCode);
        await Admin.ProcessedMessageAsync(receiver.Id);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedStandard(receiver, body))).StatusCode);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"{ReceiversPath}/{receiver.Id}", Ct)).StatusCode);
        await (await SendAsync(SignedStandard(receiver, body))).ReadProblemAsync(401, "invalid_signature");
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync($"{ReceiversPath}/{receiver.Id}/messages", Ct)).StatusCode);

        // The messages, their "seen" rows and their bodies go in the background (3 per run here, so in several runs).
        var rows = App.Services.GetRequiredService<ReceiverStore>().Rows(new TenantId(Tenant.Id));
        var payloads = App.Storage.Container(ReceiverStore.PayloadContainer);
        await Eventually.Until(
            async () => await rows.QueryAsync<TableEntity>(ReceivedMessageEntity.PrefixFor(receiver.Id), cancellationToken: Ct).CountAsync(Ct) +
                await rows.QueryAsync<TableEntity>($"d:{receiver.Id}:", cancellationToken: Ct).CountAsync(Ct) +
                await payloads.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"{Tenant.Id}/{receiver.Id}/", cancellationToken: Ct).CountAsync(Ct),
            left => left == 0, "the deleted receiver's messages and bodies to be removed");
    }

    [Fact]
    public async Task AGitHubBodyResentUnderANewDeliveryIdIsADuplicateAndActsOnce()
    {
        // GitHub signs the body alone; X-GitHub-Delivery is not signed. Whoever saw one signed request (a log, a proxy)
        // resends it with a delivery id of their own.
        var item = (await Admin.CreateItemAsync("PIPE")).Id();
        var receiver = await Admin.CreateReceiverAsync("inventory.movements", "github");
        var body = JsonSerializer.Serialize(new { movements = new[] { new { sku = "PIPE", type = "in", quantity = 4 } } });

        var first = await (await SendAsync(SignedGitHub(receiver, body, "a0000000-0000-0000-0000-000000000001"))).ReadJsonAsync(HttpStatusCode.Accepted);
        await Admin.ProcessedMessageAsync(receiver.Id);
        var replayed = await (await SendAsync(SignedGitHub(receiver, body, "f0000000-0000-0000-0000-00000000000f"))).ReadJsonAsync(HttpStatusCode.OK);
        Assert.True(replayed.GetProperty("duplicate").GetBoolean());
        Assert.Equal(first.Id(), replayed.Id());

        Assert.Single(await Admin.MessagesAsync(receiver.Id));
        Assert.Equal(4, await QuantityAsync(item));

        // A different body is a different message, whatever its delivery id.
        var other = JsonSerializer.Serialize(new { movements = new[] { new { sku = "PIPE", type = "in", quantity = 1 } } });
        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedGitHub(receiver, other, "a0000000-0000-0000-0000-000000000001"))).StatusCode);
        await Admin.ProcessedMessageAsync(receiver.Id, 2);
        Assert.Equal(5, await QuantityAsync(item));
    }

    [Fact]
    public async Task AStripeReceiverTakesTheSigningSecretStripeMadeAndNeverShowsIt()
    {
        // Stripe makes the endpoint's signing secret itself; it cannot be given ours.
        var stripeSecret = "whsec_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var response = await Admin.PostAsJsonAsync(ReceiversPath,
            new { name = "Stripe", action = "inventory.movements", scheme = "stripe", options = new { secret = stripeSecret, account = "acct_1" } }, Ct);
        var created = await response.ReadJsonAsync(HttpStatusCode.Created);
        Assert.Equal(JsonValueKind.Null, created.GetProperty("secret").ValueKind);
        Assert.Equal("""{"account":"acct_1"}""", created.GetProperty("options").GetRawText());
        var receiver = new TestReceiver(created.Id(), created.Str("url")!, stripeSecret, "stripe");

        var item = (await Admin.CreateItemAsync("INVOICED")).Id();
        var body = JsonSerializer.Serialize(new { id = "evt_given_secret", type = "invoice.paid", data = new { movements = new[] { new { sku = "INVOICED", type = "in", quantity = 2 } } } });
        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedStripe(receiver, body))).StatusCode);
        Assert.Equal("succeeded", (await Admin.ProcessedMessageAsync(receiver.Id)).Str("status"));
        Assert.Equal(2, await QuantityAsync(item));

        // Ours no longer signs for it, and nothing shows or stores the given secret's text.
        var read = await Admin.GetJsonAsync($"{ReceiversPath}/{receiver.Id}");
        Assert.DoesNotContain(stripeSecret, read.GetRawText(), StringComparison.Ordinal);
        var row = await App.Services.GetRequiredService<ReceiverStore>().Rows(new TenantId(Tenant.Id)).GetAsync<TableEntity>($"r:{receiver.Id}", Ct);
        var stored = string.Join("|", row!.Select(kv => kv.Value).Select(v => v is byte[] b ? Encoding.UTF8.GetString(b) + Convert.ToBase64String(b) : v?.ToString()));
        Assert.DoesNotContain(stripeSecret[6..], stored, StringComparison.Ordinal);
        await (await SendAsync(SignedStripe(receiver with { Secret = "whsec_" + new string('0', 32) }, body.Replace("evt_given", "evt_other", StringComparison.Ordinal))))
            .ReadProblemAsync(401, "invalid_signature");
    }

    [Fact]
    public async Task TheApiDocumentDescribesTheGivenSecret()
    {
        using var client = App.CreateClient();
        var document = await client.GetStringAsync("/api/openapi/v1.json", Ct);
        Assert.Contains("options.secret is the signing secret the sender made", document, StringComparison.Ordinal);
        Assert.Contains("null when options.secret gave the sender's own", document, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AGivenSecretIsCheckedAndOnlyForStripeAndGitHub()
    {
        async Task<string> RefusedAsync(string scheme, object secret)
        {
            var problem = await (await Admin.PostAsJsonAsync(ReceiversPath, new { name = "x", action = "jobs.start", scheme, options = new { secret } }, Ct))
                .ReadProblemAsync(400, "validation_failed");
            var reason = problem.GetProperty("errors").GetProperty("options.secret")[0].GetString()!;
            Assert.DoesNotContain(secret.ToString()!, reason, StringComparison.Ordinal);
            return reason;
        }

        Assert.Contains("whsec_", await RefusedAsync("stripe", "sk_live_" + new string('a', 30)), StringComparison.Ordinal);
        await RefusedAsync("stripe", "whsec_short");
        await RefusedAsync("stripe", "whsec_" + new string('a', 300));
        await RefusedAsync("github", "too short");
        await RefusedAsync("github", "has a space in the middle of it");
        await RefusedAsync("github", 1234567890123456789L);
        Assert.Contains("stripe and github", await RefusedAsync("standard", "whsec_" + Convert.ToBase64String(new byte[32])), StringComparison.Ordinal);
        Assert.Empty(await Admin.ListAsync(ReceiversPath));

        // GitHub: the secret typed into the webhook's settings signs its deliveries.
        var secret = "my-github-webhook-secret-42";
        var created = await (await Admin.PostAsJsonAsync(ReceiversPath, new { name = "CI", action = "inventory.movements", scheme = "github", options = new { secret } }, Ct))
            .ReadJsonAsync(HttpStatusCode.Created);
        Assert.Equal(JsonValueKind.Null, created.GetProperty("options").ValueKind);
        var receiver = new TestReceiver(created.Id(), created.Str("url")!, secret, "github");
        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedGitHub(receiver, """{"movements":[]}""", "d-1"))).StatusCode);
    }

    [Fact]
    public async Task AnotherTenantCannotSeeDeleteOrListTheMessagesOfAReceiver()
    {
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);

        await (await otherAdmin.GetAsync($"{ReceiversPath}/{receiver.Id}", Ct)).ReadProblemAsync(404, "not_found");
        await (await otherAdmin.GetAsync($"{ReceiversPath}/{receiver.Id}/messages", Ct)).ReadProblemAsync(404, "not_found");
        await (await otherAdmin.DeleteAsync($"{ReceiversPath}/{receiver.Id}", Ct)).ReadProblemAsync(404, "not_found");
        Assert.Empty(await otherAdmin.ListAsync(ReceiversPath));

        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync($"{ReceiversPath}/{receiver.Id}", Ct)).StatusCode);
    }

    [Fact]
    public async Task AnImportFromALoopbackUrlIsRefusedWithoutAConnection()
    {
        using var listener = new RecordingListener();
        var receiver = await Admin.CreateReceiverAsync("jobs.start");
        var body = JsonSerializer.Serialize(new { type = "import", parameters = new { kind = "inventory-items", url = $"http://127.0.0.1:{listener.Port}/items.csv" } });
        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(SignedStandard(receiver, body))).StatusCode);

        var message = await Admin.ProcessedMessageAsync(receiver.Id);
        Assert.Equal("failed", message.Str("status"));
        Assert.Contains("loopback", message.Str("error"), StringComparison.Ordinal);
        Assert.Equal(0, listener.Connections);
    }
}
