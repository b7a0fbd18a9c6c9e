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

    /// <summary>
    /// Tables that hold tenant data (<see cref="StorageLayoutExtensions.AddTenantData"/>): a backup copies each tenant's
    /// partition of them. Global indexes (slugs, key prefixes, due times, sessions ...) are not declared: they are
    /// rebuilt from the data, or are not worth keeping.
    /// </summary>
    public SortedSet<string> TenantData { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Per tenant-data table, what a restore into a sandbox tenant changes in each row (webhook endpoints disabled,
    /// schedules paused): the owner's rule, since only it knows what its rows set in motion.
    /// </summary>
    public Dictionary<string, Action<Azure.Data.Tables.TableEntity, DateTimeOffset>> SandboxRules { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Tenant-data tables that record what happened (audit, usage): copied into a new tenant, but a restore over the
    /// live tenant leaves them as they are rather than rolling history back.
    /// </summary>
    public HashSet<string> History { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Tenant-data tables of credentials (API keys): copied into a new tenant, but a restore over the live tenant
    /// leaves them as they are. Like sessions, a credential revoked or rotated since the backup (often because it
    /// leaked) must not come back with it.
    /// </summary>
    public HashSet<string> Credentials { get; } = new(StringComparer.Ordinal);

    /// <summary>Containers whose blobs are named <c>{tenant}/...</c> and belong to the tenant's data (avatars).</summary>
    public SortedSet<string> TenantBlobs { get; } = new(StringComparer.Ordinal);
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

    /// <summary>
    /// Declares a table registered with <see cref="AddStorageTable"/> as tenant data: its tenant partitions are part of
    /// every backup of the tenant (all rows but the change log's and the event outbox's plumbing). The capability that
    /// owns the table decides, next to its registration.
    /// </summary>
    /// <param name="sandbox">
    /// Changes a row restored into a sandbox tenant (given the time of the restore) so that the copy sets nothing in
    /// motion on its own; null when its rows are inert.
    /// </param>
    /// <param name="history">The table records what happened: a restore over the live tenant does not roll it back.</param>
    /// <param name="credentials">The table holds credentials: a restore over the live tenant leaves them as they are.</param>
    public static IServiceCollection AddTenantData(
        this IServiceCollection services, string table, Action<Azure.Data.Tables.TableEntity, DateTimeOffset>? sandbox = null, bool history = false,
        bool credentials = false) =>
        services.Configure<StorageLayout>(layout =>
        {
            layout.TenantData.Add(table);
            if (history)
            {
                layout.History.Add(table);
            }

            if (credentials)
            {
                layout.Credentials.Add(table);
            }

            if (sandbox is not null)
            {
                layout.SandboxRules[table] = sandbox;
            }
        });

    /// <summary>Declares a container whose blobs <c>{tenant}/...</c> are tenant data, copied by backups.</summary>
    public static IServiceCollection AddTenantBlobs(this IServiceCollection services, string container) =>
        services.Configure<StorageLayout>(layout => layout.TenantBlobs.Add(container));

    public static IServiceCollection AddStorageContainer(this IServiceCollection services, string name) =>
        services.Configure<StorageLayout>(layout => layout.Containers.Add(name));

    public static IServiceCollection AddStorageQueue(this IServiceCollection services, string name) =>
        services.Configure<StorageLayout>(layout => layout.Queues.Add(name));
}

/// <summary>
/// What a capability does to its rows copied into a sandbox tenant when something in them is bound to the tenant
/// they came from (a secret sealed with the tenant in its associated data): sealed again for the copy, so the copy
/// works as the original did. Registered next to the table's <see cref="StorageLayoutExtensions.AddTenantData"/>.
/// </summary>
public interface ISandboxResealer
{
    /// <summary>The tenant-data table whose rows this reseals.</summary>
    string Table { get; }

    void Reseal(Azure.Data.Tables.TableEntity row, TenantId source, TenantId target);
}
