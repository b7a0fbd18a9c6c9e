using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Tests.Users;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// Base of test classes that need a running app with one signed-up tenant. Each test signs up a tenant of its own;
/// the tests of a class share one app (they run one after another), the way the tenants of a deployment share its
/// instances - tenant isolation is what the product guarantees. A class whose services hold per-test state, or whose
/// tests need an app nobody used before, sets <see cref="SharesApp"/> to false.
/// With <see cref="UsesFakeClock"/>, the app's TimeProvider is <see cref="Clock"/>, which only moves when a test
/// moves it (lockouts, expiry, TOTP steps); a shared app's clock starts where the class's previous test left it.
/// </summary>
public abstract class SignedUpTenantTests(Azurite azurite) : IAsyncLifetime, IClassFixture<ClassApp>
{
    protected Azurite Azurite => azurite;

    protected FakeTimeProvider Clock { get; private set; } = new(DateTimeOffset.UtcNow);

    /// <summary>Whether the class's tests share one app (the default) or each gets its own.</summary>
    protected virtual bool SharesApp => true;

    private bool _ownsApp;

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
        var shared = SharesApp ? await TestContext.Current.GetFixture<ClassApp>() : null;
        if (shared is null)
        {
            _ownsApp = true;
            App = await NewAppAsync(Clock);
        }
        else
        {
            Clock = shared.Clock;
            App = await shared.AppAsync(azurite, () => NewAppAsync(shared.Clock));
        }

        Tenant = await App.SignUpAsync();
        if (SignsInAdmin)
        {
            _admin = await App.SignedInClientAsync(Tenant);
        }
    }

    private Task<PlatformApp> NewAppAsync(FakeTimeProvider clock) =>
        new PlatformApp(azurite, settings: Settings, services: services =>
        {
            if (UsesFakeClock)
            {
                services.AddSingleton<TimeProvider>(clock);
            }

            ConfigureServices(services);
        }).ReadyAsync();

    /// <summary>Signs the admin in afresh (after the fake clock outran the access token).</summary>
    protected async Task SignInAdminAgainAsync()
    {
        _admin?.Dispose();
        _admin = await App.SignedInClientAsync(Tenant);
    }

    /// <summary>
    /// Waits for a job the admin started to finish, signing the admin in again when the job ended their session on the
    /// way (a restore over the tenant ends every session).
    /// </summary>
    protected async Task<JsonElement> FinishedAdminJobAsync(string id, TimeSpan? timeout = null)
    {
        var job = await Eventually.Until(async () =>
        {
            var response = await Admin.GetAsync($"/api/v1/jobs/{id}", Ct);
            if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized)
            {
                await SignInAdminAgainAsync();
                return (JsonElement?)null;
            }

            Assert.True(response.IsSuccessStatusCode, $"GET job {id}: {(int)response.StatusCode}");
            return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        }, job => job?.GetProperty("status").GetString() is { } status && status is not ("queued" or "running"), $"job {id} to finish", timeout ?? TimeSpan.FromSeconds(90));
        return job!.Value;
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
        if (_ownsApp)
        {
            await App.DisposeAsync();
            await azurite.RemoveAsync(App.Prefix);
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// The app the tests of one class share, made by the first of them and stopped when the class is done. Mail sent
/// during an earlier test is set aside before the next one starts, so a test reads only its own.
/// </summary>
public sealed class ClassApp : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<PlatformApp> _apps = [];
    private Azurite? _azurite;
    private PlatformApp? _app;

    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    public async Task<PlatformApp> AppAsync(Azurite azurite, Func<Task<PlatformApp>> create)
    {
        await _gate.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (_app is { IsDisposed: false })
            {
                _app.SetMailAside();
                return _app;
            }

            // A test that stopped the app (to see what a stop does) leaves the next one a new app.
            _azurite = azurite;
            _app = await create();
            _apps.Add(_app);
            return _app;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
            await _azurite!.RemoveAsync(app.Prefix);
        }

        _gate.Dispose();
    }
}
