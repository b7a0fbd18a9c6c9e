using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Functions.Mail;
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

    private static async Task<string> Describe(HttpResponseMessage response) =>
        $"{(int)response.StatusCode} {response.Content.Headers.ContentType} {response.Content.Headers.ContentLength} " +
        $"{response.Headers.Location} [{await response.Content.ReadAsStringAsync(Ct)}]";

    [Fact]
    public async Task ForgotPasswordAnswers202AlikeForUnknownAccountsAndMailsOnlyRealOnes()
    {
        var unknown = await Forgot(Tenant.Slug, "nobody@nowhere.example");
        var unknownTenant = await Forgot("no-such-tenant", Tenant.AdminEmail);
        var known = await Forgot(Tenant.Slug, Tenant.AdminEmail);

        Assert.All([unknown, unknownTenant, known], r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        Assert.Equal(await Describe(known), await Describe(unknown));
        Assert.Equal(await Describe(known), await Describe(unknownTenant));
        await App.MailsLinkingToAsync(Tenant.AdminEmail, "reset-password");
        Assert.Empty(App.MailTo("nobody@nowhere.example"));
        Assert.Contains(App.MailTo(Tenant.AdminEmail), m => m.TextBody?.Contains("/reset-password?token=", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task ForgotPasswordAnswersBeforeAnyWorkForTheAccountIsDone()
    {
        // Were the lookup, token and mail done in the request, a known account's answer would come later than an
        // unknown one's. Here the reset mail cannot leave until the test lets it: the answer must not wait for it.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await new PlatformApp(Azurite, services: s =>
            s.AddSingleton<IMailSender>(sp => new HeldResetMail(sp.GetRequiredService<MailSender>(), release.Task))).ReadyAsync();
        var tenant = await app.SignUpAsync();
        using var client = app.CreateClient();
        try
        {
            var response = await client.PostAsJsonAsync("/api/v1/auth/forgot-password", new { tenant = tenant.Slug, email = tenant.AdminEmail }, Ct)
                .WaitAsync(TimeSpan.FromSeconds(30), Ct);

            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.DoesNotContain(app.MailTo(tenant.AdminEmail), m => m.TextBody?.Contains("reset-password", StringComparison.Ordinal) == true);
        }
        finally
        {
            release.SetResult();
        }

        await app.MailsLinkingToAsync(tenant.AdminEmail, "reset-password");
    }

    [Fact]
    public async Task AFourthResetRequestWithinTheHourSendsNoFourthMail()
    {
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await Forgot(Tenant.Slug, Tenant.AdminEmail)).StatusCode);
        }

        // All four are handled once three mails went out and one request was recorded as dropped.
        using var admin = await App.SignedInClientAsync(Tenant);
        await Eventually.Until(
            async () => (await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=auth.password_reset.throttled", Ct)).GetProperty("items").GetArrayLength(),
            count => count == 1, "the fourth request to be dropped");
        await App.MailsLinkingToAsync(Tenant.AdminEmail, "reset-password", 3);
        Assert.Equal(3, ResetMails(Tenant.AdminEmail));

        Clock.Advance(TimeSpan.FromHours(1));
        await Forgot(Tenant.Slug, Tenant.AdminEmail);

        await App.MailsLinkingToAsync(Tenant.AdminEmail, "reset-password", 4);
    }

    private int ResetMails(string address) => App.MailTo(address).Count(m => m.TextBody?.Contains("reset-password?token=", StringComparison.Ordinal) == true);

    /// <summary>Holds reset mails until released; every other mail goes out at once.</summary>
    private sealed class HeldResetMail(IMailSender inner, Task release) : IMailSender
    {
        public async Task SendAsync(OutgoingMail mail, CancellationToken cancellationToken)
        {
            if (mail.Kind == MailKind.PasswordReset)
            {
                await release.WaitAsync(cancellationToken);
            }

            await inner.SendAsync(mail, cancellationToken);
        }
    }

    [Fact]
    public async Task ResetLinkBuildsOnTheConfiguredBaseUrlNotTheHostHeader()
    {
        using var client = App.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/forgot-password") { Content = JsonContent.Create(new { tenant = Tenant.Slug, email = Tenant.AdminEmail }) };
        request.Headers.Host = "evil.example";

        await client.SendAsync(request, Ct);
        await App.MailsLinkingToAsync(Tenant.AdminEmail, "reset-password");

        var mail = App.MailTo(Tenant.AdminEmail).Single(m => m.TextBody?.Contains("reset-password", StringComparison.Ordinal) == true);
        Assert.Contains("http://localhost:7071/reset-password?token=", mail.TextBody, StringComparison.Ordinal);
        Assert.DoesNotContain("evil.example", mail.TextBody + mail.HtmlBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResetSetsTheNewPasswordOnceAndEndsEverySession()
    {
        var before = await App.LoginAsync(Tenant);
        await Forgot(Tenant.Slug, Tenant.AdminEmail);
        var token = await App.TokenFromMailAsync(Tenant.AdminEmail, "reset-password");

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
        var token = await App.TokenFromMailAsync(Tenant.AdminEmail, "reset-password");

        Clock.Advance(TimeSpan.FromMinutes(31));

        await (await Reset(token)).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task VerificationTokenOrATamperedOneCannotResetAPassword()
    {
        var verificationToken = App.TokenFromMail(Tenant.AdminEmail, "verify-email");
        await Forgot(Tenant.Slug, Tenant.AdminEmail);
        var token = await App.TokenFromMailAsync(Tenant.AdminEmail, "reset-password");

        await (await Reset(verificationToken)).ReadProblemAsync(400, "invalid_token");
        await (await Reset(token[..^1] + (token[^1] == 'A' ? 'B' : 'A'))).ReadProblemAsync(400, "invalid_token");
        await (await Reset("garbage")).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task ResetTokenOfAnotherTenantsUserDoesNotWorkWhenMovedToThisTenant()
    {
        var other = await App.SignUpAsync();
        await Forgot(other.Slug, other.AdminEmail);
        var theirs = await App.TokenFromMailAsync(other.AdminEmail, "reset-password");

        var moved = Tenant.Id + theirs[theirs.IndexOf('.', StringComparison.Ordinal)..];

        await (await Reset(moved)).ReadProblemAsync(400, "invalid_token");
    }

    [Fact]
    public async Task ResetRefusesAWeakNewPassword()
    {
        await Forgot(Tenant.Slug, Tenant.AdminEmail);
        var token = await App.TokenFromMailAsync(Tenant.AdminEmail, "reset-password");

        var problem = await (await Reset(token, "123456789")).ReadProblemAsync(400, "validation_failed");

        Assert.True(problem.GetProperty("errors").TryGetProperty("newPassword", out _));
    }
}
