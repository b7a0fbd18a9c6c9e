using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Query;

/// <summary>
/// The <c>ProjectionSnapshotRefresh</c> timer: every 20 minutes, each stored snapshot whose tenant's log moved since it
/// was saved is brought up to date (loaded from itself and the log after it, saved again). Without it a snapshot is
/// renewed only when an instance that holds the tenant lists it, so a tenant changed and then left alone for more than
/// the log's hour of entries - a day of movements before a nightly report - would load by a scan again. Twenty minutes
/// keeps every snapshot within the log's reach with two runs to spare.
/// </summary>
/// <param name="projections">Registered by the capabilities whose projections save snapshots (items and stock).</param>
public sealed partial class ProjectionSnapshotRefresh(
    ProjectionSnapshots snapshots, IEnumerable<ISnapshottedProjection> projections, StorageAccount storage, ILogger<ProjectionSnapshotRefresh> logger) : ITimerHandler
{
    public const string FunctionName = "ProjectionSnapshotRefresh";
    public const string Schedule = "0 */20 * * * *";

    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
    {
        int looked = 0, refreshed = 0;
        await foreach (var (tenant, projection, storedTotal) in snapshots.StoredAsync([.. projections], cancellationToken))
        {
            looked++;
            try
            {
                // One range query of the 16 lane rows says whether anything was written since: most tenants are quiet.
                var now = await ChangeLog.PositionAsync(storage.TenantTable(projection.Table).For(tenant), cancellationToken);
                if (now.Total != storedTotal && await projection.RefreshSnapshotAsync(tenant, storedTotal, cancellationToken))
                {
                    refreshed++;
                }
            }
            catch (Azure.RequestFailedException ex)
            {
                // One tenant's failure leaves the others to refresh; this one is tried again next run.
                LogFailed(logger, projection.Table, projection.KeyPrefix, tenant.Value, ex.Message);
            }
        }

        LogRefreshed(logger, looked, refreshed);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Projection snapshots: {Looked} looked at, {Refreshed} brought up to date")]
    private static partial void LogRefreshed(ILogger logger, int looked, int refreshed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The {Table} {Prefix} snapshot of tenant {Tenant} was not refreshed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string table, string prefix, string tenant, string reason);
}
