using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Triggers;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Deployment;

/// <summary>The deployed zip is a complete custom-handler package that matches the C# declarations.</summary>
public sealed class DeploymentPackageTests(DeploymentPackage package, Azurite azurite) : IClassFixture<DeploymentPackage>
{
    [Fact]
    public void EveryDeclaredFunctionShipsWithTheFunctionJsonItsDeclarationDescribes()
    {
        using var app = new PlatformApp(azurite, settings: new Dictionary<string, string?> { ["Platform:Triggers:Standalone"] = "false" });
        var expected = FunctionMetadata.Describe(app.Services.GetRequiredService<FunctionCatalog>());

        var shipped = Directory.GetFiles(package.Unpacked, "function.json", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetFileName(Path.GetDirectoryName(f))!, f => JsonNode.Parse(File.ReadAllText(f))!);

        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), shipped.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, function) in expected)
        {
            Assert.True(JsonNode.DeepEquals(function, shipped[name]), $"{name}/function.json differs from its declaration");
        }

        Assert.Contains("StorageHousekeeping", shipped.Keys);
        Assert.Contains("JobRetention", shipped.Keys);
        Assert.Contains("PasswordResets", shipped.Keys);
        Assert.Equal("api/{*route}", shipped["api"]["bindings"]![0]!["route"]!.GetValue<string>());
    }

    [Fact]
    public void HostJsonAtTheRootStartsAnExecutableAppThatCarriesItsOwnRuntime()
    {
        using var hostJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(package.Unpacked, "host.json")));
        var executable = hostJson.RootElement.GetProperty("customHandler").GetProperty("description").GetProperty("defaultExecutablePath").GetString()!;
        using var zip = ZipFile.OpenRead(package.ZipPath);

        var entry = zip.GetEntry(executable);

        Assert.NotNull(entry);
        Assert.NotEqual(0, (entry.ExternalAttributes >> 16) & 0x40);
        Assert.NotNull(zip.GetEntry("libcoreclr.so"));
        Assert.NotNull(zip.GetEntry("libhostfxr.so"));
        Assert.NotNull(zip.GetEntry("Platform.Functions.dll"));
    }

    [Fact]
    public void PackageHoldsNoDevelopmentSettingsOrSecrets()
    {
        using var zip = ZipFile.OpenRead(package.ZipPath);
        var names = zip.Entries.Select(e => e.FullName).ToList();

        Assert.DoesNotContain(names, n => n.EndsWith("appsettings.Development.json", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(names, n => n.EndsWith("local.settings.json", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(names, n => n.EndsWith(".pdb", StringComparison.OrdinalIgnoreCase) && n.Contains("Tests", StringComparison.Ordinal));
        foreach (var entry in zip.Entries.Where(e => e.FullName.EndsWith(".json", StringComparison.OrdinalIgnoreCase)))
        {
            using var reader = new StreamReader(entry.Open());
            var text = reader.ReadToEnd();
            Assert.DoesNotContain("AccountKey=", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("UseDevelopmentStorage", text, StringComparison.OrdinalIgnoreCase);
        }
    }
}
