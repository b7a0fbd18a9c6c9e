using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Platform.Functions.Hosting;

namespace Platform.Functions.Webhooks;

/// <summary>Settings of every outgoing request to a URL a tenant chose (<c>Platform:Webhooks</c>).</summary>
public sealed class OutboundHttpOptions
{
    public const string Section = "Platform:Webhooks";

    /// <summary>
    /// Lets requests reach loopback and private ranges (local development and tests only). Link-local, metadata,
    /// CGNAT, multicast and the other special ranges stay refused whatever this says.
    /// </summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>The whole request, connect to last byte read.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Why an address may not be reached, or null when it may. IPv6 is judged by allowing only global unicast
/// (<c>2000::/3</c>) less the prefixes that tunnel elsewhere, after unwrapping every form that carries an IPv4 address
/// (mapped, SIIT, compatible, NAT64, 6to4), which is then judged as IPv4.
/// </summary>
public static class AddressPolicy
{
    private static readonly IPAddress MetadataV4 = IPAddress.Parse("169.254.169.254");
    private static readonly IPAddress MetadataV6 = IPAddress.Parse("fd00:ec2::254");

    /// <summary>Azure's WireServer: the host agent of every Azure VM, reachable from inside it and not meant for tenants.</summary>
    private static readonly IPAddress WireServer = IPAddress.Parse("168.63.129.16");

    public static string? Refusal(IPAddress address, bool allowPrivateNetworks)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (address.Equals(MetadataV6))
            {
                return "the cloud metadata address";
            }

            var bytes = address.GetAddressBytes();
            if (EmbeddedIPv4(bytes) is not { } embedded)
            {
                return RefusalV6(address, bytes, allowPrivateNetworks);
            }

            address = embedded;
        }

        if (address.Equals(MetadataV4))
        {
            return "the cloud metadata address";
        }

        if (address.Equals(WireServer))
        {
            return "the Azure platform address (168.63.129.16)";
        }

        return RefusalV4(address.GetAddressBytes(), allowPrivateNetworks);
    }

    private static string? RefusalV4(byte[] b, bool allowPrivate)
    {
        var (a0, a1) = (b[0], b[1]);
        if (a0 == 0)
        {
            return "an unspecified address (0.0.0.0/8)";
        }

        if (a0 == 169 && a1 == 254)
        {
            return "a link-local address (169.254.0.0/16)";
        }

        if (a0 == 100 && a1 is >= 64 and <= 127)
        {
            return "a shared (CGNAT) address (100.64.0.0/10)";
        }

        if (a0 >= 224 && a0 <= 239)
        {
            return "a multicast address";
        }

        if (a0 >= 240)
        {
            return a0 == 255 && a1 == 255 && b[2] == 255 && b[3] == 255 ? "the broadcast address" : "a reserved address (240.0.0.0/4)";
        }

        if (a0 == 192 && a1 == 0 && b[2] == 0)
        {
            return "an IETF protocol address (192.0.0.0/24)";
        }

        if (a0 == 198 && a1 is 18 or 19)
        {
            return "a benchmarking address (198.18.0.0/15)";
        }

        if (allowPrivate)
        {
            return null;
        }

        if (a0 == 127)
        {
            return "a loopback address";
        }

        if (a0 == 10 || (a0 == 172 && a1 is >= 16 and <= 31) || (a0 == 192 && a1 == 168))
        {
            return "a private address";
        }

        return null;
    }

    private static string? RefusalV6(IPAddress address, byte[] b, bool allowPrivate)
    {
        if (address.Equals(IPAddress.IPv6None))
        {
            return "an unspecified address";
        }

        if (b[0] == 0xff)
        {
            return "a multicast address";
        }

        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        {
            return "a link-local address (fe80::/10)";
        }

        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0x00 && b[5] == 0x01)
        {
            // The operator's own translator: where it leads is not ours to judge.
            return "a local-use NAT64 address (64:ff9b:1::/48)";
        }

        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00)
        {
            // The IPv4 address a Teredo tunnel ends at is obfuscated and its relay is someone else's: never followed.
            return "a Teredo address (2001::/32)";
        }

        if (address.Equals(IPAddress.IPv6Loopback) || (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0))
        {
            return allowPrivate ? null
                : address.Equals(IPAddress.IPv6Loopback) ? "a loopback address" : "a private address (fc00::/7, fec0::/10)";
        }

        return (b[0] & 0xe0) == 0x20 ? null : "a reserved address (outside the global unicast range 2000::/3)";
    }

    /// <summary>
    /// The IPv4 address an IPv6 address leads to: IPv4-mapped (<c>::ffff:a.b.c.d</c>), SIIT (<c>::ffff:0:a.b.c.d</c>),
    /// IPv4-compatible (<c>::a.b.c.d</c>), NAT64 (<c>64:ff9b::/96</c>) and 6to4 (<c>2002:aabb:ccdd::/48</c>).
    /// </summary>
    private static IPAddress? EmbeddedIPv4(byte[] b)
    {
        var zeroTo8 = b.AsSpan(0, 8).IndexOfAnyExcept((byte)0) < 0;
        var mapped = zeroTo8 && b[8] == 0 && b[9] == 0 && b[10] == 0xff && b[11] == 0xff;
        var siit = zeroTo8 && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0;
        var compatible = b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0 && !(b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1);
        var nat64 = b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0;
        if (mapped || siit || compatible || nat64)
        {
            return new IPAddress(b.AsSpan(12, 4));
        }

        return b[0] == 0x20 && b[1] == 0x02 ? new IPAddress(b.AsSpan(2, 4)) : null;
    }
}

