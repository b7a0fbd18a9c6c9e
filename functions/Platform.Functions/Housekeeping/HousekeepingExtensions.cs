using Platform.Functions.Storage;
using Platform.Functions.Triggers;

namespace Platform.Functions.Housekeeping;

public static class HousekeepingExtensions
{
    public static IHostApplicationBuilder AddHousekeeping(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(Expirations.TableName);
        builder.Services.AddSingleton<Expirations>();
        builder.Services.AddTimerFunction<StorageHousekeeping>("StorageHousekeeping", "0 */5 * * * *");
        return builder;
    }
}
