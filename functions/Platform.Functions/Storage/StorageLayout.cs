namespace Platform.Functions.Storage;

/// <summary>
/// The logical names of every table, container and queue the app uses. Capabilities add theirs when they are
/// registered; the <see cref="StorageInitializer"/> creates them all at start. Names here carry no prefix.
/// </summary>
public sealed class StorageLayout
{
    public HashSet<string> Tables { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Containers { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Queues { get; } = new(StringComparer.Ordinal);
}

public static class StorageLayoutExtensions
{
    public static IServiceCollection AddStorageTable(this IServiceCollection services, string name) =>
        services.Configure<StorageLayout>(layout => layout.Tables.Add(name));

    public static IServiceCollection AddStorageContainer(this IServiceCollection services, string name) =>
        services.Configure<StorageLayout>(layout => layout.Containers.Add(name));

    public static IServiceCollection AddStorageQueue(this IServiceCollection services, string name) =>
        services.Configure<StorageLayout>(layout => layout.Queues.Add(name));
}
