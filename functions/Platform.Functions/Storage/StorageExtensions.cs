using Platform.Functions.Hosting;
using Microsoft.Extensions.Options;

namespace Platform.Functions.Storage;

public static class StorageExtensions
{
    public static IHostApplicationBuilder AddPlatformStorage(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<StorageOptions>(StorageOptions.Section);
        services.AddOptions<StorageConnection>()
            .Configure<IConfiguration>(StorageConnection.Bind)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<StorageConnection>, StorageConnection.Validator>();
        services.AddOptions<StorageLayout>();
        services.AddSingleton<StorageAccount>();
        services.AddSingleton<StorageInitializer>();
        services.AddHostedService(sp => sp.GetRequiredService<StorageInitializer>());
        return builder;
    }
}
