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

    /// <summary>Per table, the row-key prefixes whose writes are logged (<see cref="ChangeLog"/>).</summary>
    public Dictionary<string, string[]> ChangeLogged { get; } = new(StringComparer.Ordinal);

    /// <summary>Tables whose partitions carry an event outbox (changes and their events commit together).</summary>
    public HashSet<string> Outboxes { get; } = new(StringComparer.Ordinal);
}

public static class StorageLayoutExtensions
{
    /// <param name="changeLogged">Row-key prefixes whose every write adds a <see cref="ChangeLog"/> entry in the same transaction.</param>
    public static IServiceCollection AddStorageTable(this IServiceCollection services, string name, params string[] changeLogged) =>
        services.Configure<StorageLayout>(layout =>
        {
            layout.Tables.Add(name);
            if (changeLogged.Length > 0)
            {
                layout.ChangeLogged[name] = changeLogged;
            }
        });

    public static IServiceCollection AddStorageContainer(this IServiceCollection services, string name) =>
        services.Configure<StorageLayout>(layout => layout.Containers.Add(name));

    public static IServiceCollection AddStorageQueue(this IServiceCollection services, string name) =>
        services.Configure<StorageLayout>(layout => layout.Queues.Add(name));
}
