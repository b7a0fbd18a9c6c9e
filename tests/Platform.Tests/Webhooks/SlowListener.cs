using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Platform.Tests.Webhooks;

/// <summary>
/// A raw TCP receiver on loopback that never answers properly: it either sends its headers and then trickles the body a
/// byte at a time (<see cref="Trickles"/>), or holds each request without answering until the sender gives up. It
/// counts the requests it holds at once, so a test can see whether two were ever sent in parallel.
/// </summary>
public sealed class SlowListener : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly bool _trickles;
    private int _inFlight;
    private int _maxInFlight;
    private int _requests;

    public SlowListener(bool trickles)
    {
        _trickles = trickles;
        _listener.Start();
        _ = AcceptAsync();
    }

    public bool Trickles => _trickles;

    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/hooks";

    public int Requests => Volatile.Read(ref _requests);

    /// <summary>The most requests held at the same moment.</summary>
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            _ = HoldAsync(client);
        }
    }

    private async Task HoldAsync(TcpClient client)
    {
        using (client)
        {
            var counted = false;
            try
            {
                var stream = client.GetStream();
                var buffer = new byte[8192];
                var seen = new StringBuilder();
                while (!seen.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var read = await stream.ReadAsync(buffer, _stop.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    seen.Append(Encoding.ASCII.GetString(buffer, 0, read));
                }

                Interlocked.Increment(ref _requests);
                var now = Interlocked.Increment(ref _inFlight);
                counted = true;
                for (var max = Volatile.Read(ref _maxInFlight); now > max; max = Volatile.Read(ref _maxInFlight))
                {
                    Interlocked.CompareExchange(ref _maxInFlight, now, max);
                }

                if (_trickles)
                {
                    await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"u8.ToArray(), _stop.Token);
                    while (true)
                    {
                        await stream.WriteAsync("x"u8.ToArray(), _stop.Token);
                        await stream.FlushAsync(_stop.Token);
                        await Task.Delay(100, _stop.Token);
                    }
                }

                // Held until the sender closes the connection (its timeout) or the test ends.
                while (await stream.ReadAsync(buffer, _stop.Token) > 0)
                {
                }
            }
            catch (Exception)
            {
                // The sender gave up: that ends the request.
            }
            finally
            {
                if (counted)
                {
                    Interlocked.Decrement(ref _inFlight);
                }
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }
}
