using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;

namespace Platform.Benchmarks;

/// <summary>The admin of a freshly signed-up tenant, as the figures drive the app: over HTTP, like any client.</summary>
internal sealed class BenchAdmin(string slug, string email, string password, string tenantId)
{
    /// <summary>Access tokens live 15 minutes; a figure signs in again well before that, outside any timed call.</summary>
    private static readonly TimeSpan TokenReuse = TimeSpan.FromMinutes(10);

    private string? _token;
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
    public async Task<string> TokenAsync(HttpClient client, ServerProcess server)
    {
        if (_token is not null && DateTime.UtcNow - _tokenAt < TokenReuse)
        {
            return _token;
        }

        using var response = await client.PostAsJsonAsync(new Uri(server.BaseAddress, "/api/v1/auth/login"),
            new { tenant = Slug, email = Email, password = Password });
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"login answered {(int)response.StatusCode}: {body}");
        }

        using var json = JsonDocument.Parse(body);
        _token = json.RootElement.GetProperty("accessToken").GetString()
            ?? throw new InvalidOperationException($"login answered without an access token: {body}");
        _tokenAt = DateTime.UtcNow;
        return _token;
    }
}
