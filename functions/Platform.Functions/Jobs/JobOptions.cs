using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Jobs;

/// <summary>Settings under <c>Platform:Jobs</c> (<c>Platform__Jobs__Retention</c> and so on in the environment).</summary>
public sealed class JobOptions
{
    public const string Section = "Platform:Jobs";

    /// <summary>How long a finished job (its instance, history and files) stays readable before it is purged.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Runs the durable worker in this process (false: the app only starts and reads jobs).</summary>
    public bool RunWorker { get; set; } = true;

    /// <summary>The longest an idle worker waits between polls of its queues; small in tests, a few seconds in production.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan MaxPollingInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// When a crashed worker's messages become visible to the others again: longer than the longest orchestration
    /// episode or chunk, short enough that a crash costs a pause of this much rather than DTFx's default 5 minutes.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:05", "00:30:00")]
    public TimeSpan MessageVisibilityTimeout { get; set; } = TimeSpan.FromMinutes(2);

    [Range(1, 100)]
    public int MaxConcurrentActivities { get; set; } = 8;

    [Range(1, 1000)]
    public int MaxConcurrentOrchestrations { get; set; } = 32;

    /// <summary>A job message delivered this many times without being processed is poison: its job is failed.</summary>
    [Range(2, 100)]
    public int PoisonDequeueCount { get; set; } = 6;

    /// <summary>How long a stopping instance lets in-flight work items finish before handing them back.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Rows per import chunk (one activity each); chunks also end at <see cref="ChunkBytes"/>.</summary>
    [Range(10, 10_000)]
    public int ChunkRows { get; set; } = 1000;

    [Range(64 * 1024, 16 * 1024 * 1024)]
    public int ChunkBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Chunks one import keeps in flight (each that finishes starts the next); a cancelled job starts no more.</summary>
    [Range(1, 64)]
    public int ChunkParallelism { get; set; } = 8;

    /// <summary>The largest import upload.</summary>
    [Range(1024, 1L << 31)]
    public long MaxUploadBytes { get; set; } = 100L * 1024 * 1024;
}
