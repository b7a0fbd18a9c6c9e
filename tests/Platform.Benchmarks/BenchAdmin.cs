using System.Text;
using System.Net.Http.Headers;
using System.Globalization;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;

namespace Platform.Benchmarks;

/// <summary>The admin of a freshly signed-up tenant, as the figures drive the app: over HTTP, like any client.</summary>
internal sealed class BenchAdmin(string slug, string email, string password, string tenantId)
{
    /// <summary>Access tokens live 15 minutes; a figure signs in again well before that, outside any timed call.</summary>
    private static readonly TimeSpan TokenReuse = TimeSpan.FromMinutes(10);

    private readonly Lock _gate = new();
    private Task<string>? _signIn;
    private DateTime _tokenAt;

    public string Slug { get; } = slug;

    public string TenantId { get; } = tenantId;

    public string Email { get; } = email;

    public string Password { get; } = password;

    public static async Task<BenchAdmin> SignUpAsync(HttpClient client, ServerProcess server)
    {
        var slug = "bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var email = $"admin@{slug}.example.com";
        var password = "bench " + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        using var response = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/tenants"), new
        {
            name = "Benchmark",
            slug,
            admin = new { email, password, displayName = "Benchmark Admin" },
        });
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"sign-up answered {(int)response.StatusCode}: {body}");
        }

        using var json = JsonDocument.Parse(body);
        return new BenchAdmin(slug, email, password, json.RootElement.GetProperty("tenant").GetProperty("id").GetString()!);
    }

    /// <summary>A valid access token; signs in (outside any timed call) when the last one is 10 minutes old.</summary>
    public Task<string> TokenAsync(HttpClient client, ServerProcess server)
    {
        // One sign-in shared by all callers: parallel sign-ins of one account count as attempts and trip its lockout.
        lock (_gate)
        {
            if (_signIn is null || _signIn.IsFaulted || DateTime.UtcNow - _tokenAt >= TokenReuse)
            {
                _tokenAt = DateTime.UtcNow;
                _signIn = SignInAsync(client, server);
            }

            return _signIn;
        }
    }

    private async Task<string> SignInAsync(HttpClient client, ServerProcess server)
    {
        using var response = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/auth/login"),
            new { tenant = Slug, email = Email, password = Password });
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"login answered {(int)response.StatusCode}: {body}");
        }

        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("accessToken").GetString()
            ?? throw new InvalidOperationException($"login answered without an access token: {body}");
    }

    /// <summary>
    /// One signed-in GET, timed from send to the last byte of the body; a non-success answer stops the figure with its
    /// body (cut to 2,000 characters).
    /// </summary>
    public async Task<(double Milliseconds, byte[] Body)> TimedGetAsync(HttpClient client, ServerProcess server, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress, path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(client, server));
        var started = Stopwatch.GetTimestamp();
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
        {
            var text = Encoding.UTF8.GetString(body);
            throw new InvalidOperationException($"GET {path} answered {(int)response.StatusCode}: {(text.Length <= 2000 ? text : text[..2000] + " ...")}");
        }

        return (elapsed, body);
    }

    /// <summary>A figure's optional positional count: absent gives the fallback; present, a whole number from 1 to max.</summary>
    public static bool TryCount(string[] args, int index, int fallback, out int value, int max = int.MaxValue)
    {
        value = fallback;
        return args.Length <= index || (int.TryParse(args[index], NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= 1 && value <= max);
    }
}
