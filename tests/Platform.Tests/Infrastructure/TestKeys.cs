using System.Security.Cryptography;

namespace Platform.Tests.Infrastructure;

/// <summary>Keys made once per test run, so no test writes key files into the source tree.</summary>
public static class TestKeys
{
    public static string SigningKeyPem { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256).ExportPkcs8PrivateKeyPem();

    public static string DataEncryptionKey { get; } = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
}