/// <summary>A request the guard stopped before any connection was made.</summary>
public sealed class OutboundRefusedException(string message) : HttpRequestException(message);

/// <summary>
/// The one way the app sends HTTP to a URL a tenant chose (webhook deliveries, imports from a URL). Its handler
/// resolves the host itself, refuses the whole request if <em>any</em> resolved address is in a refused range, and
/// connects to an address it checked, so a name that resolves to a public address at validation time and to
/// 127.0.0.1 at connect time (DNS rebinding) still fails. No proxy (a proxy would make the checked address the
/// proxy's), no redirects (a redirect would be a second, unchecked request), no cookies, a hard timeout.
/// </summary>
public sealed class OutboundHttp : IDisposable
{
    /// <summary>The longest host name DNS allows; longer ones make the resolver throw instead of failing to resolve.</summary>
    public const int MaxHostLength = 253;

    private readonly HttpClient _client;
    private readonly bool _allowPrivate;
    private readonly TimeSpan _timeout;

    public OutboundHttp(IOptions<OutboundHttpOptions> options)
    {
        var settings = options.Value;
        _allowPrivate = settings.AllowPrivateNetworks;
        _timeout = settings.Timeout;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = settings.Timeout,
            // Connections are re-made (and re-checked) at least this often, so a pooled connection never outlives a
            // DNS change by long.
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            MaxResponseHeadersLength = 64,
            ConnectCallback = ConnectAsync,
        };
        _client = new HttpClient(handler) { Timeout = settings.Timeout };
    }

    /// <summary>Sends the request; a refused target fails with <see cref="OutboundRefusedException"/> (inside an <see cref="HttpRequestException"/>).</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (CheckScheme(request.RequestUri) is { } refusal)
        {
            throw new OutboundRefusedException(refusal);
        }

        return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    /// <summary>
    /// Sends the request and reads at most <paramref name="maxBodyBytes"/> of the response body, both under one
    /// deadline: the configured timeout, or <paramref name="within"/> when that is sooner. (With
    /// <c>ResponseHeadersRead</c>, <c>HttpClient.Timeout</c> stops applying once the headers are in, dotnet/runtime#36822,
    /// so a receiver that trickles its body would otherwise hold the caller for hours.) The rest of the body is never
    /// read. Past the deadline: <see cref="OperationCanceledException"/>; a refused target: as <see cref="SendAsync(HttpRequestMessage, CancellationToken)"/>.
    /// </summary>
    public async Task<OutboundResponse> SendAsync(HttpRequestMessage request, int maxBodyBytes, TimeSpan? within, CancellationToken cancellationToken)
    {
        if (CheckScheme(request.RequestUri) is { } refusal)
        {
            throw new OutboundRefusedException(refusal);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(within is { } limit && limit < _timeout ? (limit > TimeSpan.Zero ? limit : TimeSpan.Zero) : _timeout);
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
        var buffer = new byte[maxBodyBytes];
        var filled = 0;
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(deadline.Token);
            int read;
            while (filled < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(filled), deadline.Token)) > 0)
            {
                filled += read;
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            // A body cut short keeps what arrived; one cut by the deadline is a timeout.
            deadline.Token.ThrowIfCancellationRequested();
        }

        return new OutboundResponse((int)response.StatusCode, response.Headers.RetryAfter, buffer.AsMemory(0, filled));
    }

    /// <summary>
    /// The reason a URL may not be used as a target, or null: checked when a tenant saves one, so the mistake shows at
    /// once (the connect-time check still guards every request, since DNS can change in between).
    /// </summary>
    public async Task<string?> CheckUrlAsync(string? text, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            return "must be an absolute http or https URL";
        }

        if (CheckScheme(uri) is { } refusal)
        {
            return refusal;
        }

        if (uri.UserInfo.Length > 0)
        {
            return "must not contain a user name or password (send credentials in a custom header)";
        }

        if (uri.Fragment.Length > 0)
        {
            return "must not contain a fragment (#...)";
        }

        string host;
        try
        {
            host = uri.IdnHost;
        }
        catch (UriFormatException)
        {
            return "its host name is not valid";
        }

        if (host.Length > MaxHostLength)
        {
            return $"its host name must be at most {MaxHostLength} characters";
        }

        IPAddress[] addresses;
        try
        {
            addresses = await ResolveAsync(host, cancellationToken);
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException)
        {
            return "its host name does not resolve";
        }

        // A name's addresses are not quoted, nor why they are refused: the answer would let a tenant map the names our
        // resolver knows (internal DNS). An address the tenant typed, or localhost, gets the reason.
        return addresses.Select(Refuse).FirstOrDefault(r => r is not null) is { } reason
            ? (uri.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 || uri.IsLoopback ? "resolves to " + reason : RefusedName)
            : null;
    }

    private const string RefusedName = "resolves to a refused address, which webhooks may not reach";

    private static string? CheckScheme(Uri? uri) =>
        uri is { IsAbsoluteUri: true } && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? null
            : "must use http or https";

    private string? Refuse(IPAddress address) =>
        AddressPolicy.Refusal(address, _allowPrivate) is { } reason ? $"{reason}, which webhooks may not reach" : null;

    private static async Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var addresses = await ResolveAsync(context.DnsEndPoint.Host, cancellationToken);
        if (addresses.Length == 0)
        {
            throw new OutboundRefusedException($"{context.DnsEndPoint.Host} resolves to no address");
        }

        // Every address, not only the one we would pick: otherwise a name with one public and one private address
        // would reach the private one whenever the public one fails.
        foreach (var address in addresses)
        {
            if (Refuse(address) is { } reason)
            {
                throw new OutboundRefusedException(IPAddress.TryParse(context.DnsEndPoint.Host.Trim('[', ']'), out _)
                    ? $"{context.DnsEndPoint.Host} is {reason}"
                    : $"{context.DnsEndPoint.Host} {RefusedName}");
            }
        }

        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last!;
    }

    public void Dispose() => _client.Dispose();
}

/// <summary>What came back: the status, a <c>Retry-After</c> if any, and the start of the body.</summary>
public sealed record OutboundResponse(int Status, RetryConditionHeaderValue? RetryAfter, ReadOnlyMemory<byte> BodyStart);

public static class OutboundHttpExtensions
{
    /// <summary>The guarded client and its options; safe to call from every capability that needs it.</summary>
    public static IServiceCollection AddOutboundHttp(this IServiceCollection services)
    {
        if (services.Any(s => s.ServiceType == typeof(OutboundHttp)))
        {
            return services;
        }

        services.AddValidatedOptions<OutboundHttpOptions>(OutboundHttpOptions.Section);
        services.TryAddSingleton<OutboundHttp>();
        return services;
    }
}
