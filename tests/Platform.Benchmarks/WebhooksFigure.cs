using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Platform.Functions.Inventory;
using Platform.Functions.Triggers;
using Platform.Functions.Webhooks;
using Platform.Functions.Webhooks.Receivers;
using StandardWebhooks;

namespace Platform.Benchmarks;

/// <summary>
/// <c>webhooks &lt;appExecutable&gt; [seconds=30] [deliveries=1000] [intake=2000]</c>: the webhook figures, each next to a
/// baseline measured in the same run. The app runs as its own process (as deployed) with
/// <c>Platform__Webhooks__AllowPrivateNetworks=true</c>, so it may deliver to a receiver this process runs on loopback
/// (Kestrel): <c>/latency</c> and <c>/fast</c> answer 200 at once, <c>/dead</c> never answers.
/// (1) Change-to-delivery latency: <see cref="Rate"/> <c>POST /api/v1/inventory/items/{id}/movements</c> a second
/// (open loop, at most <see cref="MaxInFlight"/> unanswered, round robin over <see cref="Items"/> items) for <c>seconds</c> after <see cref="WarmUp"/>; each
/// movement's <c>inventory.movement.created</c> delivery is matched by the movement id in its <c>data.id</c>, and timed
/// from the moment its request was answered. Baseline: the same requests' own latency (send to answer).
/// (2) Isolation: the same pass again with a second endpoint, subscribed to the same events, that never answers (the
/// app's delivery timeout applies), and once more after deleting it; the healthy endpoint's latency of each.
/// (3) Deliveries/s: <c>deliveries</c> <c>user.created</c> events made at once (<c>POST /api/v1/users/bulk</c>) for one
/// endpoint, counted at the receiver from its first delivery to its last, next to as many Standard Webhooks-signed
/// POSTs sent by this process straight to the receiver, one after another on one connection, as a lane sends.
/// (4) Receiver intake: <c>intake</c> signed messages (one movement line each, unique <c>webhook-id</c>) posted to
/// <c>/api/v1/hooks/{receiverId}</c> by <see cref="Clients"/> clients, next to <c>GET /api/health/live</c> the same way.
/// </summary>
/// <remarks>
/// Every figure has a tenant of its own, so the events of one never reach another's endpoints. Deliveries must arrive
/// signed (<c>webhook-id</c>, <c>webhook-timestamp</c>, <c>webhook-signature: v1,...</c>), counted, not verified; an
/// endpoint's deliveries are matched once each, repeats (at least once) are counted apart.
/// </remarks>
internal static class WebhooksFigure
{
    private const int Rate = 50;
    // Enough that movements of one item rarely overlap (each item gets 1 a second): the figure is the event's path,
    // not a hot item's retries.
    private const int Items = 50;
    private const int Clients = 16;
    private const int MaxInFlight = 64;
    private const int DefaultSeconds = 30;
    private const int DefaultDeliveries = 1000;
    private const int DefaultIntake = 2000;
    private const int IntakeWarmUp = 50;
    private const string MovementEvent = "inventory.movement.created";
    private static readonly string[] MemberRole = ["member"];
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan DeliveryDeadline = TimeSpan.FromSeconds(120);

