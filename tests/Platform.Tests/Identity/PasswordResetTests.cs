using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class PasswordResetTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string NewPassword = "a brand new passphrase";

    private async Task<HttpResponseMessage> Forgot(string tenant, string email)
    {
        using var client = App.CreateClient();
        return await client.PostAsJsonAsync("/api/v1/auth/forgot-password", new { tenant, email }, Ct);
    }

    private async Task<HttpResponseMessage> Reset(string token, string newPassword = NewPassword)
    {
        using var client = App.CreateClient();
        return await client.PostAsJsonAsync("/api/v1/auth/reset-password", new { token, newPassword }, Ct);
    }

    [Fact]
    public async Task ForgotPasswordAnswers202AlikeForUnknownAccountsAndMailsOnlyRealOnes()
    {
        var unknown = await Forgot(Tenant.Slug, "nobody@nowhere.example");
        var unknownTenant = await Forgot("no-such-tenant", Tenant.AdminEmail);
        var known = await Forgot(Tenant.Slug, Tenant.AdminEmail);

        Assert.All([unknown, unknownTenant, known], r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        Assert.Empty(App.MailTo("nobody@nowhere.example"));
        Assert.Contains(App.MailTo(Tenant.AdminEmail), m => m.TextBody?.Contains("/reset-password?token=", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task ResetLinkBuildsOnTheConfiguredBaseUrlNotTheHostHeader()
    {
        using var client = App.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/forgot-password") { Content = JsonContent.Create(new { tenant = Tenant.Slug, email = Tenant.AdminEmail }) };
        request.Headers.Host = "evil.example";

        await client.SendAsync(request, Ct);

        var mail = App.MailTo(Tenant.AdminEmail).Single(m => m.TextBody?.Contains("reset-password", StringComparison.Ordinal) == true);
        Assert.Contains("http://localhost:7071/reset-password?token=", mail.TextBody, StringComparison.Ordinal);
        Assert.DoesNotContain("evil.example", mail.TextBody + mail.HtmlBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResetSetsTheNewPasswordOnceAndEndsEverySession()
    {
        var before = await App.LoginAsync(Tenant);
        await Forgot(Tenant.Slug, Tenant.AdminEmail);
        var token = App.TokenFromMail(Tenant.AdminEmail, "reset-password");

        var reset = await Reset(token);
        var again = await Reset(token, "yet another passphrase");

        Assert.Equal(HttpStatusCode.NoContent, reset.StatusCode);
        await again.ReadProblemAsync(400, "invalid_token");
        using var oldClient = App.CreateClient(before.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await oldClient.GetAsync("/api/v1/me", Ct)).StatusCode);
        using var client = App.CreateClient();
        await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).ReadProblemAsync(401, "invalid_credentials");
        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, NewPassword)).StatusCode);
        Assert.Contains(App.MailTo(Tenant.AdminEmail), m => (m.Subject ?? "").Contains("password", StringComparison.OrdinalIgnoreCase) && m.TextBody?.Contains("reset-password?token", StringComparison.Ordinal) == false);
    }

    [Fact]
    public async Task ExpiredResetTokenIsRefused()
    {
        await Forgot(Tenant.Slug, Tenant.AdminEmail);
        var token = App.TokenFromMail(Tenant.AdminEmail, "reset-password");

        Clock.Advance(TimeSpan.FromMinutes(31));

        await (await Reset(token)).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task VerificationTokenOrATamperedOneCannotResetAPassword()
    {
        var verificationToken = App.TokenFromMail(Tenant.AdminEmail, "verify-email");
        await Forgot(Tenant.Slug, Tenant.AdminEmail);
        var token = App.TokenFromMail(Tenant.AdminEmail, "reset-password");

        await (await Reset(verificationToken)).ReadProblemAsync(400, "invalid_token");
        await (await Reset(token[..^1] + (token[^1] == 'A' ? 'B' : 'A'))).ReadProblemAsync(400, "invalid_token");
        await (await Reset("garbage")).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task ResetTokenOfAnotherTenantsUserDoesNotWorkWhenMovedToThisTenant()
    {
        var other = await App.SignUpAsync();
        await Forgot(other.Slug, other.AdminEmail);
        var theirs = App.TokenFromMail(other.AdminEmail, "reset-password");

        var moved = Tenant.Id + theirs[theirs.IndexOf('.', StringComparison.Ordinal)..];

        await (await Reset(moved)).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task ResetRefusesAWeakNewPassword()
    {
        await Forgot(Tenant.Slug, Tenant.AdminEmail);
        var token = App.TokenFromMail(Tenant.AdminEmail, "reset-password");

        var problem = await (await Reset(token, "123456789")).ReadProblemAsync(400, "validation_failed");

        Assert.True(problem.GetProperty("errors").TryGetProperty("newPassword", out _));
    }
}
