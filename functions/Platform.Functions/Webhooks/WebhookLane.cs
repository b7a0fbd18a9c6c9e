using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Azure;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Webhooks;

/// <summary>
/// The <c>WebhookDeliveries</c> queue function. A message wakes one endpoint's lane: the handler takes the lane's
/// lease (ETag-conditioned), then sends the endpoint's pending deliveries oldest first until one fails, none is left,
/// or <see cref="WebhookOptions.LaneBudget"/> is spent. A failure schedules its retry as a new message whose visibility
/// delay is the backoff, and ends the run, so later deliveries wait behind it (per-endpoint order). A message that
/// finds the lane leased comes back when the lease ends. So a dead or slow endpoint holds at most one handler at a
/// time and never blocks another endpoint's messages.
/// </summary>
public sealed partial class WebhookLane(
    WebhookDirectory directory,
    WebhookDeliveries deliveries,
    WebhookCommands commands,
    WebhookAdminMail adminMail,
    OutboundHttp outbound,
    IOptions<WebhookOptions> options,
    TimeProvider time,
    ILogger<WebhookLane> logger) : IQueueHandler
{
    public const string UserAgent = "Platform-Webhooks/1";
    public const int MaxResponseBodyBytes = 4096;
    private const int PageSize = 50;

    public async Task HandleAsync(QueueInvocation message, CancellationToken cancellationToken)
    {
        var wake = Read(message.Text);
        var tenant = new TenantId(wake.T);
        if (await directory.GetAsync(tenant, wake.E, cancellationToken) is not { } endpoint)
        {
            // Deleted: its backlog went with it.
            return;
        }

        var rows = directory.Rows(tenant);
        var settings = options.Value;
        var now = time.GetUtcNow();
        var lane = await rows.GetAsync<LaneEntity>(WebhookRows.Lane(endpoint.Id), cancellationToken);
        if (lane?.LeaseUntil is { } leased && leased > now)
        {
            // The holder looks at the lane's head again when it lets go (and a holder that died is found by the
            // WebhookLaneSweep timer), so this wake-up is not needed. Putting it back instead made a dead endpoint's
            // wake-ups pile up in the shared queue, a wave of them every lease, in front of healthy endpoints' ones.
            return;
        }

        lane ??= new LaneEntity { RowKey = WebhookRows.Lane(endpoint.Id) };
        lane.LeaseUntil = now + settings.LaneLease;
        lane.LeaseOwner = Guid.NewGuid().ToString("N");
        try
        {
            if (lane.ETag == default)
            {
                await rows.AddAsync(lane, cancellationToken);
            }
            else
            {
                await rows.UpdateAsync(lane, lane.ETag, cancellationToken);
            }
        }
        catch (RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            // Another handler took the lane a moment ago: it looks at the head again when it lets go.
            return;
        }

        try
        {
            await RunLaneAsync(tenant, endpoint, lane, wake.D, cancellationToken);
        }
        finally
        {
            lane.LeaseUntil = null;
            lane.LeaseOwner = null;
            try
            {
                await rows.UpdateAsync(lane, lane.ETag, CancellationToken.None);
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                // Our lease ran out and someone else holds the lane now; theirs is the word.
            }
        }

        // A wake-up that came while we held the lane was put off until our lease would end (which only matters if we
        // had died): a delivery added after our last look at the lane would wait that long. So, now that the lane is
        // free, look at its head once more; anything added later wakes a free lane itself.
        await WakeIfDueAsync(tenant, endpoint.Id, cancellationToken);
    }

    private async Task WakeIfDueAsync(TenantId tenant, string endpointId, CancellationToken cancellationToken)
    {
        await foreach (var head in directory.Rows(tenant).QueryAsync<PendingEntity>(WebhookRows.PendingPrefix(endpointId), maxPerPage: 1, cancellationToken: cancellationToken))
        {
            // A head that waits for its retry has its own wake-up for then.
            if (head.NextAttemptAt is not { } due || due <= time.GetUtcNow())
            {
                await deliveries.WakeAsync(tenant, endpointId, head.DeliveryId, TimeSpan.Zero, cancellationToken);
            }

            return;
        }
    }

    private async Task RunLaneAsync(TenantId tenant, EndpointEntity endpoint, LaneEntity lane, string wokenFor, CancellationToken cancellationToken)
    {
        var rows = directory.Rows(tenant);
        var settings = options.Value;
        var started = Stopwatch.StartNew();
        var interval = endpoint.RateLimitPerSecond is { } rate ? TimeSpan.FromSeconds(1.0 / rate) : TimeSpan.Zero;

        // The pace holds across runs: each event wakes the lane on its own, so a run often starts right after the last
        // one sent. A last send "in the future" (another instance's clock ahead) waits at most one interval.
        var lastSent = lane.LastSentAt is { } previous ? previous - time.GetUtcNow() : -interval;
        if (lastSent > TimeSpan.Zero)
        {
            lastSent = TimeSpan.Zero;
        }
        while (true)
        {
            var page = new List<PendingEntity>();
            await foreach (var row in rows.QueryAsync<PendingEntity>(WebhookRows.PendingPrefix(endpoint.Id), maxPerPage: PageSize, cancellationToken: cancellationToken))
            {
                page.Add(row);
                if (page.Count == PageSize)
                {
                    break;
                }
            }

            if (page.Count == 0)
            {
                return;
            }

            if (!endpoint.Enabled)
            {
                foreach (var pending in page)
                {
                    await FinishAsync(tenant, endpoint.Id, pending, null, DeliveryStatus.Failed, "endpoint disabled", cancellationToken);
                }

                continue;
            }

            foreach (var pending in page)
            {
                if (!endpoint.Enabled)
                {
                    // Disabled just now: the next page run fails what is left.
                    break;
                }

                var now = time.GetUtcNow();
                if (pending.NextAttemptAt is { } due && due > now)
                {
                    // The head waits for its retry; the message scheduled for that moment carries the lane on. If this is
                    // that message come early or again, it schedules itself for then.
                    if (pending.DeliveryId == wokenFor)
                    {
                        await deliveries.WakeAsync(tenant, endpoint.Id, pending.DeliveryId, due - now, cancellationToken);
                    }

                    return;
                }

                if (started.Elapsed > settings.LaneBudget)
                {
                    // Hand over: the head is due, so the look at the lane after its release wakes it afresh (a wake-up
                    // sent now could arrive while the lane is still ours and be put off until the lease ends).
                    return;
                }

                if (await rows.GetAsync<DeliveryEntity>(WebhookRows.Log(endpoint.Id, pending.DeliveryId), cancellationToken) is not { } delivery)
                {
                    await rows.DeleteAsync(pending.RowKey, cancellationToken: cancellationToken);
                    continue;
                }

                var wait = lastSent + interval - started.Elapsed;
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken);
                }

                lastSent = started.Elapsed;
                // The send must end well inside our lease (a quarter of it spare), so no other handler can take the lane
                // and send the same head meanwhile: with less than half the lease left, it is renewed first.
                if (lane.LeaseUntil - time.GetUtcNow() < settings.LaneLease / 2 && !await RenewAsync(rows, lane, cancellationToken))
                {
                    // Another handler holds the lane now (ours ran out): it carries on.
                    return;
                }

                var within = lane.LeaseUntil!.Value - time.GetUtcNow() - settings.LaneLease / 4;
                lane.LastSentAt = time.GetUtcNow();
                var result = await SendAsync(tenant, endpoint, delivery, within, cancellationToken);
                delivery.Attempt++;
                delivery.At = time.GetUtcNow();
                delivery.ResponseStatus = result.Status;
                delivery.ResponseBody = result.Body;
                delivery.Error = result.Error;
                delivery.DurationMs = result.DurationMs;
                var attempts = JsonSerializer.Deserialize<List<DeliveryAttempt>>(delivery.Attempts) ?? [];
                attempts.Add(new DeliveryAttempt(delivery.Attempt, delivery.At.Value, result.Status, result.DurationMs, result.Error));
                delivery.Attempts = JsonSerializer.Serialize(attempts.TakeLast(20));

                if (result.Status is >= 200 and < 300)
                {
                    lane.FailingSince = null;
                    await FinishAsync(tenant, endpoint.Id, pending, delivery, DeliveryStatus.Succeeded, null, cancellationToken);
                    continue;
                }

                now = time.GetUtcNow();
                if (lane.LastFailedAt is { } lastFailure && now - lastFailure > QuietGap(settings))
                {
                    // The endpoint went quiet after its last failure; this one starts a new streak rather than
                    // counting the silence as days of failing.
                    lane.FailingSince = null;
                }

                // A streak from before the endpoint was last enabled does not count: re-enabled after a fix, it starts afresh.
                if (lane.FailingSince is null || lane.FailingSince < endpoint.EnabledAt)
                {
                    lane.FailingSince = now;
                }

                lane.LastFailedAt = now;
                if (result.Status == (int)HttpStatusCode.Gone)
                {
                    await FinishAsync(tenant, endpoint.Id, pending, delivery, DeliveryStatus.Failed, null, cancellationToken);
                    await DisableAsync(tenant, endpoint, "gone", lane.FailingSince, cancellationToken);
                    continue;
                }

                if (now - lane.FailingSince >= settings.DisableAfter)
                {
                    await FinishAsync(tenant, endpoint.Id, pending, delivery, DeliveryStatus.Failed, null, cancellationToken);
                    await DisableAsync(tenant, endpoint, "failing", lane.FailingSince, cancellationToken);
                    continue;
                }

                var schedule = settings.Delays;
                if (delivery.Attempt >= schedule.Count)
                {
                    // Given up: the lane moves on; recover or replay can send it again.
                    await FinishAsync(tenant, endpoint.Id, pending, delivery, DeliveryStatus.Failed, null, cancellationToken);
                    continue;
                }

                var delay = Backoff(schedule[delivery.Attempt], result.Status, result.RetryAfter, settings.MaxRetryAfter);

                // The wake first: if we stop between the two writes, the retry still comes (only the recorded time is lost).
                await deliveries.WakeAsync(tenant, endpoint.Id, pending.DeliveryId, delay, cancellationToken);
                pending.NextAttemptAt = now + delay;
                delivery.NextAttemptAt = pending.NextAttemptAt;
                delivery.Status = DeliveryStatus.Pending;
                await rows.UpdateAsync(pending, ETag.All, cancellationToken);
                await rows.UpdateAsync(delivery, ETag.All, cancellationToken);
                return;
            }
        }
    }

    /// <summary>Extends the lease, conditioned on the ETag we hold: false when someone else holds the lane now.</summary>
    private async Task<bool> RenewAsync(TenantPartition rows, LaneEntity lane, CancellationToken cancellationToken)
    {
        lane.LeaseUntil = time.GetUtcNow() + options.Value.LaneLease;
        try
        {
            await rows.UpdateAsync(lane, lane.ETag, cancellationToken);
            return true;
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
            return false;
        }
    }

    /// <summary>
    /// A failure further from the previous one than this starts a new failure streak: while an endpoint keeps failing,
    /// attempts are never further apart than the longest retry delay (or <c>Retry-After</c> we honour), plus the lease a
    /// wake-up may wait behind and a few minutes of queue latency.
    /// </summary>
    internal static TimeSpan QuietGap(WebhookOptions settings)
    {
        var longest = settings.Delays.Count == 0 ? TimeSpan.Zero : settings.Delays.Max();
        return (longest > settings.MaxRetryAfter ? longest : settings.MaxRetryAfter) + settings.LaneLease + TimeSpan.FromMinutes(5);
    }

    /// <summary>
    /// The wait before the next attempt: the schedule's, or longer when a 429/503 asks for more with <c>Retry-After</c>,
    /// but never longer than <paramref name="maxRetryAfter"/> (or the schedule's own wait, if that is longer). A shorter
    /// <c>Retry-After</c> (0, a date in the past) does not shorten the schedule: the attempts are not spent in a burst.
    /// </summary>
    internal static TimeSpan Backoff(TimeSpan scheduled, int? status, TimeSpan? retryAfter, TimeSpan maxRetryAfter)
    {
        if (status is not (429 or 503) || retryAfter is not { } asked || asked <= scheduled)
        {
            return scheduled;
        }

        return asked < maxRetryAfter ? asked : maxRetryAfter > scheduled ? maxRetryAfter : scheduled;
    }

    private async Task DisableAsync(TenantId tenant, EndpointEntity endpoint, string reason, DateTimeOffset? failingSince, CancellationToken cancellationToken)
    {
        endpoint.Enabled = false;
        if (await commands.DisableAsync(tenant, endpoint.Id, reason, failingSince, cancellationToken))
        {
            LogDisabled(logger, endpoint.Id, tenant.Value, reason);
            await adminMail.SendDisabledAsync(tenant, endpoint, reason, cancellationToken);
        }
    }

    /// <summary>Ends a delivery: the log row says how, and the pending row goes.</summary>
    private async Task FinishAsync(TenantId tenant, string endpointId, PendingEntity pending, DeliveryEntity? delivery, string status, string? error, CancellationToken cancellationToken)
    {
        var rows = directory.Rows(tenant);
        delivery ??= await rows.GetAsync<DeliveryEntity>(WebhookRows.Log(endpointId, pending.DeliveryId), cancellationToken);
        if (delivery is not null)
        {
            delivery.Status = status;
            delivery.NextAttemptAt = null;
            delivery.PendingKey = null;
            delivery.Error = error ?? delivery.Error;
            await rows.UpdateAsync(delivery, ETag.All, cancellationToken);
        }

        try
        {
            await rows.DeleteAsync(pending.RowKey, cancellationToken: cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
        }
    }

    private sealed record Attempt(int? Status, string? Body, string? Error, long DurationMs, TimeSpan? RetryAfter);

    private async Task<Attempt> SendAsync(TenantId tenant, EndpointEntity endpoint, DeliveryEntity delivery, TimeSpan within, CancellationToken cancellationToken)
    {
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint.Url)
        {
            Content = new StringContent(delivery.Payload, Encoding.UTF8, "application/json"),
        };
        foreach (var (name, value) in endpoint.HeaderMap)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        request.Headers.TryAddWithoutValidation("webhook-id", delivery.MessageId);
        request.Headers.TryAddWithoutValidation("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation("webhook-signature", WebhookSigner.Sign(directory.SigningKeys(tenant, endpoint), delivery.MessageId, timestamp, delivery.Payload));
        request.Headers.TryAddWithoutValidation("user-agent", UserAgent);

        var watch = Stopwatch.StartNew();
        try
        {
            // The body's first 4 KB are read under the same deadline as the send: a trickling receiver times out too.
            var response = await outbound.SendAsync(request, MaxResponseBodyBytes, within, cancellationToken);
            var body = response.BodyStart.Length == 0 ? null : Encoding.UTF8.GetString(response.BodyStart.Span);
            TimeSpan? retryAfter = response.RetryAfter switch
            {
                { Delta: { } delta } => delta,
                { Date: { } date } => date - time.GetUtcNow(),
                _ => null,
            };
            var status = response.Status;
            var error = status is >= 300 and < 400
                ? "answered a redirect, which is not followed: set the endpoint's URL to the final address"
                : null;
            return new Attempt(status, body, error, watch.ElapsedMilliseconds, retryAfter < TimeSpan.Zero ? TimeSpan.Zero : retryAfter);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new Attempt(null, null, "timed out", watch.ElapsedMilliseconds, null);
        }
        catch (HttpRequestException ex)
        {
            var refused = ex as OutboundRefusedException ?? ex.InnerException as OutboundRefusedException;
            return new Attempt(null, null, refused?.Message ?? "connection failed: " + ex.Message, watch.ElapsedMilliseconds, null);
        }
    }

    private static LaneMessage Read(string text)
    {
        LaneMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<LaneMessage>(text, JsonSerializerOptions.Web);
        }
        catch (JsonException)
        {
            message = null;
        }

        return message is { T.Length: > 0, E.Length: > 0, D.Length: > 0 } ? message : throw new PoisonMessageException("Not a webhook lane message.");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook endpoint {EndpointId} of tenant {TenantId} disabled: {Reason}")]
    private static partial void LogDisabled(ILogger logger, string endpointId, string tenantId, string reason);
}
