using Platform.Functions.Auth;
using Platform.Functions.Jobs.Files;

namespace Platform.Functions.Jobs.Imports;

[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<ImportMode>))]
public enum ImportMode
{
    /// <summary>Every row is new; a row whose natural key exists already fails on its own.</summary>
    [System.Text.Json.Serialization.JsonStringEnumMemberName("create")]
    Create,

    /// <summary>A row whose natural key exists updates it (a row that changes nothing writes nothing); others are created.</summary>
    [System.Text.Json.Serialization.JsonStringEnumMemberName("upsert")]
    Upsert,
}

/// <summary>
/// One kind of row a bulk import brings in (users, inventory items, locations, movements). The capability that owns
/// the rows implements it with its own commands, so an imported row passes exactly the HTTP API's rules, and registers
/// it with <see cref="ImportKindRegistration.AddImportKind{T}"/> in its <c>XExtensions.cs</c>.
/// </summary>
public interface IImportKind
{
    /// <summary>The template's columns in order, each with an example value (the template's one example row).</summary>
    IReadOnlyList<ImportColumn> Columns { get; }

    /// <summary>
    /// Validates and (unless <see cref="ImportBatch.DryRun"/>) applies one chunk of rows, in file order, and says
    /// what became of each row. Must be idempotent: the engine runs a chunk at least once, so a chunk applied again
    /// after a crash writes nothing new and reports each row as it did the first time (a create-mode row that finds
    /// the very row this job wrote succeeds; movements take an idempotency key derived from the job and row number).
    /// A row's failure never stops the chunk; only storage failures throw (the engine retries the chunk).
    /// </summary>
    Task<IReadOnlyList<RowOutcome>> ApplyAsync(ImportBatch batch, CancellationToken cancellationToken);

    /// <summary>
    /// True when a row may depend on an earlier row of the file (a location's parent, the stock an earlier movement
    /// brought in): the engine then applies the chunks one after another, in file order, instead of side by side.
    /// </summary>
    bool KeepsFileOrder => false;

    /// <summary>
    /// Whether a header names a column of this kind; anything else fails the file before a row is applied. Kinds
    /// that accept more than their template (an export's read-only columns, so an export imports back) say so here.
    /// </summary>
    bool Accepts(string column) =>
        column.StartsWith("fields.", StringComparison.OrdinalIgnoreCase) || Columns.Any(c => string.Equals(c.Name, column, StringComparison.OrdinalIgnoreCase));
}

/// <param name="Name">Header text (matched case-insensitively; nested fields as <c>fields.color</c>).</param>
/// <param name="Example">The template's example value.</param>
/// <param name="Required">True when a row without it fails.</param>
/// <param name="Sensitive">A secret (a password): never written to the error report or kept with failed rows.</param>
public sealed record ImportColumn(string Name, string Example, string Description, bool Required = false, bool Sensitive = false);

/// <param name="Caller">Who started the job: the rows are written as if that caller had sent them over HTTP.</param>
/// <param name="JobId">Stable across re-runs of the chunk: derive idempotency keys from it and the row number.</param>
public sealed record ImportBatch(Caller Caller, string JobId, ImportMode Mode, bool DryRun, IReadOnlyList<TabularRow> Rows);

/// <summary>What became of one row; a failure names the column and value at fault when there is one.</summary>
public sealed record RowOutcome(long Row, bool Succeeded, string? Column = null, string? Value = null, string? Message = null)
{
    public static RowOutcome Ok(long row) => new(row, true);

    public static RowOutcome Fail(long row, string? column, string? value, string message) => new(row, false, column, value, message);
}

public static class ImportKindRegistration
{
    /// <summary>Registers an import kind under its route name (<c>?kind=</c>), e.g. <c>inventory-items</c>.</summary>
    /// <param name="permission">What the caller needs besides <c>jobs.write</c> to start one (e.g. <c>users.write</c>).</param>
    public static IServiceCollection AddImportKind<T>(this IServiceCollection services, string kind, string permission) where T : class, IImportKind
    {
        services.AddKeyedScoped<IImportKind, T>(kind);
        services.Configure<ImportKindCatalog>(catalog => catalog.Kinds.Add(kind, permission));
        return services;
    }
}

/// <summary>The names of every registered import kind.</summary>
public sealed class ImportKindCatalog
{
    /// <summary>Kind name to the permission it needs.</summary>
    public SortedDictionary<string, string> Kinds { get; } = new(StringComparer.Ordinal);
}
