using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Queues;
using Platform.Functions.Jobs.Engine;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// A throwaway Azurite (the pinned one in infra/node_modules) on free loopback ports with in-memory storage.
/// There is no fallback: if it cannot start, every test that needs it fails with Azurite's own output.
/// </summary>
public sealed class Azurite : IAsyncLifetime
{
    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private readonly StringBuilder _output = new();
    private Process? _process;

    /// <summary>Used as the assembly fixture: ports are picked when it starts.</summary>
    public Azurite() : this(FreePorts(3))
    {
    }

    private Azurite(IReadOnlyList<int> ports)
    {
        BlobPort = ports[0];
        QueuePort = ports[1];
        TablePort = ports[2];
    }

    /// <summary>An Azurite on ports chosen by the caller (e.g. ports an app was already pointed at); not started yet.</summary>
    public static Azurite OnPorts(IReadOnlyList<int> ports) => new(ports);

    public int BlobPort { get; }
    public int QueuePort { get; }
    public int TablePort { get; }

    public string ConnectionString => ConnectionStringFor([BlobPort, QueuePort, TablePort]);

    public static string ConnectionStringFor(IReadOnlyList<int> ports) =>
        $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{ports[0]}/devstoreaccount1;" +
        $"QueueEndpoint=http://127.0.0.1:{ports[1]}/devstoreaccount1;" +
        $"TableEndpoint=http://127.0.0.1:{ports[2]}/devstoreaccount1;";

    public static IReadOnlyList<int> FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        listeners.ForEach(l => l.Start());
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToList();
        listeners.ForEach(l => l.Stop());
        return ports;
    }

    public async ValueTask InitializeAsync()
    {
        var script = Path.Combine(Repo.Root, "infra", "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script))
        {
            throw new InvalidOperationException($"Azurite is not installed at {script}. Run 'npm ci' in infra/ (the test command does).");
        }

        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Azurite's stock extent sweep (every 60 s, on the one thread that also serves tables, queues and blobs) removes
        // each unreferenced extent with an index rebuild: late in a full run it stopped the emulator for over 90 s, and
        // tests running then failed on storage timeouts. The benchmarks' one-pass sweep deletes the same extents.
        var sweep = Path.Combine(Repo.Root, "infra", "bench", "azurite-gc.js");
        foreach (var argument in new[]
        {
            "--require", sweep, script, "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--blobPort", $"{BlobPort}",
            "--queueHost", "127.0.0.1", "--queuePort", $"{QueuePort}",
            "--tableHost", "127.0.0.1", "--tablePort", $"{TablePort}",
        })
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("node could not be started.");
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(60);
        foreach (var port in new[] { BlobPort, QueuePort, TablePort })
        {
            while (!await AnswersAsync(port))
            {
                if (_process.HasExited || DateTime.UtcNow > deadline)
                {
                    throw new InvalidOperationException($"Azurite did not start on port {port}. Its output:\n{Output}");
                }

                await Task.Delay(100);
            }
        }
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static async Task<bool> AnswersAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// Deletes what an app with this storage prefix left behind: its tables, queues and containers, and those of its
    /// durable task hub. The in-memory Azurite otherwise holds every test's rows, messages and blobs to the end of the
    /// run, and a run's last minutes slowed many times over as its node heap filled.
    /// </summary>
    public async Task RemoveAsync(string prefix)
    {
        foreach (var name in new[] { prefix, TaskHub.NameFor(prefix) })
        {
            var tables = new TableServiceClient(ConnectionString);
            await foreach (var table in tables.QueryAsync(filter: $"TableName ge '{name}' and TableName lt '{name}~'"))
            {
                await IgnoringGoneAsync(() => tables.DeleteTableAsync(table.Name));
            }

            var queues = new QueueServiceClient(ConnectionString);
            await foreach (var queue in queues.GetQueuesAsync(prefix: name.ToLowerInvariant()))
            {
                await IgnoringGoneAsync(() => queues.DeleteQueueAsync(queue.Name));
            }

            var blobs = new BlobServiceClient(ConnectionString);
            await foreach (var container in blobs.GetBlobContainersAsync(prefix: name.ToLowerInvariant()))
            {
                var client = blobs.GetBlobContainerClient(container.Name);
                if (container.Properties.LeaseState != LeaseState.Available)
                {
                    // A singleton's lease the stopped app left (it would have expired): deleting needs it broken.
                    await IgnoringGoneAsync(() => client.GetBlobLeaseClient().BreakAsync(TimeSpan.Zero));
                }

                await IgnoringGoneAsync(() => client.DeleteAsync());
            }
        }
    }

    private static async Task IgnoringGoneAsync(Func<Task> delete)
    {
        try
        {
            await delete();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
    }
}
