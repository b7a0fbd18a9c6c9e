using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using MimeKit;

namespace Platform.Tests.Infrastructure;

/// <summary>A tenant made through the public sign-up route, with its admin's credentials.</summary>
public sealed record TestTenant(string Id, string Slug, string AdminId, string AdminEmail, string AdminPassword);

public sealed record Tokens(string AccessToken, string RefreshToken, string SessionId, int ExpiresIn);

/// <summary>Signs up tenants, signs in and mints authenticated clients - through the HTTP API, as a user would.</summary>
public static class Accounts
{
    public const string Password = "correct horse battery staple";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static async Task<TestTenant> SignUpAsync(this PlatformApp app, string? slug = null, string? password = null)
    {
        slug ??= "t-" + Guid.NewGuid().ToString("N")[..12];
        var email = $"admin@{slug}.example";
        using var client = app.CreateClient();
        var response = await client.PostAsJsonAsync("/api/v1/tenants", new
        {
            name = "Tenant " + slug,
            slug,
            admin = new { email, password = password ?? Password, displayName = "Admin of " + slug },
        }, Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return new TestTenant(body.GetProperty("tenant").GetProperty("id").GetString()!, slug,
            body.GetProperty("user").GetProperty("id").GetString()!, email, password ?? Password);
    }

    public static Task<HttpResponseMessage> PostLoginAsync(this HttpClient client, string tenant, string email, string password, string? otp = null) =>
        client.PostAsJsonAsync("/api/v1/auth/login", new { tenant, email, password, otp }, Ct);

    public static async Task<Tokens> LoginAsync(this PlatformApp app, TestTenant tenant, string? otp = null, string? password = null)
    {
        using var client = app.CreateClient();
        var response = await client.PostLoginAsync(tenant.Slug, tenant.AdminEmail, password ?? tenant.AdminPassword, otp);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await ReadTokensAsync(response);
    }

    public static async Task<Tokens> ReadTokensAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("Bearer", body.GetProperty("tokenType").GetString());
        return new Tokens(body.GetProperty("accessToken").GetString()!, body.GetProperty("refreshToken").GetString()!,
            body.GetProperty("sessionId").GetString()!, body.GetProperty("expiresIn").GetInt32());
    }

    /// <summary>A client that sends this access token, like a signed-in caller.</summary>
    public static HttpClient CreateClient(this PlatformApp app, string accessToken)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        return client;
    }

    public static async Task<HttpClient> SignedInClientAsync(this PlatformApp app, TestTenant tenant) =>
        app.CreateClient((await app.LoginAsync(tenant)).AccessToken);

    /// <summary>The mails sent to an address so far, oldest first.</summary>
    public static IReadOnlyList<MimeMessage> MailTo(this PlatformApp app, string address) =>
        [.. Directory.GetFiles(app.MailDirectory, "*.eml")
            .Order(StringComparer.Ordinal)
            .Select(f => MimeMessage.Load(f))
            .Where(m => m.To.Mailboxes.Any(b => string.Equals(b.Address, address, StringComparison.OrdinalIgnoreCase)))];

    /// <summary>
    /// Mails to an address that link to <paramref name="page"/>, once at least <paramref name="count"/> have arrived:
    /// the way to wait for mail sent off the request path (by a queue function).
    /// </summary>
    public static Task<IReadOnlyList<MimeMessage>> MailsLinkingToAsync(this PlatformApp app, string address, string page, int count = 1) =>
        Eventually.Until(
            () => Task.FromResult<IReadOnlyList<MimeMessage>>(
                [.. app.MailTo(address).Where(m => m.TextBody?.Contains(page + "?token=", StringComparison.Ordinal) == true)]),
            mails => mails.Count >= count, $"{count} mail(s) to {address} linking to {page}");

    /// <summary>The token of a mailed link to <paramref name="page"/>, waiting for the mail to arrive.</summary>
    public static async Task<string> TokenFromMailAsync(this PlatformApp app, string address, string page)
    {
        await app.MailsLinkingToAsync(address, page);
        return app.TokenFromMail(address, page);
    }

    /// <summary>The token in the newest mailed link to <paramref name="page"/> for an address.</summary>
    public static string TokenFromMail(this PlatformApp app, string address, string page)
    {
        var text = app.MailTo(address).Last(m => m.TextBody?.Contains(page, StringComparison.Ordinal) == true).TextBody!;
        var start = text.IndexOf(page + "?token=", StringComparison.Ordinal) + page.Length + "?token=".Length;
        var end = start;
        while (end < text.Length && !char.IsWhiteSpace(text[end]))
        {
            end++;
        }

        return Uri.UnescapeDataString(text[start..end]);
    }
}
