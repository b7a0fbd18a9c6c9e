using Platform.Functions.Events;
using Platform.Functions.Roles;
using Platform.Functions.Hosting;
using Platform.Functions.Http;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Query;
using Platform.Functions.Reports;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Inventory;

public static class InventoryExtensions
{
    public static IHostApplicationBuilder AddInventory(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(InventoryStore.TableName, changeLogged: [ItemEntity.KeyPrefix, StockEntity.KeyPrefix]);
        builder.Services.AddEventOutbox(InventoryStore.TableName);
        builder.Services.AddTenantData(InventoryStore.TableName);
        builder.Services.AddProjectionMemory();
        builder.Services.AddSingleton<InventoryProjections>();
        builder.Services.AddSingleton<ISnapshottedProjection>(services => services.GetRequiredService<InventoryProjections>().Items);
        builder.Services.AddSingleton<ISnapshottedProjection>(services => services.GetRequiredService<InventoryProjections>().Stock);
        builder.Services.AddSingleton<InventoryStore>();
        builder.Services.AddSingleton<LocationCommands>();
        builder.Services.AddSingleton<ItemCommands>();
        builder.Services.AddSingleton<MovementCommands>();
        builder.Services.AddSingleton<AlertMonitor>();
        builder.Services.AddSingleton<Housekeeping.IRowExpiry, ClosedAlertExpiry>();
        builder.Services.AddValidatedOptions<InventoryOptions>(InventoryOptions.Section);
        builder.Services.AddTimerFunction<InventoryExpiryScan>("InventoryExpiryScan", "0 0 5 * * *");
        builder.Services.AddImportKind<ItemImport>(ItemImport.Kind, Permissions.InventoryWrite);
        builder.Services.AddImportKind<LocationImport>(LocationImport.Kind, Permissions.InventoryWrite);
        builder.Services.AddImportKind<MovementImport>(MovementImport.Kind, Permissions.InventoryWrite);
        builder.Services.AddExportKind<ItemExport>(ItemExport.Kind, Permissions.InventoryRead);
        builder.Services.AddExportKind<MovementExport>(MovementExport.Kind, Permissions.InventoryRead);
        builder.Services.AddOptions<ReportTypeCatalog>();
        builder.Services.AddReportType<InventoryStatusReport>(InventoryStatusReport.Type);
        return builder;
    }

    /// <summary><c>/api/v1/inventory</c>: locations, items, movements, alerts, reorder suggestions and analytics.</summary>
    public static RouteGroupBuilder MapInventory(this IEndpointRouteBuilder app)
    {
        var inventory = app.MapGroup("/api/v1/inventory").WithTags("Inventory");
        LocationsEndpoints.MapRoutes(inventory);
        ItemsEndpoints.MapRoutes(inventory);
        MovementsEndpoints.MapRoutes(inventory);
        AlertsEndpoints.MapRoutes(inventory);
        ReorderSuggestionsEndpoints.MapRoutes(inventory);
        AnalyticsEndpoints.MapRoutes(inventory);
        return inventory;
    }
}