    /// <summary>Settings of the app this figure changes or reports; also handed on from the caller's environment.</summary>
    private static readonly string[] PassedOnPrefixes = ["Platform__Webhooks__", "Platform__Triggers__", "Platform__Events__"];

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 1 or > 4 || !BenchAdmin.TryCount(args, 1, DefaultSeconds, out var seconds, max: 3600)
            || !BenchAdmin.TryCount(args, 2, DefaultDeliveries, out var deliveries, max: 100_000) || !BenchAdmin.TryCount(args, 3, DefaultIntake, out var intake, max: 1_000_000))
        {
            await Console.Error.WriteLineAsync("usage: webhooks <appExecutable> [seconds=30] [deliveries=1000] [intake=2000] (whole numbers from 1)");
            return 2;
        }

        var executable = Path.GetFullPath(args[0]);
        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (!File.Exists(executable) || string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync($"webhooks: need the app executable ({executable}) and AzureWebJobsStorage (infra/bench/webhooks.sh sets both)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (prefix, environment) = ScaleFigureApp.Environment(storage, signingKey);
        environment["Platform__Webhooks__AllowPrivateNetworks"] = "true";
        // Every intake request comes from one sender; the default (3,000 a minute per receiver) would answer most 429.
        environment["Platform__Webhooks__Receivers__RequestsPerMinute"] = "1000000";
        var overrides = Environment.GetEnvironmentVariables().Keys.OfType<string>()
            .Where(name => PassedOnPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))).Order(StringComparer.Ordinal)
            .ToDictionary(name => name, name => Environment.GetEnvironmentVariable(name)!);
        foreach (var (name, value) in overrides)
        {
            environment[name] = value;
        }

        var triggers = new TriggerOptions();
        var outbound = new OutboundHttpOptions();
        var webhookOptions = new WebhookOptions();
        string Setting(string name, object fallback) => environment.TryGetValue(name, out var v) ? v : Convert.ToString(fallback, CultureInfo.InvariantCulture)!;

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"webhooks: (1) {Rate} movements/s (open loop, at most {MaxInFlight} unanswered) on {Items} items for {seconds} s after {WarmUp.TotalSeconds:0} s warm-up, each one's delivery timed from its "
            + $"request's answer; baseline: the requests' own latency. (2) the same with a second endpoint that never answers, and after deleting it. "
            + $"(3) {deliveries:N0} user.created events (bulk create) to one endpoint, deliveries/s at the receiver; baseline: as many signed POSTs "
            + $"from this process, one after another on one connection. (4) {intake:N0} signed POST /api/v1/hooks/{{id}} (1 movement line), {Clients} "
            + $"clients, next to GET /api/health/live; {Environment.ProcessorCount} cores"));
        Console.WriteLine($"  app       {executable}");
        Console.WriteLine($"  prefix    {prefix}");
        Console.WriteLine(
            $"  settings  Triggers:MaxPollingInterval {Setting("Platform__Triggers__MaxPollingInterval", triggers.MaxPollingInterval)}, "
            + $"Triggers:BatchSize {Setting("Platform__Triggers__BatchSize", triggers.BatchSize)}, Webhooks:Timeout {Setting("Platform__Webhooks__Timeout", outbound.Timeout)}, "
            + $"Webhooks:RetrySchedule {Setting("Platform__Webhooks__RetrySchedule", webhookOptions.RetrySchedule)}, Webhooks:AllowPrivateNetworks true, "
            + $"Webhooks:Receivers:RequestsPerMinute 1000000{(overrides.Count > 0 ? " (set when calling: " + string.Join(", ", overrides.Keys) + ")" : "")}");

        await using var receiver = await Receiver.StartAsync();
        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan }) { Timeout = TimeSpan.FromMinutes(5) };
        using var server = ServerProcess.Start(executable, environment);
        var report = new Report(seconds, deliveries, intake, Setting("Platform__Webhooks__Timeout", outbound.Timeout));
        try
        {
            await server.WaitForOkAsync(client, "/api/health/live", StartTimeout);
            await server.WaitForOkAsync(client, "/api/health/ready", StartTimeout);
            var app = new App(client, server);

            // (1) and (2): one tenant, one healthy endpoint; the dead one joins for the middle pass.
            var latencyAdmin = await BenchAdmin.SignUpAsync(client, server);
            var items = new string[Items];
            for (var i = 0; i < Items; i++)
            {
                items[i] = await app.CreateItemAsync(latencyAdmin, i);
            }

            var healthy = await app.CreateEndpointAsync(latencyAdmin, receiver.Url("/latency"), MovementEvent);
            await Progress("tenant, items and the healthy endpoint made; pass 1 (healthy endpoint alone)");
            report.Alone = await RatePassAsync(app, latencyAdmin, items, receiver, seconds, healthy.Id);
            await Progress(report.Alone.Summary("alone"));

            var dead = await app.CreateEndpointAsync(latencyAdmin, receiver.Url("/dead"), MovementEvent);
            var deadBefore = receiver.DeadAttempts;
            report.WithDead = await RatePassAsync(app, latencyAdmin, items, receiver, seconds, healthy.Id);
            report.DeadAttempts = receiver.DeadAttempts - deadBefore;
            await Progress(report.WithDead.Summary("with the dead endpoint"));

            await app.DeleteEndpointAsync(latencyAdmin, dead.Id);
            await WaitAsync(() => receiver.DeadInFlight == 0, TimeSpan.FromMinutes(1));
            report.After = await RatePassAsync(app, latencyAdmin, items, receiver, seconds, healthy.Id);
            await Progress(report.After.Summary("alone again"));

            // (3) Throughput of one lane; the baseline first, while the app is idle.
            var bulkAdmin = await BenchAdmin.SignUpAsync(client, server);
            var fast = await app.CreateEndpointAsync(bulkAdmin, receiver.Url("/fast"), "user.created");
            report.DirectDeliveries = await SendDirectAsync(receiver, fast.Secret, bulkAdmin.TenantId, deliveries);
            await Progress($"baseline: {report.DirectDeliveries.PerSecond:0} POSTs/s straight to the receiver");
            report.AppDeliveries = await BulkDeliveriesAsync(app, bulkAdmin, receiver, deliveries);
            await Progress($"app: {report.AppDeliveries.PerSecond:0} deliveries/s");

            // (4) Intake, in a tenant without endpoints: the health route first, before the hook's messages are acted on.
            var intakeAdmin = await BenchAdmin.SignUpAsync(client, server);
            var intakeItem = await app.CreateItemAsync(intakeAdmin, 0);
            var hook = await app.CreateReceiverAsync(intakeAdmin);
            await ClosedLoopAsync(IntakeWarmUp, _ => app.HealthAsync());
            report.Health = await ClosedLoopAsync(intake, _ => app.HealthAsync());
            var body = JsonSerializer.Serialize(new { type = "erp.goods_receipt", data = new { movements = new[] { new { itemId = intakeItem, type = "in", quantity = 1 } } } });
            await ClosedLoopAsync(IntakeWarmUp, n => app.HookAsync(hook.Url, hook.Secret, "warm-" + n.ToString(CultureInfo.InvariantCulture), body));
            report.Hooks = await ClosedLoopAsync(intake, n => app.HookAsync(hook.Url, hook.Secret, "msg-" + n.ToString(CultureInfo.InvariantCulture), body));
            var lastAccepted = Stopwatch.StartNew();
            await Progress($"intake: {report.Hooks.PerSecond:0} requests/s; waiting for the messages to be acted on");
            var expected = intake + IntakeWarmUp;
            report.ActedOn = await WaitAsync(async () => await app.QuantityAsync(intakeAdmin, intakeItem) >= expected, DeliveryDeadline + TimeSpan.FromSeconds(intake / 10.0))
                ? lastAccepted.Elapsed : null;
            report.Quantity = await app.QuantityAsync(intakeAdmin, intakeItem);
            report.Print();
            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException)
        {
            await Console.Error.WriteLineAsync($"webhooks: {e.Message}{Environment.NewLine}app output (tail):{Environment.NewLine}{server.OutputTail()}");
            report.Print();
            return 1;
        }
        finally
        {
            await server.StopAsync(StopGrace);
        }
    }

    private static Task Progress(string text) => Console.Error.WriteLineAsync("webhooks: " + text);

    private static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    /// <summary>Polls <paramref name="done"/> every 100 ms until it holds or <paramref name="timeout"/> passes; says which.</summary>
    private static async Task<bool> WaitAsync(Func<Task<bool>> done, TimeSpan timeout)
    {
        var waited = Stopwatch.StartNew();
        while (!await done())
        {
            if (waited.Elapsed > timeout)
            {
                return false;
            }

            await Task.Delay(100);
        }

        return true;
    }

    private static Task<bool> WaitAsync(Func<bool> done, TimeSpan timeout) => WaitAsync(() => Task.FromResult(done()), timeout);

    /// <summary>One movement request: its id (null if refused), when it was sent and answered.</summary>
    private sealed record Sent(string? MovementId, long SentAt, long AnsweredAt, bool Measured);

    /// <summary>
    /// A steady-rate pass: the requests' latency and, for those answered 201, the delivery's latency from the answer.
    /// <see cref="Skipped"/> slots of the schedule found <see cref="MaxInFlight"/> requests still unanswered.
    /// </summary>
    private sealed record RatePass(double[] Answer, double[] Delivery, int Requests, int Skipped, int Refused, int Missing, int Repeats, int Unsigned, double AchievedRate, double MaxLag)
    {
        /// <summary>Event time to the delivery row's creation: the relay (outbox to subscribers) and the fan-out.</summary>
        public double[] ToFanOut { get; init; } = [];

        /// <summary>The delivery row's creation to its arrival: the queue message waking the lane, the lane's turn, the POST.</summary>
        public double[] ToArrival { get; init; } = [];

        public string Summary(string name) => string.Create(CultureInfo.InvariantCulture,
            $"{name}: {Requests} requests at {AchievedRate:0.0}/s ({Skipped} slots skipped), answer p50 {Statistics.Ms(Statistics.Percentile(Answer, 50))}, "
            + $"delivery p50 {(Delivery.Length > 0 ? Statistics.Ms(Statistics.Percentile(Delivery, 50)) : "-")}, p99 {(Delivery.Length > 0 ? Statistics.Ms(Statistics.Percentile(Delivery, 99)) : "-")}, missing {Missing}");
    }

    /// <summary>
    /// <see cref="Rate"/> requests a second on a fixed schedule (open loop: a slow answer does not hold the next request
    /// back) for <see cref="WarmUp"/> (not counted) and then <paramref name="seconds"/>; then waits for every delivery.
    /// A client has at most <see cref="MaxInFlight"/> requests unanswered: a slot that finds that many is skipped, so an
    /// app slower than the rate shows as a lower achieved rate rather than an ever longer queue of requests.
    /// </summary>
    private static async Task<RatePass> RatePassAsync(App app, BenchAdmin admin, string[] items, Receiver receiver, int seconds, string endpointId)
    {
        var token = await admin.TokenAsync(app.Client, app.Server);
        var warm = (int)(WarmUp.TotalSeconds * Rate);
        var total = warm + (seconds * Rate);
        var repeatsBefore = receiver.Latency.Repeats;
        var unsignedBefore = receiver.Latency.Unsigned;
        var tasks = new List<Task<Sent>>(total);
        using var inFlight = new SemaphoreSlim(MaxInFlight);
        var skipped = 0;
        var start = Stopwatch.GetTimestamp();
        var maxLag = 0.0;
        for (var i = 0; i < total; i++)
        {
            var due = start + (i * Stopwatch.Frequency / Rate);
            var ahead = Ms(Stopwatch.GetTimestamp(), due);
            if (ahead > 1)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(ahead));
            }

            maxLag = Math.Max(maxLag, -Ms(Stopwatch.GetTimestamp(), due));
            if (!inFlight.Wait(0))
            {
                skipped += i >= warm ? 1 : 0;
                continue;
            }

            tasks.Add(SendOneAsync(items[i % items.Length], measured: i >= warm));
        }

        var sent = await Task.WhenAll(tasks);
        var measured = sent.Where(s => s.Measured).ToArray();
        var ids = measured.Where(s => s.MovementId is not null).ToArray();
        await WaitAsync(() => ids.All(s => receiver.Latency.Has(s.MovementId!)), DeliveryDeadline);
        var delivery = ids.Where(s => receiver.Latency.Has(s.MovementId!)).Select(s => Ms(s.AnsweredAt, receiver.Latency.At(s.MovementId!))).ToArray();

        // Where the time went, from the endpoint's delivery log: when the fan-out created each delivery.
        var arrivals = ids.Select(s => receiver.Latency.TryArrival(s.MovementId!, out var a) ? a : null).OfType<Arrival>().ToList();
        var created = await app.DeliveriesCreatedAsync(admin, endpointId, arrivals.Select(a => a.EventId).ToHashSet(StringComparer.Ordinal));
        var staged = arrivals.Where(a => created.ContainsKey(a.EventId)).ToList();
        return new RatePass([.. measured.Select(s => Ms(s.SentAt, s.AnsweredAt))], delivery, measured.Length, skipped, measured.Length - ids.Length,
            ids.Length - delivery.Length, receiver.Latency.Repeats - repeatsBefore, receiver.Latency.Unsigned - unsignedBefore, measured.Length / (double)seconds, maxLag)
        {
            ToFanOut = [.. staged.Select(a => (created[a.EventId] - a.EventAt).TotalMilliseconds)],
            ToArrival = [.. staged.Select(a => (a.ArrivedAt - created[a.EventId]).TotalMilliseconds)],
        };

        async Task<Sent> SendOneAsync(string item, bool measured)
        {
            try
            {
                return await app.MoveAsync(token, item, measured);
            }
            finally
            {
                inFlight.Release();
            }
        }
    }

    /// <summary>How fast a receiver got a number of messages: from the first's arrival to the last's.</summary>
    private sealed record Throughput(int Expected, int Received, double Seconds, int Repeats, int Unsigned, double? CreateSeconds = null, double? EndToEndSeconds = null)
    {
        public double PerSecond => Received > 1 && Seconds > 0 ? (Received - 1) / Seconds : 0;
    }

    /// <summary>The baseline: the same number of signed POSTs, each sent when the last was answered, on one connection.</summary>
    private static async Task<Throughput> SendDirectAsync(Receiver receiver, string secret, string tenantId, int count)
    {
        using var direct = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan, MaxConnectionsPerServer = 1 });
        var signer = new StandardWebhook(secret);
        var url = new Uri(receiver.Url("/baseline"));
        for (var n = 0; n < count; n++)
        {
            var id = "bench" + n.ToString("D8", CultureInfo.InvariantCulture);
            var at = DateTimeOffset.UtcNow;
            // Shaped and sized as the app's user.created body.
            var body = JsonSerializer.Serialize(new
            {
                type = "user.created",
                timestamp = at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                data = new
                {
                    id = "01JD3Z8M6Q" + n.ToString("D16", CultureInfo.InvariantCulture),
                    @object = "user",
                    actor = new { type = "user", id = "01JD3Z8M6Q7W2X4Y5Z6A7B8C9D" },
                    changes = new { email = $"user{n}@{tenantId}.example.com", roles = MemberRole },
                },
            }, JsonSerializerOptions.Web);
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("webhook-id", id);
            request.Headers.TryAddWithoutValidation("webhook-timestamp", at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
            request.Headers.TryAddWithoutValidation("webhook-signature", signer.Sign(id, at, body));
            request.Headers.TryAddWithoutValidation("user-agent", WebhookLane.UserAgent);
            using var response = await direct.SendAsync(request);
            await response.Content.ReadAsByteArrayAsync();
            response.EnsureSuccessStatusCode();
        }

        return receiver.Baseline.Throughput(count);
    }

    /// <summary>Creates the users in bulk calls of up to 1000, one after another, and waits for every user.created delivery.</summary>
    private static async Task<Throughput> BulkDeliveriesAsync(App app, BenchAdmin admin, Receiver receiver, int count)
    {
        var started = Stopwatch.GetTimestamp();
        for (var first = 0; first < count; first += 1000)
        {
            await app.BulkCreateUsersAsync(admin, first, Math.Min(1000, count - first));
        }

        var created = Stopwatch.GetTimestamp();
        await WaitAsync(() => receiver.Fast.Count >= count, DeliveryDeadline + TimeSpan.FromSeconds(count / 5.0));
        var result = receiver.Fast.Throughput(count);
        return result with { CreateSeconds = Ms(started, created) / 1000, EndToEndSeconds = Ms(started, receiver.Fast.LastAt) / 1000 };
    }

    private sealed record Closed(double[] Latencies, double Seconds)
    {
        public double PerSecond => Latencies.Length / Seconds;
    }

    /// <summary><see cref="Clients"/> clients, each sending the next request when its last was answered.</summary>
    private static async Task<Closed> ClosedLoopAsync(int count, Func<int, Task<double>> one)
    {
        var latencies = new double[count];
        var next = -1;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                latencies[i] = await one(i);
            }
        }));
        return new Closed(latencies, wall.Elapsed.TotalSeconds);
    }

    private sealed record Created(string Id, string Secret, string Url);

    /// <summary>The routes the figure drives, as a client.</summary>
    private sealed class App(HttpClient client, ServerProcess server)
    {
        public HttpClient Client { get; } = client;

        public ServerProcess Server { get; } = server;

        public async Task<string> CreateItemAsync(BenchAdmin admin, int n)
        {
            using var json = await SendAsync(admin, HttpMethod.Post, ItemsEndpoints.Path, new { sku = $"HOOK-{n:D4}", name = $"Webhook item {n}", unitCost = 1.5 }, 201);
            return json.RootElement.GetProperty("id").GetString()!;
        }

        public async Task<Created> CreateEndpointAsync(BenchAdmin admin, string url, string eventType)
        {
            using var json = await SendAsync(admin, HttpMethod.Post, WebhookEndpoints.Path + "/endpoints", new { url, events = new[] { eventType }, description = "benchmark" }, 201);
            var root = json.RootElement;
            return new Created(root.GetProperty("id").GetString()!, root.GetProperty("secret").GetString()!, url);
        }

        public async Task DeleteEndpointAsync(BenchAdmin admin, string id)
        {
            using var request = new HttpRequestMessage(HttpMethod.Delete, new Uri(Server.BaseAddress, $"{WebhookEndpoints.Path}/endpoints/{id}"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await admin.TokenAsync(Client, Server));
            using var response = await Client.SendAsync(request);
            if ((int)response.StatusCode != 204)
            {
                throw new InvalidOperationException($"DELETE the endpoint answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }
        }

        public async Task<Created> CreateReceiverAsync(BenchAdmin admin)
        {
            using var json = await SendAsync(admin, HttpMethod.Post, ReceiversEndpoints.Path, new { name = "Benchmark ERP", action = ReceiverActions.InventoryMovements }, 201);
            var root = json.RootElement;
            return new Created(root.GetProperty("id").GetString()!, root.GetProperty("secret").GetString()!, root.GetProperty("url").GetString()!);
        }

        /// <summary>The <c>createdAt</c> of the endpoint's deliveries of these events, read from its log (newest first) until all are found.</summary>
        public async Task<Dictionary<string, DateTimeOffset>> DeliveriesCreatedAsync(BenchAdmin admin, string endpointId, HashSet<string> eventIds)
        {
            var found = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            string? next = null;
            do
            {
                var path = $"{WebhookEndpoints.Path}/endpoints/{endpointId}/deliveries?pageSize=1000" + (next is null ? "" : "&continuationToken=" + Uri.EscapeDataString(next));
                var (_, body) = await admin.TimedGetAsync(Client, Server, path);
                using var json = JsonDocument.Parse(body);
                foreach (var delivery in json.RootElement.GetProperty("items").EnumerateArray())
                {
                    var eventId = delivery.GetProperty("eventId").GetString()!;
                    if (eventIds.Contains(eventId))
                    {
                        found[eventId] = delivery.GetProperty("createdAt").GetDateTimeOffset();
                    }
                }

                next = json.RootElement.TryGetProperty("continuationToken", out var token) ? token.GetString() : null;
            }
            while (next is not null && found.Count < eventIds.Count);
            return found;
        }

        public async Task<double> QuantityAsync(BenchAdmin admin, string itemId)
        {
            var (_, body) = await admin.TimedGetAsync(Client, Server, $"{ItemsEndpoints.Path}/{itemId}");
            using var json = JsonDocument.Parse(body);
            return json.RootElement.GetProperty("quantity").GetDouble();
        }

        public async Task BulkCreateUsersAsync(BenchAdmin admin, int first, int count)
        {
            var operations = Enumerable.Range(first, count).Select(n => new
            {
                op = "create",
                data = new { email = $"hook{n}@{admin.Slug}.example.com", displayName = $"Hook user {n}" },
            });
            using var json = await SendAsync(admin, HttpMethod.Post, "/api/v1/users/bulk", new { operations }, 200);
            var refused = json.RootElement.GetProperty("results").EnumerateArray().Count(r => r.GetProperty("status").GetInt32() != 201);
            if (refused > 0)
            {
                throw new InvalidOperationException($"POST /api/v1/users/bulk: {refused} of {count} creates refused");
            }
        }

        public async Task<Sent> MoveAsync(string token, string itemId, bool measured)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Server.BaseAddress, $"{ItemsEndpoints.Path}/{itemId}/movements"))
            {
                Content = JsonContent.Create(new { type = "in", quantity = 1, reason = "webhook benchmark" }),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var sent = Stopwatch.GetTimestamp();
            using var response = await Client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            var answered = Stopwatch.GetTimestamp();
            switch ((int)response.StatusCode)
            {
                case 201:
                    using (var json = JsonDocument.Parse(body))
                    {
                        return new Sent(json.RootElement.GetProperty("movement").GetProperty("id").GetString(), sent, answered, measured);
                    }

                case 409:
                    return new Sent(null, sent, answered, measured);
                case var status:
                    throw new InvalidOperationException($"POST movements answered {status}: {body}");
            }
        }

        public async Task<double> HealthAsync()
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await Client.GetAsync(new Uri(Server.BaseAddress, "/api/health/live"));
            await response.Content.ReadAsByteArrayAsync();
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            return response.IsSuccessStatusCode ? ms : throw new InvalidOperationException($"GET /api/health/live answered {(int)response.StatusCode}");
        }

        /// <summary>One message signed the Standard Webhooks way by the reference library, at the moment it is sent.</summary>
        public async Task<double> HookAsync(string url, string secret, string id, string body)
        {
            var signer = new StandardWebhook(secret);
            var at = DateTimeOffset.UtcNow;
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("webhook-id", id);
            request.Headers.TryAddWithoutValidation("webhook-timestamp", at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
            request.Headers.TryAddWithoutValidation("webhook-signature", signer.Sign(id, at, body));
            var started = Stopwatch.GetTimestamp();
            using var response = await Client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            return (int)response.StatusCode == 202 ? ms : throw new InvalidOperationException($"POST {HookEndpoint.Path}/... answered {(int)response.StatusCode}: {text}");
        }

        private async Task<JsonDocument> SendAsync(BenchAdmin admin, HttpMethod method, string path, object body, int expected)
        {
            using var request = new HttpRequestMessage(method, new Uri(Server.BaseAddress, path)) { Content = JsonContent.Create(body) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await admin.TokenAsync(Client, Server));
            using var response = await Client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            if ((int)response.StatusCode != expected)
            {
                throw new InvalidOperationException($"{method} {path} answered {(int)response.StatusCode}: {(text.Length <= 2000 ? text : text[..2000] + " ...")}");
            }

            return JsonDocument.Parse(text);
        }
    }

    /// <summary>What one receiver path got: the first arrival of each key, repeats and unsigned requests counted apart.</summary>
    private sealed class Sink
    {
        private readonly ConcurrentDictionary<string, long> _first = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, Arrival> _arrivals = new(StringComparer.Ordinal);
        private int _repeats;
        private int _unsigned;

        public int Count => _first.Count;

        public int Repeats => Volatile.Read(ref _repeats);

        public int Unsigned => Volatile.Read(ref _unsigned);

        public long LastAt => _first.IsEmpty ? 0 : _first.Values.Max();

        public bool Has(string key) => _first.ContainsKey(key);

        public long At(string key) => _first[key];

        public bool TryArrival(string key, out Arrival arrival) => _arrivals.TryGetValue(key, out arrival!);

        public void Record(string key, long at, bool signed, Arrival? arrival = null)
        {
            if (arrival is not null)
            {
                _arrivals.TryAdd(key, arrival);
            }

            if (!signed)
            {
                Interlocked.Increment(ref _unsigned);
            }

            if (!_first.TryAdd(key, at))
            {
                Interlocked.Increment(ref _repeats);
            }
        }

        public Throughput Throughput(int expected)
        {
            var times = _first.Values.ToArray();
            var seconds = times.Length > 1 ? Ms(times.Min(), times.Max()) / 1000 : 0;
            return new Throughput(expected, times.Length, seconds, Repeats, Unsigned);
        }
    }

    /// <summary>A delivery's <c>webhook-id</c> (the event id), the event's own time (body <c>timestamp</c>) and when it arrived, on the wall clock.</summary>
    private sealed record Arrival(string EventId, DateTimeOffset EventAt, DateTimeOffset ArrivedAt);

    /// <summary>
    /// The receiving side, in this process: Kestrel on a free loopback port. <c>/latency</c> keys deliveries by the
    /// changed object's id (<c>data.id</c>), <c>/fast</c> and <c>/baseline</c> by <c>webhook-id</c>; all three answer 200
    /// with an empty body as soon as the body is read. <c>/dead</c> never answers: it holds the request until the sender
    /// gives up.
    /// </summary>
    private sealed class Receiver : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _deadAttempts;
        private int _deadInFlight;

        private Receiver(WebApplication app) => _app = app;

        public Sink Latency { get; } = new();

        public Sink Fast { get; } = new();

        public Sink Baseline { get; } = new();

        public int DeadAttempts => Volatile.Read(ref _deadAttempts);

        public int DeadInFlight => Volatile.Read(ref _deadInFlight);

        private string Base { get; set; } = "";

        public string Url(string path) => Base + path;

        public static async Task<Receiver> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var receiver = new Receiver(app);
            app.Run(receiver.HandleAsync);
            await app.StartAsync();
            receiver.Base = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return receiver;
        }

        private async Task HandleAsync(HttpContext http)
        {
            var path = http.Request.Path.Value;
            if (path == "/dead")
            {
                Interlocked.Increment(ref _deadAttempts);
                Interlocked.Increment(ref _deadInFlight);
                try
                {
                    await Task.Delay(Timeout.Infinite, http.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    // The sender gave up (its timeout), as intended.
                }
                finally
                {
                    Interlocked.Decrement(ref _deadInFlight);
                }

                return;
            }

            using var buffer = new MemoryStream();
            await http.Request.Body.CopyToAsync(buffer, http.RequestAborted);
            var at = Stopwatch.GetTimestamp();
            var headers = http.Request.Headers;
            var signed = headers["webhook-id"].ToString().Length > 0 && long.TryParse(headers["webhook-timestamp"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out _)
                && headers["webhook-signature"].ToString().StartsWith("v1,", StringComparison.Ordinal);
            switch (path)
            {
                case "/latency":
                    using (var json = JsonDocument.Parse(buffer.ToArray()))
                    {
                        var root = json.RootElement;
                        var arrival = new Arrival(headers["webhook-id"].ToString(),
                            DateTimeOffset.Parse(root.GetProperty("timestamp").GetString()!, CultureInfo.InvariantCulture), DateTimeOffset.UtcNow);
                        Latency.Record(root.GetProperty("data").GetProperty("id").GetString()!, at, signed, arrival);
                    }

                    break;
                case "/fast":
                    Fast.Record(headers["webhook-id"].ToString(), at, signed);
                    break;
                case "/baseline":
                    Baseline.Record(headers["webhook-id"].ToString(), at, signed);
                    break;
                default:
                    http.Response.StatusCode = 404;
                    return;
            }

            http.Response.StatusCode = 200;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
        }
    }

    /// <summary>What was measured; a run that stopped half way prints what it has.</summary>
    private sealed class Report(int seconds, int deliveries, int intake, string timeout)
    {
        public RatePass? Alone { get; set; }
        public RatePass? WithDead { get; set; }
        public RatePass? After { get; set; }
        public int DeadAttempts { get; set; }
        public Throughput? DirectDeliveries { get; set; }
        public Throughput? AppDeliveries { get; set; }
        public Closed? Health { get; set; }
        public Closed? Hooks { get; set; }
        public TimeSpan? ActedOn { get; set; }
        public double? Quantity { get; set; }

        public void Print()
        {
            var inv = CultureInfo.InvariantCulture;
            if (Alone is { } alone)
            {
                Console.WriteLine();
                Console.WriteLine(string.Create(inv, $"{$"change to delivery, {Rate} movements/s on {Items} items, {seconds} s (goal p50 < 1 s)",-78} {"n",6} {"p50",9} {"p99",9} {"max",9}"));
                Row("baseline: POST .../movements, send to answer", alone.Answer);
                Row("delivered: answer to the receiver's arrival", alone.Delivery);
                Stages(alone);
                Notes(alone);
            }

            if (WithDead is { } with)
            {
                Console.WriteLine();
                Console.WriteLine(string.Create(inv, $"{"isolation: the healthy endpoint's answer-to-delivery latency",-78} {"n",6} {"p50",9} {"p99",9} {"max",9}"));
                if (Alone is not null)
                {
                    Row("alone (pass above)", Alone.Delivery);
                }

                Row($"with a second endpoint that never answers ({timeout} timeout)", with.Delivery);
                Stages(with);
                Row("  its POST .../movements, send to answer", with.Answer);
                if (After is { } after)
                {
                    Row("alone again, after deleting the dead endpoint", after.Delivery);
                    Stages(after);
                }

                Notes(with);
                Console.WriteLine(string.Create(inv, $"  the dead endpoint got {DeadAttempts} attempts during the pass and the wait for its deliveries, each held until the app gave up"));
                if (Alone is not null && Alone.Delivery.Length > 0 && with.Delivery.Length > 0)
                {
                    var before = Statistics.Percentile(Alone.Delivery, 99);
                    var during = Statistics.Percentile(with.Delivery, 99);
                    var text = $"  p99 with / alone: {during / before:0.00}";
                    if (After is { Delivery.Length: > 0 } a)
                    {
                        text += $"; with / alone again: {during / Statistics.Percentile(a.Delivery, 99):0.00}";
                    }

                    Console.WriteLine(string.Create(inv, $"{text} (goal: within 10 %, <= 1.10)"));
                }
            }

            if (DirectDeliveries is not null || AppDeliveries is not null)
            {
                Console.WriteLine();
                Console.WriteLine(string.Create(inv, $"{$"deliveries to one fast local endpoint, {deliveries:N0} events",-78} {"got",6} {"seconds",9} {"per s",9}"));
                if (DirectDeliveries is { } d)
                {
                    Line("baseline: signed POSTs from the benchmark, one at a time, 1 connection", d);
                }

                if (AppDeliveries is { } a)
                {
                    Line("app: user.created deliveries, first to last arrival", a);
                    Console.WriteLine(string.Create(inv,
                        $"  bulk create answered after {a.CreateSeconds:0.0} s; last delivery {a.EndToEndSeconds:0.0} s after the first request; repeats {a.Repeats}, unsigned {a.Unsigned}"));
                    if (DirectDeliveries is { PerSecond: > 0 } direct)
                    {
                        Console.WriteLine(string.Create(inv, $"  app / baseline: {a.PerSecond / direct.PerSecond:0.00}x"));
                    }
                }
            }

            if (Health is not null || Hooks is not null)
            {
                Console.WriteLine();
                Console.WriteLine(string.Create(inv, $"{$"receiver intake, {Clients} clients, {intake:N0} requests each",-78} {"req/s",6} {"p50",9} {"p99",9}"));
                if (Health is { } h)
                {
                    Closed("baseline: GET /api/health/live", h);
                }

                if (Hooks is { } k)
                {
                    Closed("POST /api/v1/hooks/{id}: signed, 1 movement line, answered 202", k);
                }

                if (Hooks is not null)
                {
                    Console.WriteLine(ActedOn is { } acted
                        ? string.Create(inv, $"  acted on: all {intake + IntakeWarmUp:N0} messages' movements applied {acted.TotalSeconds:0.0} s after the last 202")
                        : string.Create(inv, $"  acted on: {Quantity:0} of {intake + IntakeWarmUp:N0} movements applied when the figure stopped waiting"));
                }
            }

            void Row(string name, double[] values)
            {
                if (values.Length == 0)
                {
                    Console.WriteLine($"{name,-78} {0,6}");
                    return;
                }

                Console.WriteLine(string.Create(inv,
                    $"{name,-78} {values.Length,6} {Statistics.Ms(Statistics.Percentile(values, 50)),9} {Statistics.Ms(Statistics.Percentile(values, 99)),9} {Statistics.Ms(values.Max()),9}"));
            }

            void Stages(RatePass pass)
            {
                Row("  of which: event time to the delivery's creation (relay, fan-out)", pass.ToFanOut);
                Row("  of which: creation to arrival (queue wake-up, lane, POST)", pass.ToArrival);
            }

            void Notes(RatePass pass) => Console.WriteLine(string.Create(inv,
                $"  {pass.Requests} requests, {pass.AchievedRate:0.0}/s ({pass.Skipped} slots skipped: {MaxInFlight} unanswered; schedule lag at most {pass.MaxLag:0} ms), refused {pass.Refused}, not delivered within {DeliveryDeadline.TotalSeconds:0} s {pass.Missing}, repeats {pass.Repeats}, unsigned {pass.Unsigned}"));

            void Line(string name, Throughput t) => Console.WriteLine(string.Create(inv, $"{name,-78} {t.Received,6} {t.Seconds,9:0.00} {t.PerSecond,9:0.0}"));

            void Closed(string name, Closed c) => Console.WriteLine(string.Create(inv,
                $"{name,-78} {c.PerSecond,6:0} {Statistics.Ms(Statistics.Percentile(c.Latencies, 50)),9} {Statistics.Ms(Statistics.Percentile(c.Latencies, 99)),9}"));
        }
    }
}
