using System.Security.Cryptography;

namespace Platform.Benchmarks;

/// <summary>
/// The environment of the app as the scale figures (users, movements) run it: Production with throwaway keys, a
/// storage prefix of its own (a rerun against the same Azurite neither meets nor scans the last run's rows), and
/// per-IP sign-up and sign-in limits raised, since every request comes from 127.0.0.1 and long runs sign in again,
/// and the per-tenant caps raised, since a figure's tenant holds the admin besides the users it measures.
/// </summary>
internal static class ScaleFigureApp
{
    public static (string Prefix, Dictionary<string, string> Environment) Environment(string storage, ECDsa signingKey)
    {
        var prefix = "bench" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        return (prefix, new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = storage,
            ["Platform__Storage__Prefix"] = prefix,
            ["Platform__PublicBaseUrl"] = "http://127.0.0.1:{port}",
            ["Platform__Auth__SigningKey"] = signingKey.ExportPkcs8PrivateKeyPem(),
            ["Platform__Auth__DataEncryptionKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            ["Platform__RateLimits__SignUpsPerHourPerIp"] = "100000",
            ["Platform__RateLimits__LoginsPerHourPerIp"] = "100000",
            ["Platform__Users__MaxUsersPerTenant"] = "10000000",
            ["Platform__Inventory__MaxItemsPerTenant"] = "100000000",
        });
    }
}
