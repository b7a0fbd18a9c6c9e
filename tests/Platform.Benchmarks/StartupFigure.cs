using System.Globalization;
using System.Security.Cryptography;

namespace Platform.Benchmarks;

/// <summary>
/// <c>startup &lt;appExecutable&gt; &lt;baselineExecutable&gt; [runs=5]</c>: for each executable, <c>runs</c> times,
/// the time from <see cref="System.Diagnostics.Process.Start()"/> to the first 200 on GET /api/health/live, then the
/// resident memory (VmRSS) after 5 s idle, then a SIGTERM stop. The app's and the baseline's runs alternate, after
/// one uncounted warm-up run of each (it fills the page cache and JIT-compiles this poller), so both see the same
/// machine. Prints medians next to each other and the goal; the exit code is 0 whether or not the goal is met.
/// Production refuses to start without keys, so both processes get throwaway ones in configuration (on Azure they
/// are read from Key Vault at start, which this figure does not include).
/// </summary>
internal static class StartupFigure
{
    private const string ProbePath = "/api/health/live";
    private const double GoalStartMilliseconds = 1000;
    private const double GoalResidentMegabytes = 150;
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length is < 2 or > 3)
        {
            await Console.Error.WriteLineAsync("usage: startup <appExecutable> <baselineExecutable> [runs=5]");
            return 2;
        }

        var runs = 5;
        if (args.Length == 3 && (!int.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out runs) || runs < 1))
        {
            await Console.Error.WriteLineAsync($"runs must be a positive whole number: {args[2]}");
            return 2;
        }

        var subjects = new[] { new Subject("app", args[0]), new Subject("baseline", args[1]) };
        foreach (var subject in subjects)
        {
            if (!File.Exists(subject.Executable))
            {
                await Console.Error.WriteLineAsync($"{subject.Name}: no such executable: {subject.Executable}");
                return 2;
            }
        }

        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync("startup: set AzureWebJobsStorage (infra/bench/startup.sh starts an Azurite and sets it)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var environment = new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = storage,
            ["Platform__PublicBaseUrl"] = "http://127.0.0.1:{port}",
            ["Platform__Auth__SigningKey"] = signingKey.ExportPkcs8PrivateKeyPem(),
            ["Platform__Auth__DataEncryptionKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        };

        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(2),
            PooledConnectionLifetime = TimeSpan.Zero,
        })
        {
            Timeout = TimeSpan.FromSeconds(5),
        };

        Console.WriteLine($"startup: process start to first 200 on GET {ProbePath}, then VmRSS after {Idle.TotalSeconds:0} s idle; "
            + $"{runs} run(s) each, alternating, after one uncounted warm-up; {Environment.ProcessorCount} cores");
        foreach (var subject in subjects)
        {
            Console.WriteLine($"  {subject.Name,-9} {subject.Executable}");
        }

        try
        {
            for (var run = 0; run <= runs; run++)
            {
                foreach (var subject in subjects)
                {
                    var sample = await MeasureAsync(subject, client, environment);
                    var label = run == 0 ? "warm-up" : $"run {run}/{runs}";
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {subject.Name,-9} {label,-9} first 200 after {sample.StartMilliseconds,7:0.0} ms   "
                        + $"RSS {sample.ResidentMegabytes,6:0.0} MiB (peak {sample.PeakMegabytes,6:0.0})   "
                        + $"stopped in {sample.StopMilliseconds,5:0} ms, exit {sample.ExitCode}{(sample.Killed ? " (KILLED after SIGTERM grace)" : "")}"));
                    if (run > 0)
                    {
                        subject.Samples.Add(sample);
                    }
                }
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            await Console.Error.WriteLineAsync($"startup: {e.Message}");
            return 1;
        }

        PrintTable(subjects);
        return 0;
    }

    private static async Task<Sample> MeasureAsync(Subject subject, HttpClient client, IReadOnlyDictionary<string, string> environment)
    {
        using var server = ServerProcess.Start(subject.Executable, environment);
        var start = await server.WaitForOkAsync(client, ProbePath, StartTimeout);
        await Task.Delay(Idle);
        if (server.HasExited)
        {
            throw new InvalidOperationException($"{subject.Name} exited while idle:{Environment.NewLine}{server.OutputTail()}");
        }

        var (resident, peak) = server.ReadMemory();
        var (stopped, killed, exitCode) = await server.StopAsync(StopGrace);
        return new Sample(start.TotalMilliseconds, resident / 1048576.0, peak / 1048576.0, stopped.TotalMilliseconds, killed, exitCode);
    }

    private static void PrintTable(IReadOnlyList<Subject> subjects)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine($"{"name",-10} {"executable",-30} {"start median",13} {"min",8} {"max",8} {"RSS median",11} {"peak RSS",9}");
        foreach (var subject in subjects)
        {
            var starts = subject.Samples.Select(s => s.StartMilliseconds).ToArray();
            Console.WriteLine(string.Create(inv,
                $"{subject.Name,-10} {Path.GetFileName(subject.Executable),-30} {Statistics.Median(starts),10:0} ms {starts.Min(),5:0} ms {starts.Max(),5:0} ms "
                + $"{subject.MedianResident,7:0.0} MiB {Statistics.Median(subject.Samples.Select(s => s.PeakMegabytes).ToArray()),5:0.0} MiB"));
        }

        var app = subjects[0];
        var baseline = subjects[1];
        Console.WriteLine(string.Create(inv,
            $"{"app - baseline",-41} {app.MedianStart - baseline.MedianStart,+10:+0;-0} ms {"",17} {app.MedianResident - baseline.MedianResident,+7:+0.0;-0.0} MiB"));
        Console.WriteLine(string.Create(inv,
            $"goal (app): start < {GoalStartMilliseconds:0} ms: {Verdict(app.MedianStart < GoalStartMilliseconds)} ({app.MedianStart:0} ms); "
            + $"RSS at idle < {GoalResidentMegabytes:0} MB: {Verdict(app.MedianResident < GoalResidentMegabytes)} ({app.MedianResident:0.0} MiB)"));

        static string Verdict(bool met) => met ? "met" : "NOT met";
    }

    private sealed record Sample(double StartMilliseconds, double ResidentMegabytes, double PeakMegabytes, double StopMilliseconds, bool Killed, int ExitCode);

    private sealed class Subject(string name, string executable)
    {
        public string Name { get; } = name;

        public string Executable { get; } = Path.GetFullPath(executable);

        public List<Sample> Samples { get; } = [];

        public double MedianStart => Statistics.Median(Samples.Select(s => s.StartMilliseconds).ToArray());

        public double MedianResident => Statistics.Median(Samples.Select(s => s.ResidentMegabytes).ToArray());
    }
}
