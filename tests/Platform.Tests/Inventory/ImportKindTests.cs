using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Inventory;

/// <summary>
/// Base of the inventory import and export kind tests: the kinds are resolved from the real app's DI scope and
/// called directly with rows (as the engine calls them per chunk), for a real signed-up tenant; what they wrote is
/// read back through the HTTP API.
/// </summary>
public abstract class ImportKindTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected Caller AdminCaller => new(new TenantId(Tenant.Id), Tenant.AdminId, "import-tests");

    protected static TabularRow Row(long number, params (string Column, string? Value)[] cells) =>
        new(number, cells.ToDictionary(c => c.Column, c => c.Value, StringComparer.OrdinalIgnoreCase));

    protected async Task<IReadOnlyList<RowOutcome>> ImportAsync(
        string kind, ImportMode mode, IReadOnlyList<TabularRow> rows, string jobId = "job1", bool dryRun = false, Caller? caller = null)
    {
        await using var scope = App.Services.CreateAsyncScope();
        var import = scope.ServiceProvider.GetRequiredKeyedService<IImportKind>(kind);
        var outcomes = await import.ApplyAsync(new ImportBatch(caller ?? AdminCaller, jobId, mode, dryRun, rows), Ct);
        Assert.Equal(rows.Select(r => r.Number), outcomes.Select(o => o.Row));
        return outcomes;
    }

    protected async Task<(IReadOnlyList<string> Columns, List<IReadOnlyList<string?>> Rows)> ExportAsync(string kind, string? filter, Caller? caller = null)
    {
        await using var scope = App.Services.CreateAsyncScope();
        var export = scope.ServiceProvider.GetRequiredKeyedService<IExportKind>(kind);
        Assert.Null(export.CheckFilter(filter));
        var rows = new List<IReadOnlyList<string?>>();
        await foreach (var row in export.RowsAsync(caller ?? AdminCaller, filter, Ct))
        {
            Assert.Equal(export.Columns.Count, row.Count);
            rows.Add(row);
        }

        return (export.Columns, rows);
    }

    protected async Task<string?> CheckFilterAsync(string kind, string filter)
    {
        await using var scope = App.Services.CreateAsyncScope();
        return scope.ServiceProvider.GetRequiredKeyedService<IExportKind>(kind).CheckFilter(filter);
    }

    protected static void AssertAllSucceeded(IReadOnlyList<RowOutcome> outcomes) =>
        Assert.All(outcomes, o => Assert.True(o.Succeeded, $"row {o.Row}: {o.Column} '{o.Value}': {o.Message}"));

    protected static void AssertFailed(RowOutcome outcome, string? column, string? value, string message)
    {
        Assert.False(outcome.Succeeded);
        Assert.Equal(column, outcome.Column);
        Assert.Equal(value, outcome.Value);
        Assert.Equal(message, outcome.Message);
    }

    /// <summary>The first message the route gives for <paramref name="field"/> of a body it refuses with 400 validation_failed.</summary>
    protected static async Task<string> FieldErrorAsync(HttpResponseMessage response, string field) =>
        (await response.ReadProblemAsync(400, "validation_failed")).GetProperty("errors").GetProperty(field)[0].GetString()!;

    /// <summary>The detail of a problem the route answers with.</summary>
    protected static async Task<string> DetailAsync(HttpResponseMessage response, int status, string code) =>
        (await response.ReadProblemAsync(status, code)).GetProperty("detail").GetString()!;

    protected async Task<IReadOnlyList<JsonElement>> ItemsAsync() => await Admin.ListAsync($"{InventoryApi.Items}?pageSize=1000");

    protected async Task<JsonElement> ItemBySkuAsync(string sku) =>
        Assert.Single(await Admin.ListAsync($"{InventoryApi.Items}?filter={Uri.EscapeDataString($"sku eq '{sku}'")}"));

    protected async Task<(JsonElement Item, string ETag)> ItemWithETagAsync(string id)
    {
        var response = await Admin.GetAsync($"{InventoryApi.Items}/{id}", Ct);
        return (await response.ReadJsonAsync(HttpStatusCode.OK), response.Headers.ETag!.Tag);
    }

    /// <summary>Every audit entry of the tenant (a change the import made publishes one).</summary>
    protected async Task<IReadOnlyList<JsonElement>> AuditAsync() =>
        [.. (await Admin.GetJsonAsync("/api/v1/audit?pageSize=1000")).GetProperty("items").EnumerateArray()];
}
