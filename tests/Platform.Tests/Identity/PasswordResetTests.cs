using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class PasswordResetTests(Azurite azurite) : IAsyncLifetime
{
    private const string NewPassword = "a brand new passphrase";
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private PlatformApp _app = null!;
    private TestTenant _tenant = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _app = await new PlatformApp(azurite, services: s => s.AddSingleton<TimeProvider>(_clock)).ReadyAsync();
        _tenant = await _app.SignUpAsync();
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private async Task<HttpResponseMessage> Forgot(string tenant, string email)
    {
        using var client = _app.CreateClient();
        return await client.PostAsJsonAsync("/api/v1/auth/forgot-password", new { tenant, email }, Ct);
    }

    private async Task<HttpResponseMessage> Reset(string token, string newPassword = NewPassword)
    {
        using var client = _app.CreateClient();
        return await client.PostAsJsonAsync("/api/v1/auth/reset-password", new { token, newPassword }, Ct);
    }

    [Fact]
    public async Task ForgotPasswordAnswers202AlikeForUnknownAccountsAndMailsOnlyRealOnes()
    {
        var unknown = await Forgot(_tenant.Slug, "nobody@nowhere.example");
        var unknownTenant = await Forgot("no-such-tenant", _tenant.AdminEmail);
        var known = await Forgot(_tenant.Slug, _tenant.AdminEmail);

        Assert.All([unknown, unknownTenant, known], r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        Assert.Empty(_app.MailTo("nobody@nowhere.example"));
        Assert.Contains(_app.MailTo(_tenant.AdminEmail), m => m.TextBody?.Contains("/reset-password?token=", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task ResetLinkBuildsOnTheConfiguredBaseUrlNotTheHostHeader()
    {
        using var client = _app.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/forgot-password") { Content = JsonContent.Create(new { tenant = _tenant.Slug, email = _tenant.AdminEmail }) };
        request.Headers.Host = "evil.example";

        await client.SendAsync(request, Ct);

        var mail = _app.MailTo(_tenant.AdminEmail).Single(m => m.TextBody?.Contains("reset-password", StringComparison.Ordinal) == true);
        Assert.Contains("http://localhost:7071/reset-password?token=", mail.TextBody, StringComparison.Ordinal);
        Assert.DoesNotContain("evil.example", mail.TextBody + mail.HtmlBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResetSetsTheNewPasswordOnceAndEndsEverySession()
    {
        var before = await _app.LoginAsync(_tenant);
        await Forgot(_tenant.Slug, _tenant.AdminEmail);
        var token = _app.TokenFromMail(_tenant.AdminEmail, "reset-password");

        var reset = await Reset(token);
        var again = await Reset(token, "yet another passphrase");

        Assert.Equal(HttpStatusCode.NoContent, reset.StatusCode);
        await again.ReadProblemAsync(400, "invalid_token");
        using var oldClient = _app.CreateClient(before.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await oldClient.GetAsync("/api/v1/me", Ct)).StatusCode);
        using var client = _app.CreateClient();
        await (await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, _tenant.AdminPassword)).ReadProblemAsync(401, "invalid_credentials");
        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, NewPassword)).StatusCode);
        Assert.Contains(_app.MailTo(_tenant.AdminEmail), m => (m.Subject ?? "").Contains("password", StringComparison.OrdinalIgnoreCase) && m.TextBody?.Contains("reset-password?token", StringComparison.Ordinal) == false);
    }

    [Fact]
    public async Task ExpiredResetTokenIsRefused()
    {
        await Forgot(_tenant.Slug, _tenant.AdminEmail);
        var token = _app.TokenFromMail(_tenant.AdminEmail, "reset-password");

        _clock.Advance(TimeSpan.FromMinutes(31));

        await (await Reset(token)).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task VerificationTokenOrATamperedOneCannotResetAPassword()
    {
        var verificationToken = _app.TokenFromMail(_tenant.AdminEmail, "verify-email");
        await Forgot(_tenant.Slug, _tenant.AdminEmail);
        var token = _app.TokenFromMail(_tenant.AdminEmail, "reset-password");

        await (await Reset(verificationToken)).ReadProblemAsync(400, "invalid_token");
        await (await Reset(token[..^1] + (token[^1] == 'A' ? 'B' : 'A'))).ReadProblemAsync(400, "invalid_token");
        await (await Reset("garbage")).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task ResetTokenOfAnotherTenantsUserDoesNotWorkWhenMovedToThisTenant()
    {
        var other = await _app.SignUpAsync();
        await Forgot(other.Slug, other.AdminEmail);
        var theirs = _app.TokenFromMail(other.AdminEmail, "reset-password");

        var moved = _tenant.Id + theirs[theirs.IndexOf('.', StringComparison.Ordinal)..];

        await (await Reset(moved)).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task ResetRefusesAWeakNewPassword()
    {
        await Forgot(_tenant.Slug, _tenant.AdminEmail);
        var token = _app.TokenFromMail(_tenant.AdminEmail, "reset-password");

        var problem = await (await Reset(token, "123456789")).ReadProblemAsync(400, "validation_failed");

        Assert.True(problem.GetProperty("errors").TryGetProperty("newPassword", out _));
    }
}
