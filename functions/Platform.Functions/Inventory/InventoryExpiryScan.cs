using Microsoft.Extensions.Options;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Triggers;

namespace Platform.Functions.Inventory;

/// <summary>
/// The <c>InventoryExpiryScan</c> timer: daily, raises expiry alerts for items that came within the window just by
/// time passing (movements and edits raise them as they happen).
/// </summary>
public sealed partial class InventoryExpiryScan(TenantDirectory tenants, InventoryStore store, AlertMonitor monitor, IOptions<InventoryOptions> options,
    TimeProvider time, ILogger<InventoryExpiryScan> logger) : ITimerHandler
{
    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
    {
        var horizon = time.GetUtcNow() + options.Value.ExpiryWindow;
        var checkedItems = 0;
        await foreach (var tenantId in tenants.AllIdsAsync(cancellationToken))
        {
            await foreach (var item in store.For(tenantId).QueryWhereAsync<ItemEntity>(
                $"RowKey ge {ItemEntity.KeyPrefix} and RowKey lt {"i;"} and Status eq {ItemStatus.Active} and ExpiresAt le {horizon}", 1000, cancellationToken))
            {
                await monitor.SyncAsync(tenantId, item, cancellationToken);
                checkedItems++;
            }
        }

        LogScanned(logger, checkedItems);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Inventory expiry scan looked at {Items} items expiring within the window")]
    private static partial void LogScanned(ILogger logger, int items);
}
