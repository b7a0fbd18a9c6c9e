using Platform.Functions.Auth;

namespace Platform.Functions.Jobs.Exports;

/// <summary>
/// One kind of rows an export writes out (users, inventory items, movements, audit). The owning capability implements
/// it over its own tables and registers it with <see cref="ExportKindRegistration.AddExportKind{T}"/>.
/// </summary>
public interface IExportKind
{
    /// <summary>The file's columns, in order; every row has one value per column.</summary>
    IReadOnlyList<string> Columns { get; }

    /// <summary>
    /// Checks a filter (the API's filter language) before the job starts, so a bad one is a 400 at the route:
    /// null when it is fine (or absent), else the message (with the position) for <c>invalid_filter</c>.
    /// </summary>
    string? CheckFilter(string? filter);

    /// <summary>
    /// The caller's tenant's rows that match the filter, streamed (a page at a time from storage, never the whole
    /// result in memory), each aligned with <see cref="Columns"/>. Values are plain text (timestamps ISO 8601 UTC,
    /// numbers invariant, lists joined with <c>;</c>); the writer neutralises spreadsheet formulas.
    /// </summary>
    IAsyncEnumerable<IReadOnlyList<string?>> RowsAsync(Caller caller, string? filter, CancellationToken cancellationToken);
}

public static class ExportKindRegistration
{
    /// <summary>Registers an export kind under its name (<c>kind</c> in the request body), e.g. <c>users</c>.</summary>
    /// <param name="permission">What the caller needs besides <c>jobs.write</c> to start one (e.g. <c>users.write</c>).</param>
    public static IServiceCollection AddExportKind<T>(this IServiceCollection services, string kind, string permission) where T : class, IExportKind
    {
        services.AddKeyedScoped<IExportKind, T>(kind);
        services.Configure<ExportKindCatalog>(catalog => catalog.Kinds.Add(kind, permission));
        return services;
    }
}

/// <summary>The names of every registered export kind.</summary>
public sealed class ExportKindCatalog
{
    /// <summary>Kind name to the permission it needs.</summary>
    public SortedDictionary<string, string> Kinds { get; } = new(StringComparer.Ordinal);
}
