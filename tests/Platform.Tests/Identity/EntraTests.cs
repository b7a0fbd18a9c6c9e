using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Auth;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Identity;

/// <summary>
/// Entra ID tokens through Microsoft.Identity.Web's real validation; only the signing key and issuer metadata,
/// which would come from login.microsoftonline.com, are handed in.
/// </summary>
public sealed class EntraTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private const string ClientId = "3f1c7a52-6a0e-4d7b-9b8e-2f7c3c1d9a10";
    private static readonly string EntraTenant = Guid.NewGuid().ToString();
    private readonly RsaSecurityKey _entraKey = new(RSA.Create(2048)) { KeyId = "entra-test-key" };
    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["AzureAd:Instance"] = "https://login.microsoftonline.com/",
        ["AzureAd:TenantId"] = "organizations",
        ["AzureAd:ClientId"] = ClientId,
    };

    /// <summary>The signing key and issuer metadata that login.microsoftonline.com would serve.</summary>
    // Each test trusts the same Entra tenant with its own signing key.
    protected override bool SharesApp => false;

    protected override void ConfigureServices(IServiceCollection services) =>
        services.PostConfigure<JwtBearerOptions>(Entra.Scheme, o =>
        {
            var metadata = new OpenIdConnectConfiguration { Issuer = "https://login.microsoftonline.com/{tenantid}/v2.0" };
            metadata.SigningKeys.Add(_entraKey);
            o.Configuration = metadata;
            o.TokenValidationParameters.IssuerSigningKeys = [_entraKey];
        });

    private string EntraToken(string objectId, string? email = null, bool emailVerified = false, string? entraTenant = null, SecurityKey? key = null)
    {
        var tid = entraTenant ?? EntraTenant;
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object> { ["tid"] = tid, ["oid"] = objectId, ["ver"] = "2.0", ["scp"] = "access_as_user" };
        if (email is not null)
        {
            claims["email"] = email;
            claims["xms_edov"] = emailVerified;
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = $"https://login.microsoftonline.com/{tid}/v2.0",
            Audience = ClientId,
            IssuedAt = now,
            NotBefore = now,
            Expires = now.AddMinutes(30),
            Claims = claims,
            SigningCredentials = new SigningCredentials(key ?? _entraKey, SecurityAlgorithms.RsaSha256),
        });
    }

    private async Task<HttpResponseMessage> MeWith(string token)
    {
        using var client = App.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await client.GetAsync("/api/v1/me", Ct);
    }

    private async Task TrustAsync(bool allowEmailLinking)
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var response = await admin.PutAsJsonAsync("/api/v1/tenant/entra",
            new { entraTenantId = EntraTenant, allowEmailLinking, entraToken = EntraToken(Guid.NewGuid().ToString()) }, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task TrustingAnEntraTenantNeedsATokenItIssued()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var foreignKey = new RsaSecurityKey(RSA.Create(2048)) { KeyId = _entraKey.KeyId };

        Assert.Equal(["entraToken"], await (await admin.PutAsJsonAsync("/api/v1/tenant/entra", new { entraTenantId = EntraTenant, allowEmailLinking = true }, Ct))
            .ValidationErrorsAsync());
        await (await admin.PutAsJsonAsync("/api/v1/tenant/entra",
            new { entraTenantId = EntraTenant, allowEmailLinking = true, entraToken = EntraToken(Guid.NewGuid().ToString(), entraTenant: Guid.NewGuid().ToString()) }, Ct))
            .ReadProblemAsync(403, "entra_tenant_mismatch");
        await (await admin.PutAsJsonAsync("/api/v1/tenant/entra",
            new { entraTenantId = EntraTenant, allowEmailLinking = true, entraToken = EntraToken(Guid.NewGuid().ToString(), key: foreignKey) }, Ct))
            .ReadProblemAsync(403, "entra_token_invalid");
        await (await admin.PutAsJsonAsync("/api/v1/tenant/entra", new { entraTenantId = EntraTenant, allowEmailLinking = true, entraToken = "not.a.token" }, Ct))
            .ReadProblemAsync(403, "entra_token_invalid");

        // Nothing was claimed: the tenant trusts nobody, and another tenant that can prove control still may.
        await (await admin.GetAsync("/api/v1/tenant/entra", Ct)).ReadProblemAsync(404, "not_found");
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        Assert.Equal(HttpStatusCode.OK, (await otherAdmin.PutAsJsonAsync("/api/v1/tenant/entra",
            new { entraTenantId = EntraTenant, allowEmailLinking = false, entraToken = EntraToken(Guid.NewGuid().ToString()) }, Ct)).StatusCode);
    }

    [Fact]
    public async Task ATenantManagerCannotLinkTheirEntraIdentityToAnAdmin()
    {
        await TrustAsync(allowEmailLinking: false);
        using var admin = await App.SignedInClientAsync(Tenant);
        Assert.Equal(HttpStatusCode.Created, (await admin.PutRoleAsync("settings", "tenant.manage", "users.read")).StatusCode);
        var settingsId = await admin.CreateUserIdAsync("settings@example.com", Accounts.Password, ["settings"]);
        using var settings = await App.SignInAsAsync(Tenant, "settings@example.com");
        var theirObjectId = Guid.NewGuid().ToString();

        await (await settings.PutAsJsonAsync($"/api/v1/users/{Tenant.AdminId}/entra", new { objectId = theirObjectId }, Ct))
            .ReadProblemAsync(403, "permission_not_held");
        Assert.Equal(HttpStatusCode.Unauthorized, (await MeWith(EntraToken(theirObjectId))).StatusCode);

        // Their own account they may link.
        Assert.Equal(HttpStatusCode.NoContent, (await settings.PutAsJsonAsync($"/api/v1/users/{settingsId}/entra", new { objectId = theirObjectId }, Ct)).StatusCode);
        var me = await MeWith(EntraToken(theirObjectId));
        Assert.Equal(settingsId, (await me.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString());
    }

    [Fact]
    public async Task LinksOfAnEndedTrustDoNotComeBackWithANewTrust()
    {
        await TrustAsync(allowEmailLinking: false);
        var objectId = Guid.NewGuid().ToString();
        using var admin = await App.SignedInClientAsync(Tenant);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PutAsJsonAsync($"/api/v1/users/{Tenant.AdminId}/entra", new { objectId }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await MeWith(EntraToken(objectId))).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/tenant/entra", Ct)).StatusCode);
        await TrustAsync(allowEmailLinking: false);

        Assert.Equal(HttpStatusCode.Unauthorized, (await MeWith(EntraToken(objectId))).StatusCode);
        var table = App.Storage.Table(EntraDirectory.TableName);
        Assert.Empty(table.Query<Azure.Data.Tables.TableEntity>(e => e.PartitionKey == "entra" && e.RowKey == $"link:{EntraTenant}:{objectId}", cancellationToken: Ct));
    }

    [Fact]
    public async Task DeletingAUserDeletesTheirLink()
    {
        await TrustAsync(allowEmailLinking: false);
        using var admin = await App.SignedInClientAsync(Tenant);
        var userId = await admin.CreateUserIdAsync("linked@example.com");
        var objectId = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PutAsJsonAsync($"/api/v1/users/{userId}/entra", new { objectId }, Ct)).StatusCode);
        var table = App.Storage.Table(EntraDirectory.TableName);
        Assert.Single(table.Query<Azure.Data.Tables.TableEntity>(e => e.PartitionKey == "entra" && e.RowKey == $"link:{EntraTenant}:{objectId}", cancellationToken: Ct));

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/users/{userId}", Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await MeWith(EntraToken(objectId))).StatusCode);
        Assert.Empty(table.Query<Azure.Data.Tables.TableEntity>(e => e.PartitionKey == "entra" && e.RowKey == $"link:{EntraTenant}:{objectId}", cancellationToken: Ct));
    }

    [Fact]
    public async Task AUserLinkedByObjectIdSignsInWithAnEntraToken()
    {
        await TrustAsync(allowEmailLinking: false);
        var objectId = Guid.NewGuid().ToString();
        using var admin = await App.SignedInClientAsync(Tenant);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PutAsJsonAsync($"/api/v1/users/{Tenant.AdminId}/entra", new { objectId }, Ct)).StatusCode);

        var response = await MeWith(EntraToken(objectId));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Tenant.AdminId, (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString());
    }

    [Fact]
    public async Task FirstUseLinksByVerifiedEmailWhenTheTenantAllowsIt()
    {
        await TrustAsync(allowEmailLinking: true);
        await VerifyAdminEmailAsync();
        var objectId = Guid.NewGuid().ToString();

        var first = await MeWith(EntraToken(objectId, Tenant.AdminEmail, emailVerified: true));
        var later = await MeWith(EntraToken(objectId));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, later.StatusCode);
    }

    private async Task VerifyAdminEmailAsync()
    {
        using var client = App.CreateClient();
        var verified = await client.PostAsJsonAsync("/api/v1/auth/verify-email", new { token = App.TokenFromMail(Tenant.AdminEmail, "verify-email") }, Ct);
        Assert.Equal(HttpStatusCode.NoContent, verified.StatusCode);
    }

    [Fact]
    public async Task APlatformUserWhoNeverVerifiedTheirEmailIsNotLinkedByIt()
    {
        await TrustAsync(allowEmailLinking: true);

        var response = await MeWith(EntraToken(Guid.NewGuid().ToString(), Tenant.AdminEmail, emailVerified: true));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task EndingTheTrustStopsLinkedUsersAtOnce()
    {
        await TrustAsync(allowEmailLinking: true);
        await VerifyAdminEmailAsync();
        var objectId = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.OK, (await MeWith(EntraToken(objectId, Tenant.AdminEmail, emailVerified: true))).StatusCode);
        using var admin = await App.SignedInClientAsync(Tenant);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/tenant/entra", Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await MeWith(EntraToken(objectId))).StatusCode);
    }

    [Fact]
    public async Task UnverifiedEmailOrATenantThatDoesNotAllowItLinksNothing()
    {
        await TrustAsync(allowEmailLinking: true);
        await VerifyAdminEmailAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, (await MeWith(EntraToken(Guid.NewGuid().ToString(), Tenant.AdminEmail, emailVerified: false))).StatusCode);

        await TrustAsync(allowEmailLinking: false);
        Assert.Equal(HttpStatusCode.Unauthorized, (await MeWith(EntraToken(Guid.NewGuid().ToString(), Tenant.AdminEmail, emailVerified: true))).StatusCode);
    }

    [Fact]
    public async Task TokensOfAnUntrustedEntraTenantOrAForeignKeyAreRefused()
    {
        await TrustAsync(allowEmailLinking: true);
        var foreignKey = new RsaSecurityKey(RSA.Create(2048)) { KeyId = _entraKey.KeyId };

        Assert.Equal(HttpStatusCode.Unauthorized, (await MeWith(EntraToken(Guid.NewGuid().ToString(), Tenant.AdminEmail, true, entraTenant: Guid.NewGuid().ToString()))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await MeWith(EntraToken(Guid.NewGuid().ToString(), Tenant.AdminEmail, true, key: foreignKey))).StatusCode);
    }

    [Theory]
    [InlineData("a.b.c")]
    [InlineData("e30.e30.")]
    [InlineData("a.b.c.d.e")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.c2ln")]
    public async Task ABearerTokenShapedLikeAJwtThatDoesNotDecodeIsUnauthorized(string token)
    {
        // Picking the scheme reads the token's issuer before any validation; that read must not be what fails.
        var response = await MeWith(token);

        await response.ReadProblemAsync(401, "unauthorized");
    }

    [Fact]
    public async Task PlatformTokensStillWorkBesideEntra()
    {
        using var client = await App.SignedInClientAsync(Tenant);

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", Ct)).StatusCode);
    }

    [Fact]
    public async Task CannotLinkAUserOfAnotherTenant()
    {
        await TrustAsync(allowEmailLinking: false);
        var other = await App.SignUpAsync();
        using var admin = await App.SignedInClientAsync(Tenant);

        var response = await admin.PutAsJsonAsync($"/api/v1/users/{other.AdminId}/entra", new { objectId = Guid.NewGuid().ToString() }, Ct);

        await response.ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task WithoutAnAzureAdSectionEntraTokensAreRefused()
    {
        await using var plain = await new PlatformApp(Azurite).ReadyAsync();
        using var client = plain.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", EntraToken(Guid.NewGuid().ToString()));

        var response = await client.GetAsync("/api/v1/me", Ct);

        await response.ReadProblemAsync(401, "unauthorized");
    }
}
