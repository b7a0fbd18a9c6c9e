using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Housekeeping;

/// <summary>The <c>StorageHousekeeping</c> timer: every five minutes, deletes rows whose time is up.</summary>
public sealed partial class StorageHousekeeping(Expirations expirations, ILogger<StorageHousekeeping> logger) : ITimerHandler
{
    /// <summary>Bounded so one run stays short; whatever is left is due again at the next run.</summary>
    public const int MaxDeletionsPerRun = 5000;

    public async Task RunAsync(TimerInvocation timer, CancellationToken cancellationToken)
    {
        var deleted = await expirations.DeleteDueAsync(MaxDeletionsPerRun, cancellationToken);
        LogRun(logger, deleted, timer.IsPastDue);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Housekeeping deleted {Deleted} expired rows (past due: {IsPastDue})")]
    private static partial void LogRun(ILogger logger, int deleted, bool isPastDue);
}
