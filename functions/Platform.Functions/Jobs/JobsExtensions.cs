using Platform.Functions.Hosting;
using System.ComponentModel.DataAnnotations;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Jobs;

public sealed class JobOptions
{
    public const string Section = "Platform:Jobs";

    /// <summary>How long a finished job stays readable before housekeeping removes it.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);
}

public static class JobsExtensions
{
    /// <summary>
    /// The job engine: the job table, the <c>jobs</c> queue and its poison queue, and every job type. Job types are
    /// registered here and only here, so the list below is the catalogue of long work the product can do.
    /// </summary>
    public static IHostApplicationBuilder AddJobs(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<JobOptions>(JobOptions.Section);
        services.AddOptions<JobTypeRegistry>();
        services.AddStorageTable(JobQueue.TableName);
        services.AddSingleton<JobQueue>();
        services.AddQueueFunction<JobRunner>("Jobs", JobQueue.QueueName);
        services.AddQueueFunction<JobPoisonHandler>("JobsPoison", JobQueue.QueueName + "-poison");

        // Job types (imports, exports, reports, backups) are added here as their capabilities land.
        return builder;
    }
}
