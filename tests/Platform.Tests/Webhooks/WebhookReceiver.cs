using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Platform.Tests.Webhooks;

/// <summary>One request a receiver got, and what it answered.</summary>
public sealed record ReceivedHook(string Path, IHeaderDictionary Headers, string Body, int Answered)
{
    public string Id => Headers["webhook-id"].ToString();

    /// <summary>When the request reached the receiver (<see cref="System.Diagnostics.Stopwatch"/> ticks), before its body was read.</summary>
    public long ArrivedAt { get; init; }
}

/// <summary>
/// A real HTTP receiver (Kestrel on loopback) that records every delivery; <see cref="Answer"/> decides each reply
/// (status, and optionally a wait that outlasts the sender's timeout).
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private WebhookReceiver(WebApplication app) => _app = app;

    public ConcurrentQueue<ReceivedHook> Received { get; } = new();

    /// <summary>Requests being answered right now (a hanging receiver holds them).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    private int _inFlight;

    public Func<ReceivedHook, int> Answer { get; set; } = _ => 200;

    /// <summary>While set, requests hang until it is released (or the sender gives up).</summary>
    public TaskCompletionSource? Hang { get; set; }

    public Dictionary<string, string> ResponseHeaders { get; } = new(StringComparer.OrdinalIgnoreCase);

    public string Url { get; private set; } = "";

    public IReadOnlyList<ReceivedHook> Succeeded => [.. Received.Where(r => r.Answered is >= 200 and < 300)];

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.Run(receiver.HandleAsync);
        await app.StartAsync(TestContext.Current.CancellationToken);
        receiver.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hooks";
        return receiver;
    }

    private async Task HandleAsync(HttpContext http)
    {
        Interlocked.Increment(ref _inFlight);
        var arrivedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            using var reader = new StreamReader(http.Request.Body);
            var body = await reader.ReadToEndAsync(http.RequestAborted);
            var headers = new HeaderDictionary(http.Request.Headers.ToDictionary(h => h.Key, h => h.Value));
            var probe = new ReceivedHook(http.Request.Path, headers, body, 0) { ArrivedAt = arrivedAt };
            if (Hang is { } hang)
            {
                await hang.Task.WaitAsync(http.RequestAborted);
            }

            var status = Answer(probe);
            Received.Enqueue(probe with { Answered = status });
            foreach (var (name, value) in ResponseHeaders)
            {
                http.Response.Headers[name] = value;
            }

            http.Response.StatusCode = status;
            await http.Response.WriteAsync("answer " + status.ToString(System.Globalization.CultureInfo.InvariantCulture), http.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            Received.Enqueue(new ReceivedHook(http.Request.Path, new HeaderDictionary(), "", -1));
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Hang?.TrySetResult();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}
