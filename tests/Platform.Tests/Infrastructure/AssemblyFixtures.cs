using Platform.Tests.Infrastructure;

// One Azurite for the whole run; each app instance isolates itself with its own storage name prefix.
[assembly: AssemblyFixture(typeof(Azurite))]
