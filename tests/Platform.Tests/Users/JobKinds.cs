using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>
/// Import and export kinds driven as the job engine drives them: resolved from a DI scope of the real app, called with
/// the caller who started the job (a real signed-in session of a real tenant).
/// </summary>
internal static class JobKinds
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The caller a job started by this user carries: their tenant, id and a live session.</summary>
    public static async Task<Caller> CallerAsync(this PlatformApp app, TestTenant tenant) =>
        new(new TenantId(tenant.Id), tenant.AdminId, (await app.LoginAsync(tenant)).SessionId);

    /// <summary>The caller of another user of the tenant (signed in with <see cref="Accounts.Password"/>).</summary>
    public static async Task<Caller> CallerAsync(this PlatformApp app, TestTenant tenant, string email, string userId)
    {
        using var client = app.CreateClient();
        var response = await client.PostLoginAsync(tenant.Slug, email, Accounts.Password);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        return new Caller(new TenantId(tenant.Id), userId, (await Accounts.ReadTokensAsync(response)).SessionId);
    }

    /// <summary>A row as the file readers hand it over: headers matched case-insensitively, empty cells null.</summary>
    public static TabularRow Row(long number, params (string Header, string? Value)[] cells) =>
        new(number, cells.ToDictionary(c => c.Header, c => c.Value, StringComparer.OrdinalIgnoreCase));

    public static async Task<IReadOnlyList<RowOutcome>> ImportAsync(
        this PlatformApp app, string kind, Caller caller, string jobId, ImportMode mode, IReadOnlyList<TabularRow> rows, bool dryRun = false)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var import = scope.ServiceProvider.GetRequiredKeyedService<IImportKind>(kind);
        return await import.ApplyAsync(new ImportBatch(caller, jobId, mode, dryRun, rows), Ct);
    }

    /// <summary>Every row an export writes, read to the end.</summary>
    public static async Task<IReadOnlyList<IReadOnlyList<string?>>> ExportAsync(this PlatformApp app, string kind, Caller caller, string? filter = null)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var export = scope.ServiceProvider.GetRequiredKeyedService<IExportKind>(kind);
        var rows = new List<IReadOnlyList<string?>>();
        await foreach (var row in export.RowsAsync(caller, filter, Ct))
        {
            Assert.Equal(export.Columns.Count, row.Count);
            rows.Add(row);
        }

        return rows;
    }

    public static IReadOnlyList<ImportColumn> ImportKindColumns(this PlatformApp app, string kind)
    {
        using var scope = app.Services.CreateScope();
        return scope.ServiceProvider.GetRequiredKeyedService<IImportKind>(kind).Columns;
    }

    public static IExportKind ExportKind(this PlatformApp app, string kind) =>
        app.Services.CreateAsyncScope().ServiceProvider.GetRequiredKeyedService<IExportKind>(kind);

    /// <summary>One column of exported rows, by name.</summary>
    public static IReadOnlyList<string?> Column(this IReadOnlyList<IReadOnlyList<string?>> rows, IExportKind kind, string column)
    {
        var index = kind.Columns.ToList().IndexOf(column);
        Assert.True(index >= 0, $"no column {column}");
        return [.. rows.Select(r => r[index])];
    }
}
