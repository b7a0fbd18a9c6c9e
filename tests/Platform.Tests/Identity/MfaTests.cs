using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OtpNet;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class MfaTests(Azurite azurite) : SignedUpTenantTests(azurite)
{

    private string Code(string secret, TimeSpan offset = default) =>
        new Totp(Base32Encoding.ToBytes(secret)).ComputeTotp((Clock.GetUtcNow() + offset).UtcDateTime);

    /// <summary>Turns TOTP on for the tenant's admin; returns the secret, the backup codes and the session that did it.</summary>
    private async Task<(string Secret, List<string> BackupCodes, Tokens Session)> EnableAsync()
    {
        var session = await App.LoginAsync(Tenant);
        using var client = App.CreateClient(session.AccessToken);
        var setup = await (await client.PostAsync("/api/v1/auth/mfa/totp/setup", null, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var secret = setup.GetProperty("secret").GetString()!;
        var enabled = await client.PostAsJsonAsync("/api/v1/auth/mfa/totp/enable", new { code = Code(secret) }, Ct);
        Assert.Equal(HttpStatusCode.OK, enabled.StatusCode);
        var codes = (await enabled.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("backupCodes").EnumerateArray().Select(c => c.GetString()!).ToList();
        Clock.Advance(TimeSpan.FromSeconds(30));
        return (secret, codes, session);
    }

    [Fact]
    public async Task SetupReturnsASecretAndAnOtpauthUri()
    {
        using var client = await App.SignedInClientAsync(Tenant);

        var setup = await (await client.PostAsync("/api/v1/auth/mfa/totp/setup", null, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);

        var secret = setup.GetProperty("secret").GetString()!;
        Assert.Equal(20, Base32Encoding.ToBytes(secret).Length);
        Assert.StartsWith("otpauth://totp/", setup.GetProperty("otpauthUri").GetString(), StringComparison.Ordinal);
        Assert.Contains($"secret={secret}", setup.GetProperty("otpauthUri").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnablingNeedsAValidCode()
    {
        using var client = await App.SignedInClientAsync(Tenant);
        await client.PostAsync("/api/v1/auth/mfa/totp/setup", null, Ct);

        var response = await client.PostAsJsonAsync("/api/v1/auth/mfa/totp/enable", new { code = "000000" }, Ct);

        await response.ReadProblemAsync(400, "invalid_otp");
    }

    [Fact]
    public async Task AfterEnablingSignInNeedsTheCodeAndTenBackupCodesAreShownOnce()
    {
        var (secret, backupCodes, _) = await EnableAsync();
        using var client = App.CreateClient();

        Assert.Equal(10, backupCodes.Distinct().Count());
        await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).ReadProblemAsync(401, "mfa_required");
        await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, "123456")).ReadProblemAsync(401, "invalid_otp");
        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, Code(secret))).StatusCode);
    }

    [Fact]
    public async Task ACodeAcceptedOnceIsRefusedWhenReplayed()
    {
        var (secret, _, _) = await EnableAsync();
        using var client = App.CreateClient();
        var code = Code(secret);

        var first = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, code);
        var replay = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, code);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        await replay.ReadProblemAsync(401, "invalid_otp");
    }

    [Fact]
    public async Task OneStepOfDriftIsAcceptedTwoAreNot()
    {
        var (secret, _, _) = await EnableAsync();
        using var client = App.CreateClient();

        await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, Code(secret, TimeSpan.FromSeconds(60)))).ReadProblemAsync(401, "invalid_otp");
        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, Code(secret, TimeSpan.FromSeconds(30)))).StatusCode);
    }

    [Fact]
    public async Task ABackupCodeWorksOnce()
    {
        var (_, backupCodes, _) = await EnableAsync();
        using var client = App.CreateClient();

        var first = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, backupCodes[3]);
        var again = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, backupCodes[3]);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        await again.ReadProblemAsync(401, "invalid_otp");
    }

    private static string PlainSha256(string code) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(code.Replace("-", "", StringComparison.Ordinal).ToUpperInvariant())));

    private async Task<TableEntity> AdminRowAsync() =>
        (await App.Storage.TenantTable(UserDirectory.TableName).For(new TenantId(Tenant.Id)).GetAsync<TableEntity>(UserEntity.KeyFor(Tenant.AdminId), Ct))!;

    [Fact]
    public async Task StoredBackupCodesAreNoPlainHashOfTheCodesAndStillSignInOnce()
    {
        // A plain SHA-256 of a 50-bit code falls to an offline search by anyone holding a copy of the users table.
        var (_, backupCodes, _) = await EnableAsync();

        var stored = (await AdminRowAsync()).GetString("BackupCodeHashes");

        Assert.Equal(10, JsonSerializer.Deserialize<string[]>(stored)!.Length);
        Assert.All(backupCodes, code =>
        {
            Assert.DoesNotContain(PlainSha256(code), stored, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(code.Replace("-", "", StringComparison.Ordinal), stored, StringComparison.OrdinalIgnoreCase);
        });
        using var client = App.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, backupCodes[5])).StatusCode);
        await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, backupCodes[5])).ReadProblemAsync(401, "invalid_otp");
    }

    [Fact]
    public async Task BackupCodesStoredAsPlainHashesByTheEarlierVersionWorkOnceAndAreRewrittenKeyed()
    {
        await EnableAsync();
        string[] codes = ["ABCDE-FGHJK", "LMNPQ-RSTUV", "WXYZ2-34567"];
        var row = await AdminRowAsync();
        row["BackupCodeHashes"] = JsonSerializer.Serialize(codes.Select(PlainSha256));
        await App.Storage.TenantTable(UserDirectory.TableName).For(new TenantId(Tenant.Id)).UpdateAsync(row, row.ETag, Ct);
        using var client = App.CreateClient();

        var first = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, "abcde-fghjk");
        var again = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, codes[0]);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        await again.ReadProblemAsync(401, "invalid_otp");
        var stored = (await AdminRowAsync()).GetString("BackupCodeHashes");
        Assert.Equal(2, JsonSerializer.Deserialize<string[]>(stored)!.Length);
        Assert.All(codes, code => Assert.DoesNotContain(PlainSha256(code), stored, StringComparison.OrdinalIgnoreCase));
        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, codes[2])).StatusCode);
    }

    [Fact]
    public async Task RegeneratingBackupCodesInvalidatesTheOldSet()
    {
        var (secret, oldCodes, _) = await EnableAsync();
        var session = await App.LoginAsync(Tenant, Code(secret));
        using var signedIn = App.CreateClient(session.AccessToken);

        var regenerated = await signedIn.PostAsync("/api/v1/auth/mfa/backup-codes/regenerate", null, Ct);

        var newCodes = (await regenerated.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("backupCodes").EnumerateArray().Select(c => c.GetString()!).ToList();
        using var client = App.CreateClient();
        await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, oldCodes[0])).ReadProblemAsync(401, "invalid_otp");
        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, newCodes[0])).StatusCode);
    }

    [Fact]
    public async Task EnablingEndsTheOtherSessionsAndMailsANotice()
    {
        var other = await App.LoginAsync(Tenant);

        var (_, _, enabler) = await EnableAsync();

        using var otherClient = App.CreateClient(other.AccessToken);
        using var enablerClient = App.CreateClient(enabler.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await otherClient.GetAsync("/api/v1/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await enablerClient.GetAsync("/api/v1/me", Ct)).StatusCode);
        Assert.Contains(App.MailTo(Tenant.AdminEmail), m => (m.Subject ?? "").Contains("two-step", StringComparison.OrdinalIgnoreCase) || (m.Subject ?? "").Contains("MFA", StringComparison.OrdinalIgnoreCase) || (m.Subject ?? "").Contains("authenticat", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task DisablingNeedsThePassword()
    {
        var (_, _, session) = await EnableAsync();
        using var client = App.CreateClient(session.AccessToken);

        var refused = await client.PostAsJsonAsync("/api/v1/auth/mfa/totp/disable", new { password = "not my password" }, Ct);
        var disabled = await client.PostAsJsonAsync("/api/v1/auth/mfa/totp/disable", new { password = Tenant.AdminPassword }, Ct);

        await refused.ReadProblemAsync(403, "invalid_password");
        Assert.Equal(HttpStatusCode.NoContent, disabled.StatusCode);
        using var anonymous = App.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).StatusCode);
    }

    /// <summary>Turning MFA off checks the password under the same lockout as sign-in, counted before the check.</summary>
    [Fact]
    public async Task ParallelWrongPasswordsToDisableAreCheckedAtMostFiveTimesAndMfaStaysOn()
    {
        var (_, _, session) = await EnableAsync();
        using var client = App.CreateClient(session.AccessToken);

        var answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(i =>
            client.PostAsJsonAsync("/api/v1/auth/mfa/totp/disable", new { password = "wrong password " + i }, Ct)));

        var statuses = answers.Select(a => (int)a.StatusCode).ToList();
        Assert.All(statuses, status => Assert.True(status is 403 or 429, $"a guess answered {status}"));
        Assert.Equal(5, statuses.Count(s => s == 403));
        var right = await client.PostAsJsonAsync("/api/v1/auth/mfa/totp/disable", new { password = Tenant.AdminPassword }, Ct);
        var wrong = await client.PostAsJsonAsync("/api/v1/auth/mfa/totp/disable", new { password = "one more wrong" }, Ct);
        await LockedAnswers.AssertSameAsync(right, wrong);
        var me = await client.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.True(me.GetProperty("mfaEnabled").GetBoolean());
    }

    /// <summary>A right password without the code is not a failure: it does not bring the account closer to a lock.</summary>
    [Fact]
    public async Task TheRightPasswordWithoutACodeDoesNotCountTowardTheLockout()
    {
        var (secret, _, _) = await EnableAsync();
        using var client = App.CreateClient();
        for (var i = 0; i < 4; i++)
        {
            await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password " + i)).ReadProblemAsync(401, "invalid_credentials");
        }

        for (var i = 0; i < 3; i++)
        {
            await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).ReadProblemAsync(401, "mfa_required");
        }

        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword, Code(secret))).StatusCode);
    }
}
