using Microsoft.Extensions.DependencyInjection.Extensions;
using Platform.Functions.Hosting;
using Platform.Functions.Http;
using Platform.Functions.Query;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Inventory;

public static class InventoryExtensions
{
    public static IHostApplicationBuilder AddInventory(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(InventoryStore.TableName, changeLogged: [ItemEntity.KeyPrefix, StockEntity.KeyPrefix]);
        builder.Services.AddProjectionMemory();
        builder.Services.AddSingleton<InventoryProjections>();
        builder.Services.AddSingleton<InventoryStore>();
        builder.Services.AddSingleton<LocationCommands>();
        builder.Services.AddSingleton<ItemCommands>();
        builder.Services.AddSingleton<MovementCommands>();
        builder.Services.AddSingleton<AlertMonitor>();
        builder.Services.AddValidatedOptions<InventoryOptions>(InventoryOptions.Section);
        builder.Services.AddTimerFunction<InventoryExpiryScan>("InventoryExpiryScan", "0 0 5 * * *");
        builder.Services.TryAddSingleton<ContinuationTokens>();
        return builder;
    }

    public static IEndpointRouteBuilder MapInventory(this IEndpointRouteBuilder app)
    {
        app.MapLocations();
        app.MapItems();
        app.MapMovements();
        app.MapAlerts();
        app.MapReorderSuggestions();
        app.MapInventoryAnalytics();
        return app;
    }
}
