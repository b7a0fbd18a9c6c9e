using System.Globalization;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Webhooks;

/// <summary>
/// The <c>WebhookLaneSweep</c> timer (every five minutes): wakes lanes whose head delivery is overdue because the
/// queue message meant to move them was lost (poisoned, deleted, or never sent after a crash). Without it such a
/// lane would wait for the endpoint's next event.
/// </summary>
/// <remarks>
/// Finding lanes must not scan the tenants' <c>webhooks</c> partitions, so adding deliveries also writes a check row
/// to the <c>webhooklanes</c> table (<see cref="ScheduleAsync"/>), partitioned by the UTC hour it falls due, like the
/// housekeeping expirations. A run reads the due rows (at most <see cref="MaxChecksPerRun"/>; the rest stay due for the
/// next run) and looks at each lane's head: none left, the row goes; overdue by
/// <see cref="WebhookOptions.StallAfter"/> and not leased, the lane is woken; either way a lane with work is checked
/// again later. The check row is written after the pending rows and deleted only under the ETag it was judged by, so a
/// lane that gets new work while it is being judged keeps its row.
/// </remarks>
public sealed partial class WebhookLaneSweep(
    StorageAccount storage,
    WebhookDirectory directory,
    WebhookDeliveries deliveries,
    IOptions<WebhookOptions> options,
    TimeProvider time,
    ILogger<WebhookLaneSweep> logger) : ITimerHandler
{
    public const string TableName = "webhooklanes";
    public const string FunctionName = "WebhookLaneSweep";
    public const string Schedule = "0 */5 * * * *";
    public const int MaxChecksPerRun = 1000;

    /// <summary>Asks for the lane to be checked once <see cref="WebhookOptions.StallAfter"/> has passed; write it after the pending rows.</summary>
    public static Task ScheduleAsync(StorageAccount storage, TenantId tenant, string endpointId, DateTimeOffset at, CancellationToken cancellationToken) =>
        storage.Table(TableName).UpsertEntityAsync(new LaneCheckEntity
        {
            PartitionKey = Bucket(at),
            RowKey = tenant.Value + ":" + endpointId,
            Tenant = tenant.Value,
            EndpointId = endpointId,
            CheckAt = at,
        }, TableUpdateMode.Replace, cancellationToken);

    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var now = time.GetUtcNow();
        var table = storage.Table(TableName);
        var (checkedLanes, woken) = (0, 0);
        var due = table.QueryAsync<LaneCheckEntity>(TableClient.CreateQueryFilter($"PartitionKey le {Bucket(now)}"), maxPerPage: 1000, cancellationToken: cancellationToken);
        await foreach (var check in due)
        {
            if (checkedLanes >= MaxChecksPerRun)
            {
                break;
            }

            if (check.CheckAt > now)
            {
                continue;
            }

            checkedLanes++;
            var tenant = new TenantId(check.Tenant);
            var rows = directory.Rows(tenant);
            PendingEntity? head = null;
            await foreach (var row in rows.QueryAsync<PendingEntity>(WebhookRows.PendingPrefix(check.EndpointId), maxPerPage: 1, cancellationToken: cancellationToken))
            {
                head = row;
                break;
            }

            if (head is not null)
            {
                var headDue = head.NextAttemptAt ?? head.Timestamp ?? now;
                if (now - headDue >= settings.StallAfter &&
                    !(await rows.GetAsync<LaneEntity>(WebhookRows.Lane(check.EndpointId), cancellationToken) is { LeaseUntil: { } leased } && leased > now))
                {
                    await deliveries.WakeAsync(tenant, check.EndpointId, head.DeliveryId, TimeSpan.Zero, cancellationToken);
                    woken++;
                }

                var next = (headDue > now ? headDue : now) + settings.StallAfter;
                await ScheduleAsync(storage, tenant, check.EndpointId, next, cancellationToken);
                if (Bucket(next) == check.PartitionKey)
                {
                    // The same row, just rewritten for later.
                    continue;
                }
            }

            try
            {
                await table.DeleteEntityAsync(check.PartitionKey, check.RowKey, check.ETag, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                // New deliveries rescheduled it meanwhile: it stays for them.
            }
        }

        LogRun(logger, checkedLanes, woken);
    }

    private static string Bucket(DateTimeOffset at) => at.UtcDateTime.ToString("yyyyMMddHH", CultureInfo.InvariantCulture);

    [LoggerMessage(Level = LogLevel.Information, Message = "Webhook lane sweep checked {Checked} lanes and woke {Woken}")]
    private static partial void LogRun(ILogger logger, int @checked, int woken);

    internal sealed class LaneCheckEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public string Tenant { get; set; } = "";
        public string EndpointId { get; set; } = "";
        public DateTimeOffset CheckAt { get; set; }
    }
}
