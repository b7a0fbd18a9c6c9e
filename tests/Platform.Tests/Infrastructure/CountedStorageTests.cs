using Microsoft.Extensions.DependencyInjection;

namespace Platform.Tests.Infrastructure;

/// <summary>Tests that count what their app sends to storage (<see cref="StorageCalls"/>), signed in as the admin.</summary>
public abstract class CountedStorageTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private StorageCalls? _calls;

    // The counter belongs to one app.
    protected override bool SharesApp => false;

    protected override bool SignsInAdmin => true;

    protected override void ConfigureServices(IServiceCollection services) =>
        StorageCalls.Register(services, Azurite, calls => _calls = calls);

    protected StorageCalls Calls => _calls ?? throw new InvalidOperationException("The app did not build its storage clients.");
}
