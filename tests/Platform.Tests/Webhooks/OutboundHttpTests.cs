using System.Net;
using Microsoft.Extensions.Options;
using Platform.Functions.Webhooks;

namespace Platform.Tests.Webhooks;

/// <summary>
/// The SSRF guard every outgoing request to a tenant-chosen URL goes through. Each probe is aimed at (or resolves to)
/// a refused range; where the target is this machine, a listener proves no connection was made.
/// </summary>
public sealed class OutboundHttpTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static OutboundHttp Guard(bool allowPrivate) =>
        new(Options.Create(new OutboundHttpOptions { AllowPrivateNetworks = allowPrivate, Timeout = TimeSpan.FromSeconds(5) }));

    private static async Task<OutboundRefusedException> RefusedAsync(OutboundHttp http, string url)
    {
        var error = await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, url), Ct);
        });
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            if (e is OutboundRefusedException refused)
            {
                return refused;
            }
        }

        throw new Xunit.Sdk.XunitException($"Expected the guard to refuse {url}, but the request failed otherwise: {error}");
    }

    [Theory]
    [InlineData("http://127.0.0.1:{0}/hook")]
    [InlineData("http://localhost:{0}/hook")]
    [InlineData("http://[::ffff:127.0.0.1]:{0}/hook")]
    [InlineData("http://127.1.2.3:{0}/hook")]
    [InlineData("http://0.0.0.0:{0}/hook")]
    [InlineData("http://[2002:7f00:1::1]:{0}/hook")]
    [InlineData("http://[::ffff:0:7f00:1]:{0}/hook")]
    public async Task LoopbackIsRefusedWithoutAConnection(string template)
    {
        using var listener = new RecordingListener();
        using var http = Guard(allowPrivate: false);

        await RefusedAsync(http, string.Format(System.Globalization.CultureInfo.InvariantCulture, template, listener.Port));

        Assert.Equal(0, listener.Connections);
    }

    [Theory]
    [InlineData("http://10.0.0.1/")]
    [InlineData("http://172.16.5.4/")]
    [InlineData("http://192.168.1.1/")]
    [InlineData("http://[fd12:3456::1]/")]
    [InlineData("http://[::1]/")]
    [InlineData("http://[2002:0a00:0001::1]/")]
    [InlineData("http://[2002:c0a8:0101::]/")]
    [InlineData("http://[::ffff:0:a00:1]/")]
    [InlineData("http://[64:ff9b::c0a8:101]/")]
    public async Task PrivateRangesAreRefusedByDefault(string url)
    {
        using var http = Guard(allowPrivate: false);
        await RefusedAsync(http, url);
    }

    /// <summary>Even where private networks are allowed (tests, local), these are never reached.</summary>
    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    [InlineData("http://[fd00:ec2::254]/latest/meta-data/")]
    [InlineData("http://[::ffff:169.254.169.254]/")]
    [InlineData("http://[::ffff:a9fe:a9fe]/")]
    [InlineData("http://[64:ff9b::a9fe:a9fe]/")]
    [InlineData("http://169.254.1.1/")]
    [InlineData("http://[fe80::1]/")]
    [InlineData("http://100.64.0.1/")]
    [InlineData("http://224.0.0.1/")]
    [InlineData("http://[ff02::1]/")]
    [InlineData("http://255.255.255.255/")]
    [InlineData("http://0.0.0.0/")]
    [InlineData("http://[::]/")]
    [InlineData("http://[2002:a9fe:a9fe::1]/")]
    [InlineData("http://[::ffff:0:a9fe:a9fe]/")]
    [InlineData("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/")]
    [InlineData("http://[64:ff9b:1::a00:1]/")]
    [InlineData("http://168.63.129.16/")]
    [InlineData("http://[::ffff:a83f:8110]/")]
    [InlineData("http://[2002:a83f:8110::]/")]
    [InlineData("http://[100::1]/")]
    [InlineData("http://[4000::1]/")]
    public async Task LinkLocalMetadataCgnatMulticastAndUnspecifiedAreRefusedEvenWhenPrivateNetworksAreAllowed(string url)
    {
        using var http = Guard(allowPrivate: true);
        var refused = await RefusedAsync(http, url);
        Assert.Contains("may not reach", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ftp://example.com/")]
    [InlineData("file:///etc/passwd")]
    public async Task OnlyHttpAndHttpsAreSent(string url)
    {
        using var http = Guard(allowPrivate: true);
        await RefusedAsync(http, url);
    }

    [Fact]
    public async Task LoopbackIsReachedWhenPrivateNetworksAreAllowed()
    {
        using var listener = new RecordingListener();
        using var http = Guard(allowPrivate: true);

        using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"http://localhost:{listener.Port}/hook"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, listener.Connections);
    }

    [Fact]
    public async Task ARedirectIsNotFollowed()
    {
        using var target = new RecordingListener();
        using var redirecting = new RecordingListener(
            $"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{target.Port}/internal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        using var http = Guard(allowPrivate: true);

        using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{redirecting.Port}/hook"), Ct);

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal(1, redirecting.Connections);
        Assert.Equal(0, target.Connections);
    }

    [Theory]
    [InlineData("http://localhost/", "loopback")]
    [InlineData("http://127.0.0.1/", "loopback")]
    [InlineData("http://10.1.2.3/", "private")]
    [InlineData("http://169.254.169.254/", "metadata")]
    [InlineData("https://user:pass@example.com/", "user name")]
    [InlineData("ftp://example.com/", "http or https")]
    [InlineData("not a url", "absolute")]
    [InlineData("http://host.invalid/", "does not resolve")]
    public async Task UrlCheckGivesTheReason(string url, string reason)
    {
        using var http = Guard(allowPrivate: false);
        var refusal = await http.CheckUrlAsync(url, Ct);
        Assert.NotNull(refusal);
        Assert.Contains(reason, refusal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UrlCheckAcceptsLoopbackWhenPrivateNetworksAreAllowedButNeverMetadata()
    {
        using var http = Guard(allowPrivate: true);
        Assert.Null(await http.CheckUrlAsync("http://127.0.0.1:8080/hook", Ct));
        Assert.NotNull(await http.CheckUrlAsync("http://169.254.169.254/", Ct));
    }

    /// <summary>Public addresses, v4 and v6 (and v4 inside 6to4 or NAT64), stay reachable.</summary>
    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("2002:808:808::1")]
    [InlineData("64:ff9b::808:808")]
    [InlineData("2a00:1450:4001::200e")]
    public void PublicAddressesAreAllowed(string address)
    {
        Assert.Null(AddressPolicy.Refusal(IPAddress.Parse(address), allowPrivateNetworks: false));
    }

    /// <summary>
    /// A name's refused addresses are not quoted back at create time (nor why they are refused): otherwise a tenant could
    /// map the names the platform's resolver knows. This machine's own name resolves to loopback or a private address.
    /// </summary>
    [Fact]
    public async Task UrlCheckOfANameDoesNotSayWhatItResolvesTo()
    {
        var host = Dns.GetHostName();
        var addresses = await Dns.GetHostAddressesAsync(host, Ct);
        using var http = Guard(allowPrivate: false);

        var refusal = await http.CheckUrlAsync($"http://{host}/hook", Ct);

        Assert.Equal("resolves to a refused address, which webhooks may not reach", refusal);
        Assert.All(addresses, a => Assert.DoesNotContain(a.ToString(), refusal, StringComparison.Ordinal));
    }

    [Fact]
    public async Task UrlCheckRefusesAHostNameLongerThanDnsAllows()
    {
        using var http = Guard(allowPrivate: false);
        var refusal = await http.CheckUrlAsync($"http://{string.Join('.', Enumerable.Repeat(new string('a', 60), 5))}/hook", Ct);
        Assert.Contains("at most 253 characters", refusal, StringComparison.Ordinal);
    }
}
