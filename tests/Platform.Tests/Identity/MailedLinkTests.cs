using System.Net;
using System.Net.Http.Json;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Identity;

/// <summary>
/// Verification and reset links are bound to the address they were mailed to. Otherwise a link sent to an old
/// address verifies whatever address the account has when it is used (and a verified address is what Entra ID
/// linking trusts), or resets the password of an account that has moved to another mailbox.
/// </summary>
public sealed class MailedLinkTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string NewAddress = "moved@elsewhere.example";

    private async Task<HttpResponseMessage> Post(string route, object body)
    {
        using var client = App.CreateClient();
        return await client.PostAsJsonAsync(route, body, Ct);
    }

    private static async Task ChangeEmailAsync(HttpClient admin, string userId, string email) =>
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchUserAsync(userId, new { email })).StatusCode);

    [Fact]
    public async Task AVerificationLinkMailedBeforeAnEmailChangeDoesNotVerifyTheNewAddress()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var token = App.TokenFromMail(Tenant.AdminEmail, "verify-email");
        await ChangeEmailAsync(admin, Tenant.AdminId, NewAddress);

        var response = await Post("/api/v1/auth/verify-email", new { token });

        await response.ReadProblemAsync(400, "invalid_token");
        var user = await admin.GetUserAsync(Tenant.AdminId);
        Assert.Equal(NewAddress, user.Str("email"));
        Assert.False(user.GetProperty("emailVerified").GetBoolean());
    }

    [Fact]
    public async Task AResetLinkMailedBeforeAnEmailChangeIsRefused()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        await Post("/api/v1/auth/forgot-password", new { tenant = Tenant.Slug, email = Tenant.AdminEmail });
        var token = await App.TokenFromMailAsync(Tenant.AdminEmail, "reset-password");
        await ChangeEmailAsync(admin, Tenant.AdminId, NewAddress);

        var response = await Post("/api/v1/auth/reset-password", new { token, newPassword = "a brand new passphrase" });

        await response.ReadProblemAsync(400, "invalid_token");
        using var client = App.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, NewAddress, Tenant.AdminPassword)).StatusCode);
    }

    [Fact]
    public async Task ChangingTheEmailAwayAndBackDoesNotReviveALink()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var token = App.TokenFromMail(Tenant.AdminEmail, "verify-email");
        await ChangeEmailAsync(admin, Tenant.AdminId, NewAddress);
        await ChangeEmailAsync(admin, Tenant.AdminId, Tenant.AdminEmail);

        var response = await Post("/api/v1/auth/verify-email", new { token });

        await response.ReadProblemAsync(400, "invalid_token");
        Assert.False((await admin.GetUserAsync(Tenant.AdminId)).GetProperty("emailVerified").GetBoolean());
    }
}
