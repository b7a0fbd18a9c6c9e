using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Tests.Users;

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

    /// <summary>Signs the tenant's admin in before each test, as <see cref="Admin"/>.</summary>
    protected virtual bool SignsInAdmin => false;

    /// <summary>A client signed in as the tenant's admin (classes that set <see cref="SignsInAdmin"/>).</summary>
    protected HttpClient Admin => _admin ?? throw new InvalidOperationException("Set SignsInAdmin to sign the admin in.");

    private HttpClient? _admin;

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
        if (SignsInAdmin)
        {
            _admin = await App.SignedInClientAsync(Tenant);
        }
    }

    /// <summary>Signs the admin in afresh (after the fake clock outran the access token).</summary>
    protected async Task SignInAdminAgainAsync()
    {
        _admin?.Dispose();
        _admin = await App.SignedInClientAsync(Tenant);
    }

    /// <summary>A user of the tenant with these roles (none: the default role), created by the admin and signed in.</summary>
    protected async Task<HttpClient> SignedInAsync(string email, params string[] roles)
    {
        await Admin.CreateUserIdAsync(email, Accounts.Password, roles.Length == 0 ? null : roles);
        return await App.SignInAsAsync(Tenant, email);
    }

    public virtual async ValueTask DisposeAsync()
    {
        _admin?.Dispose();
        await App.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
