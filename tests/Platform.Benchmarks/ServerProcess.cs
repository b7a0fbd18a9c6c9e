using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Platform.Benchmarks;

/// <summary>
/// One published server executable started as its own process on a free loopback port, the way the figures measure
/// it: Production environment, storage from <c>AzureWebJobsStorage</c>, working directory = the publish folder (the
/// content root, where appsettings.json lives). Its console output is drained and only the tail kept, for errors.
/// </summary>
internal sealed class ServerProcess : IDisposable
{
    private const int OutputTailLines = 40;

    // Inherited settings that would change what is measured; the figure sets what it needs explicitly.
    private static readonly string[] ClearedPrefixes =
    [
        "ASPNETCORE_", "DOTNET_ENVIRONMENT", "DOTNET_URLS", "Platform__", "FUNCTIONS_", "AzureWebJobs",
    ];

    private readonly Process _process;
    private readonly Queue<string> _outputTail = new();

    private ServerProcess(Process process, int port, Stopwatch sinceStart)
    {
        _process = process;
        Port = port;
        SinceStart = sinceStart;
    }

    public int Port { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Started immediately before <see cref="Process.Start()"/>.</summary>
    public Stopwatch SinceStart { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

    public static ServerProcess Start(string executable, IReadOnlyDictionary<string, string> environment)
    {
        var port = FreeLoopbackPort();
        var startInfo = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(executable)!,
        };
        foreach (var name in startInfo.Environment.Keys.ToArray())
        {
            if (ClearedPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)))
            {
                startInfo.Environment.Remove(name);
            }
        }

        startInfo.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        startInfo.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (name, value) in environment)
        {
            startInfo.Environment[name] = value.Replace("{port}", port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
        }

        var process = new Process { StartInfo = startInfo };
        var sinceStart = Stopwatch.StartNew();
        process.Start();
        var server = new ServerProcess(process, port, sinceStart);
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>
    /// Polls <paramref name="path"/> back to back (2 ms apart, so the poller does not take one of few cores from the
    /// process it waits for) until it answers 200; returns the time since the process was started.
    /// </summary>
    public async Task<TimeSpan> WaitForOkAsync(HttpClient client, string path, TimeSpan timeout)
    {
        var url = new Uri(BaseAddress, path);
        while (true)
        {
            try
            {
                using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return SinceStart.Elapsed;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Accepted but did not answer within the client's timeout; try again.
            }

            if (_process.HasExited)
            {
                throw new InvalidOperationException(
                    $"{Path.GetFileName(_process.StartInfo.FileName)} exited with code {_process.ExitCode} before {path} answered 200:{Environment.NewLine}{OutputTail()}");
            }

            if (SinceStart.Elapsed > timeout)
            {
                throw new TimeoutException($"{path} did not answer 200 within {timeout.TotalSeconds:0} s:{Environment.NewLine}{OutputTail()}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(2));
        }
    }

    /// <summary>VmRSS and VmHWM (peak) from /proc/&lt;pid&gt;/status, in bytes.</summary>
    public (long Resident, long Peak) ReadMemory()
    {
        if (!OperatingSystem.IsLinux())
        {
            _process.Refresh();
            return (_process.WorkingSet64, _process.PeakWorkingSet64);
        }

        long resident = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                resident = Kilobytes(line);
            }
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = Kilobytes(line);
            }
        }

        return (resident * 1024, peak * 1024);

        static long Kilobytes(string line) =>
            long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Stops the process as the Functions host and a terminal do: SIGTERM, then waits for a graceful exit; kills
    /// it after <paramref name="grace"/>. Returns how long the stop took and whether the process had to be killed.
    /// </summary>
    public async Task<(TimeSpan Elapsed, bool Killed, int ExitCode)> StopAsync(TimeSpan grace)
    {
        var stopwatch = Stopwatch.StartNew();
        if (!_process.HasExited && !OperatingSystem.IsWindows())
        {
            using var kill = Process.Start(new ProcessStartInfo("kill")
            {
                ArgumentList = { "-TERM", _process.Id.ToString(CultureInfo.InvariantCulture) },
                UseShellExecute = false,
            });
            if (kill is not null)
            {
                await kill.WaitForExitAsync();
            }
        }

        var killed = false;
        using (var cancel = new CancellationTokenSource(grace))
        {
            try
            {
                await _process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
                killed = true;
            }
        }

        return (stopwatch.Elapsed, killed, _process.ExitCode);
    }

    /// <summary>Kills the process at once (SIGKILL on Linux): no graceful stop, in-flight work abandoned, as a crash would.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public string OutputTail()
    {
        lock (_outputTail)
        {
            return string.Join(Environment.NewLine, _outputTail);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_outputTail)
        {
            _outputTail.Enqueue(line);
            while (_outputTail.Count > OutputTailLines)
            {
                _outputTail.Dequeue();
            }
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
