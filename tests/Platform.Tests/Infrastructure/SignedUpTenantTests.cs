using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// Base of test classes that need a running app with one signed-up tenant; each test gets a fresh app and tenant.
/// With <see cref="UsesFakeClock"/>, the app's TimeProvider is <see cref="Clock"/>, which only moves when a test
/// moves it (lockouts, expiry, TOTP steps).
/// </summary>
public abstract class SignedUpTenantTests(Azurite azurite) : IAsyncLifetime
{
    protected Azurite Azurite => azurite;

    protected FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    protected PlatformApp App { get; private set; } = null!;

    protected TestTenant Tenant { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected virtual bool UsesFakeClock => true;

    protected virtual IDictionary<string, string?>? Settings => null;

    protected virtual void ConfigureServices(IServiceCollection services)
    {
    }

    public virtual async ValueTask InitializeAsync()
    {
        App = await new PlatformApp(azurite, settings: Settings, services: services =>
        {
            if (UsesFakeClock)
            {
                services.AddSingleton<TimeProvider>(Clock);
            }

            ConfigureServices(services);
        }).ReadyAsync();
        Tenant = await App.SignUpAsync();
    }

    public virtual async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
