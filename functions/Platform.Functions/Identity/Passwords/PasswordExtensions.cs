using Platform.Functions.Hosting;
namespace Platform.Functions.Identity.Passwords;

public static class PasswordExtensions
{
    /// <summary>Argon2id hashing with its options (checked at start) and the policy for new passwords.</summary>
    public static IServiceCollection AddPasswords(this IServiceCollection services)
    {
        services.AddValidatedOptions<PasswordHashingOptions>(PasswordHashingOptions.Section);
        services.AddSingleton<PasswordHasher>();
        services.AddSingleton<PasswordPolicy>();
        return services;
    }
}
