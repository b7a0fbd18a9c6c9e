using Platform.Functions.Events;
using Platform.Functions.Hosting;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Schedules;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Backups;

public static class BackupsExtensions
{
    /// <summary>
    /// Backups of a tenant: the <c>backup</c> job type and its orchestrations, the backups table (not itself tenant
    /// data: a restore must not bring back the list of backups it was made from) and the private backups container.
    /// What a backup holds is declared by the capabilities that own the data (<see cref="StorageLayoutExtensions.AddTenantData"/>).
    /// </summary>
    public static IHostApplicationBuilder AddBackups(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<BackupOptions>(BackupOptions.Section).Validate(
            o => string.IsNullOrEmpty(o.DailySchedule) || ScheduleCron.Parse(o.DailySchedule, o.DailyScheduleTimeZone, new Validation()) is not null,
            $"{BackupOptions.Section}:DailySchedule must be a 5-field cron expression (or empty: no daily backup schedule for new tenants) and DailyScheduleTimeZone an IANA time zone.");
        services.AddStorageTable(BackupStore.TableName);
        services.AddStorageContainer(BackupStore.ContainerName);
        services.AddSingleton<BackupStore>();
        services.AddSingleton<BackupFiles>();
        services.AddSingleton<BackupLocks>();
        services.AddSingleton<DefaultBackupSchedule>();
        services.AddSingleton<IEventSubscriber>(sp => sp.GetRequiredService<DefaultBackupSchedule>());
        services.AddActivity<BackupLockAcquire>(BackupLockAcquire.Name);
        services.AddActivity<BackupLockRelease>(BackupLockRelease.Name);
        services.AddActivity<RestoreFailed>(RestoreFailed.Name);

        services.AddTimerFunction<BackupRetention>("BackupRetention", builder.Configuration[$"{BackupOptions.Section}:RetentionSchedule"] ?? new BackupOptions().RetentionSchedule);
        services.AddSingleton<BackupJobType>();
        services.AddJobType<BackupJobType>(BackupOrchestrator.Name);
        services.AddOrchestrator<BackupOrchestrator>(BackupOrchestrator.Name);
        services.AddOrchestrator<BackupVerifyOrchestrator>(BackupVerifyOrchestrator.Name);
        services.AddActivity<BackupBegin>(BackupBegin.Name);
        services.AddActivity<BackupWritePart>(BackupWritePart.Name);
        services.AddActivity<BackupSeal>(BackupSeal.Name);
        services.AddActivity<BackupVerify>(BackupVerify.Name);
        services.AddActivity<BackupFinish>(BackupFinish.Name);
        services.AddOrchestrator<RestoreOrchestrator>(RestoreOrchestrator.Name);
        // Retrying a restore re-runs it over the live tenant; cancelling, or reading its parameters, is as sensitive.
        services.AddJobTypePermission(BackupOrchestrator.Name, Roles.Permissions.BackupsManage);
        services.AddJobTypePermission(BackupVerifyOrchestrator.Name, Roles.Permissions.BackupsManage);
        services.AddJobTypePermission(RestoreOrchestrator.Name, Roles.Permissions.BackupsManage);
        services.AddActivity<RestorePrepare>(RestorePrepare.Name);
        services.AddActivity<RestorePart>(RestorePart.Name);
        services.AddActivity<RestoreFinish>(RestoreFinish.Name);
        services.AddActivity<RestoreAbandon>(RestoreAbandon.Name);
        return builder;
    }
}
