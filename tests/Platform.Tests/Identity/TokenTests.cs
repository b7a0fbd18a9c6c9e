using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Azure.Data.Tables;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Auth;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class TokenTests(Azurite azurite) : SignedUpTenantTests(azurite)
{

    private async Task<HttpStatusCode> MeWith(string token)
    {
        using var client = App.CreateClient(token);
        return (await client.GetAsync("/api/v1/me", Ct)).StatusCode;
    }

    [Fact]
    public async Task AccessTokenCarriesTheContractClaimsAndIsSignedWithThePublishedKey()
    {
        var tokens = await App.LoginAsync(Tenant);
        using var client = App.CreateClient();

        var jwks = await client.GetFromJsonAsync<JsonElement>("/api/v1/.well-known/jwks.json", Ct);

        var jwt = new JsonWebToken(tokens.AccessToken);
        Assert.Equal("ES256", jwt.Alg);
        Assert.Equal("at+jwt", jwt.Typ);
        Assert.Equal(Tenant.AdminId, jwt.Subject);
        Assert.Equal(Tenant.Id, jwt.GetClaim("tid").Value);
        Assert.Equal(tokens.SessionId, jwt.GetClaim("sid").Value);
        Assert.Equal("platform-api", Assert.Single(jwt.Audiences));
        Assert.Equal(TimeSpan.FromMinutes(15), jwt.ValidTo - jwt.IssuedAt);
        var key = Assert.Single(jwks.GetProperty("keys").EnumerateArray());
        Assert.Equal(jwt.Kid, key.GetProperty("kid").GetString());
        Assert.Equal("EC", key.GetProperty("kty").GetString());
        Assert.False(key.TryGetProperty("d", out _));
    }

    [Fact]
    public async Task TokenIsRefusedOneSecondPastExpiryAndClockSkew()
    {
        var tokens = await App.LoginAsync(Tenant);

        Clock.Advance(TimeSpan.FromMinutes(15) + TimeSpan.FromSeconds(29));
        Assert.Equal(HttpStatusCode.OK, await MeWith(tokens.AccessToken));

        Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(tokens.AccessToken));
    }

    [Fact]
    public async Task TamperedTokensAreRefused()
    {
        var token = (await App.LoginAsync(Tenant)).AccessToken;
        var parts = token.Split('.');
        var payload = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(Base64UrlEncoder.Decode(parts[1]))!;
        payload["sub"] = JsonSerializer.SerializeToElement("someone-else");
        var forgedPayload = Base64UrlEncoder.Encode(JsonSerializer.Serialize(payload));
        var flippedSignature = parts[2][..^2] + (parts[2][^2] == 'A' ? "B" : "A") + parts[2][^1];

        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith($"{parts[0]}.{forgedPayload}.{parts[2]}"));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith($"{parts[0]}.{parts[1]}.{flippedSignature}"));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith("not-a-token"));
    }

    [Fact]
    public async Task UnsignedAlgNoneTokenIsRefused()
    {
        var token = (await App.LoginAsync(Tenant)).AccessToken;
        var parts = token.Split('.');
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"at+jwt"}""");

        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith($"{header}.{parts[1]}."));
    }

    [Fact]
    public async Task TokenSignedByAForeignKeyIsRefused()
    {
        var genuine = new JsonWebToken((await App.LoginAsync(Tenant)).AccessToken);
        using var foreign = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        var forged = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = genuine.Issuer,
            Audience = genuine.Audiences.Single(),
            TokenType = "at+jwt",
            IssuedAt = Clock.GetUtcNow().UtcDateTime,
            NotBefore = Clock.GetUtcNow().UtcDateTime,
            Expires = Clock.GetUtcNow().UtcDateTime.AddMinutes(5),
            Claims = new Dictionary<string, object> { ["sub"] = genuine.Subject, ["tid"] = Tenant.Id, ["sid"] = genuine.GetClaim("sid").Value },
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(foreign) { KeyId = genuine.Kid }, SecurityAlgorithms.EcdsaSha256),
        });

        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(forged));
    }

    [Fact]
    public async Task RefreshTokenCannotBeUsedAsAnAccessToken()
    {
        var tokens = await App.LoginAsync(Tenant);

        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(tokens.RefreshToken));
    }

    [Fact]
    public async Task UnauthenticatedCallIsAnUnauthorizedProblem()
    {
        using var client = App.CreateClient();

        var response = await client.GetAsync("/api/v1/me", Ct);

        await response.ReadProblemAsync(401, "unauthorized");
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenOfOneTenantCannotReachAnotherTenantsUsers()
    {
        var other = await App.SignUpAsync();
        using var otherClient = await App.SignedInClientAsync(other);
        using var png = new ByteArrayContent(Images.Png);
        png.Headers.ContentType = new("image/png");
        Assert.Equal(HttpStatusCode.NoContent, (await otherClient.PutAsync("/api/v1/me/avatar", png, Ct)).StatusCode);
        using var client = await App.SignedInClientAsync(Tenant);

        var response = await client.GetAsync($"/api/v1/users/{other.AdminId}/avatar", Ct);

        await response.ReadProblemAsync(404, "not_found");
    }

    private static async Task<HttpResponseMessage> RefreshWith(HttpClient client, string refreshToken) =>
        await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken }, Ct);

    [Fact]
    public async Task ConcurrentRefreshesWithOneTokenYieldAtMostOnePairAndCountAsReuse()
    {
        var tokens = await App.LoginAsync(Tenant);
        using var client = App.CreateClient();

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => RefreshWith(client, tokens.RefreshToken)));

        // One token, spent by whichever refresh came first; every other presentation of it is reuse, which ends the
        // session - the pair the winner got included. Clients refresh one at a time (README: Identity).
        var winner = Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        var codes = new List<string?>();
        foreach (var loser in responses.Where(r => r != winner))
        {
            codes.Add((await loser.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("code").GetString());
            Assert.Equal(HttpStatusCode.Unauthorized, loser.StatusCode);
        }

        Assert.Contains("refresh_token_reused", codes);
        Assert.All(codes, code => Assert.True(code is "refresh_token_reused" or "invalid_refresh_token", code));
        var pair = await Accounts.ReadTokensAsync(winner);
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(pair.AccessToken));
        await (await RefreshWith(client, pair.RefreshToken)).ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task RefreshRotatesAndASpentTokenRevokesTheWholeSession()
    {
        var first = await App.LoginAsync(Tenant);
        using var client = App.CreateClient();

        var refreshed = await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = first.RefreshToken }, Ct);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var second = await Accounts.ReadTokensAsync(refreshed);
        Assert.NotEqual(first.RefreshToken, second.RefreshToken);
        Assert.Equal(first.SessionId, second.SessionId);
        Assert.Equal(HttpStatusCode.OK, await MeWith(second.AccessToken));

        Clock.Advance(TimeSpan.FromSeconds(31));
        var replayed = await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = first.RefreshToken }, Ct);

        await replayed.ReadProblemAsync(401, "refresh_token_reused");
        await (await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = second.RefreshToken }, Ct)).ReadProblemAsync(401, "invalid_refresh_token");
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(second.AccessToken));
    }

    [Fact]
    public async Task ATokenReplayedWithinASecondOfItsRotationIsReuseAndEndsTheSession()
    {
        var first = await App.LoginAsync(Tenant);
        using var client = App.CreateClient();
        var second = await Accounts.ReadTokensAsync(await RefreshWith(client, first.RefreshToken));
        Assert.Equal(HttpStatusCode.OK, await MeWith(second.AccessToken));

        Clock.Advance(TimeSpan.FromMilliseconds(500));
        var replayed = await RefreshWith(client, first.RefreshToken);

        await replayed.ReadProblemAsync(401, "refresh_token_reused");
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(first.AccessToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(second.AccessToken));
        await (await RefreshWith(client, second.RefreshToken)).ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task ATokenSpentSixtyRotationsAgoIsStillRecognisedAsReuse()
    {
        var first = await App.LoginAsync(Tenant);
        using var client = App.CreateClient();
        var latest = first;
        for (var i = 0; i < 60; i++)
        {
            var refreshed = await RefreshWith(client, latest.RefreshToken);
            Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
            latest = await Accounts.ReadTokensAsync(refreshed);
        }

        var replayed = await RefreshWith(client, first.RefreshToken);

        await replayed.ReadProblemAsync(401, "refresh_token_reused");
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(latest.AccessToken));
        await (await RefreshWith(client, latest.RefreshToken)).ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task AForgedOlderGenerationOfASessionIsNotTakenForReuse()
    {
        // Session ids are no secret (access tokens and the audit trail carry them): a made-up "earlier" token of a
        // session must not be a way to end someone else's session.
        var tokens = await App.LoginAsync(Tenant);
        using var client = App.CreateClient();
        var current = await Accounts.ReadTokensAsync(await RefreshWith(client, tokens.RefreshToken));
        var parts = current.RefreshToken.Split('.');
        var forged = string.Join('.', parts[0], parts[1], parts[2], "0", Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(48)));

        var response = await RefreshWith(client, forged);

        await response.ReadProblemAsync(401, "invalid_refresh_token");
        Assert.Equal(HttpStatusCode.OK, await MeWith(current.AccessToken));
        Assert.Equal(HttpStatusCode.OK, (await RefreshWith(client, current.RefreshToken)).StatusCode);
    }

    [Fact]
    public async Task ARefreshTokenIssuedBeforeGenerationsStillRefreshesOnceAndIsReuseAfterwards()
    {
        // A session row and token as the previous version wrote them: four-part token, no generation, only a hash.
        var tokens = await App.LoginAsync(Tenant);
        var rows = App.Storage.TenantTable(Sessions.TableName).For(new TenantId(Tenant.Id));
        var row = (await rows.GetAsync<TableEntity>(SessionEntity.KeyFor(Tenant.AdminId, tokens.SessionId), Ct))!;
        var secret = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        row["RefreshHash"] = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
        row.Remove("Generation");
        await rows.UpsertAsync(row, Ct);
        var legacy = $"{Tenant.Id}.{Tenant.AdminId}.{tokens.SessionId}.{secret}";
        using var client = App.CreateClient();

        var refreshed = await RefreshWith(client, legacy);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var next = await Accounts.ReadTokensAsync(refreshed);
        var replayed = await RefreshWith(client, legacy);

        await replayed.ReadProblemAsync(401, "refresh_token_reused");
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWith(next.AccessToken));
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("a.b.c.d")]
    [InlineData("01TENANT.01USER.01SESSION.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public async Task UnknownRefreshTokenIsRefused(string refreshToken)
    {
        using var client = App.CreateClient();

        var response = await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken }, Ct);

        await response.ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task RefreshTokenMovedToAnotherTenantIsRefused()
    {
        var other = await App.SignUpAsync();
        var tokens = await App.LoginAsync(Tenant);
        using var client = App.CreateClient();
        var moved = other.Id + tokens.RefreshToken[tokens.RefreshToken.IndexOf('.', StringComparison.Ordinal)..];

        var response = await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = moved }, Ct);

        await response.ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task SessionIdleTooLongCannotBeRefreshed()
    {
        var tokens = await App.LoginAsync(Tenant);
        using var client = App.CreateClient();

        Clock.Advance(TimeSpan.FromDays(30) + TimeSpan.FromMinutes(1));
        var response = await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = tokens.RefreshToken }, Ct);

        await response.ReadProblemAsync(401, "invalid_refresh_token");
    }
}

public static class Images
{
    /// <summary>A valid 1x1 PNG.</summary>
    public static byte[] Png { get; } = Convert.FromBase64String(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==");

    /// <summary>The start of a JPEG (SOI + APP0): enough for the type check.</summary>
    public static byte[] Jpeg { get; } = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0xFF, 0xD9];

    public static byte[] NotAnImage { get; } = Encoding.UTF8.GetBytes("<svg onload=alert(1)>");
}
