using Platform.Functions.Events;
using Platform.Functions.Hosting;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Schedules;

public static class SchedulesExtensions
{
    /// <summary>Schedules: the <c>schedules</c> table (with its event outbox), the due index and the <c>ScheduleSweep</c> timer.</summary>
    public static IHostApplicationBuilder AddSchedules(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<ScheduleOptions>(ScheduleOptions.Section);
        services.AddEventOutbox(ScheduleRows.TableName);
        // A sandbox copy's schedules are paused (and have no due-index rows): it must not run the live tenant's jobs twice.
        services.AddTenantData(ScheduleRows.TableName, sandbox: (row, _) =>
        {
            if (row.ContainsKey(nameof(ScheduleEntity.Enabled)))
            {
                row[nameof(ScheduleEntity.Enabled)] = false;
                row[nameof(ScheduleEntity.NextRunAt)] = null;
            }
        });
        services.AddStorageTable(ScheduleDueEntity.TableName);
        services.AddSingleton<ScheduleCommands>();
        services.AddSingleton<IEventSubscriber, ScheduleRestorePlanner>();

        // The timer's schedule is part of its declaration (the Functions host reads it from function.json), so it is
        // read here rather than through the options; tests sweep every second.
        var sweep = builder.Configuration[$"{ScheduleOptions.Section}:{nameof(ScheduleOptions.SweepSchedule)}"] ?? ScheduleOptions.DefaultSweepSchedule;
        services.AddTimerFunction<ScheduleSweep>(ScheduleSweep.FunctionName, sweep);
        return builder;
    }

    public static RouteGroupBuilder MapSchedules(this IEndpointRouteBuilder app) => SchedulesEndpoints.Map(app);
}
