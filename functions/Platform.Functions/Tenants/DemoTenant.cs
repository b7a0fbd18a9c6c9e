using System.Security.Cryptography;
using Platform.Functions.Storage;

namespace Platform.Functions.Tenants;

/// <summary>
/// In Development only: once storage is ready, creates the tenant <c>demo</c> with an admin and sample data (<see cref="DemoData"/>) and prints how to sign
/// in - once, when it is created (the password is random and not stored anywhere else). Never in Production.
/// </summary>
public sealed partial class DemoTenant(
    IHostEnvironment environment,
    StorageInitializer storage,
    TenantDirectory tenants,
    TenantSignUp signUp,
    DemoData data,
    ILogger<DemoTenant> logger) : BackgroundService
{
    public const string Slug = "demo";
    public const string AdminEmail = "admin@demo.example";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!environment.IsDevelopment())
        {
            return;
        }

        try
        {
            await storage.WhenCreated(stoppingToken);
            if (await tenants.FindBySlugAsync(Slug, stoppingToken) is not null)
            {
                LogExists(logger, Slug, AdminEmail);
                return;
            }

            var password = "demo-" + RandomNumberGenerator.GetString("abcdefghijkmnpqrstuvwxyz23456789", 16);
            if (await signUp.CreateAsync("Demo", Slug, AdminEmail, password, "Demo Admin", null, stoppingToken) is { } created)
            {
                await data.SeedAsync(new TenantId(created.Tenant.Id), created.Admin.Id, stoppingToken);

                // Printed plainly on purpose (Development only): it is the one way to learn the password.
                await Console.Out.WriteLineAsync($$"""

                    Demo tenant created. Sign in with:
                      curl -s localhost:7071/api/v1/auth/login -H 'content-type: application/json' \
                        -d '{"tenant":"{{Slug}}","email":"{{AdminEmail}}","password":"{{password}}"}'

                    """);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Demo tenant '{Slug}' exists; its admin is {Email} (password printed when it was created; delete .azurite/ to start over)")]
    private static partial void LogExists(ILogger logger, string slug, string email);
}
