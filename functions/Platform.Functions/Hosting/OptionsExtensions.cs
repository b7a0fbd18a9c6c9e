using Microsoft.Extensions.Options;

namespace Platform.Functions.Hosting;

public static class OptionsExtensions
{
    /// <summary>
    /// Options bound from <paramref name="section"/>, checked by their data annotations when the app starts, so a bad
    /// setting stops the process with its message instead of failing the first request that reads it.
    /// </summary>
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, string section) where T : class =>
        services.AddOptions<T>().BindConfiguration(section).ValidateDataAnnotations().ValidateOnStart();
}
