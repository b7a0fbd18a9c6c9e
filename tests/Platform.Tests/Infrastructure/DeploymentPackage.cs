using System.Diagnostics;
using System.IO.Compression;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// The zip that is deployed, built once per run by <c>infra/package.sh</c> (Release publish + function.json
/// emission + zip) and unpacked for inspection.
/// </summary>
public sealed class DeploymentPackage : IAsyncLifetime
{
    private readonly string _work = Directory.CreateTempSubdirectory("platform-package-").FullName;

    public string ZipPath => Path.Combine(_work, "platform.zip");

    public string Unpacked => Path.Combine(_work, "unpacked");

    public async ValueTask InitializeAsync()
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
        start.ArgumentList.Add(Path.Combine(Repo.Root, "infra", "package.sh"));
        start.ArgumentList.Add(ZipPath);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"infra/package.sh failed ({process.ExitCode}):\n{await output}\n{await errors}");
        }

        ZipFile.ExtractToDirectory(ZipPath, Unpacked);
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_work, recursive: true);
        return ValueTask.CompletedTask;
    }
}
