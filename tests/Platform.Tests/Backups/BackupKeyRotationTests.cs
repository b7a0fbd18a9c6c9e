using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Backups;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;
using Platform.Tests.Webhooks.Receivers;

namespace Platform.Tests.Backups;

/// <summary>
/// Rotating the deployment's data-encryption key does not orphan backups: each backup's own key is sealed under the
/// data-encryption key, a rotated deployment keeps the previous key to open them, and the retention sweep seals them
/// afresh under the new one, after which the previous key can go.
/// </summary>
public sealed class BackupKeyRotationTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string Rotated = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    private static IDictionary<string, string?> Keys(string current, string? previous = null) => BackupApi.RunsBackups(new Dictionary<string, string?>
    {
        ["Platform:Auth:DataEncryptionKey"] = current,
        ["Platform:Auth:PreviousDataEncryptionKeys"] = previous,
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "100000",
    });

    [Fact]
    public async Task A_backup_made_before_a_rotation_opens_with_the_previous_key_and_after_the_sweep_with_the_new_one_alone()
    {
        var prefix = PlatformApp.NewPrefix();
        TestTenant tenant;
        string backupId, sealedBefore;
        byte[] seed;
        TestReceiver receiver;
        await using (var before = await new PlatformApp(azurite, prefix, Keys(TestKeys.DataEncryptionKey)).ReadyAsync())
        {
            tenant = await before.SignUpAsync();
            using var admin = await before.SignedInClientAsync(tenant);

            // Secrets sealed under the key about to be rotated: a user's TOTP seed, a receiver's signing secret.
            await admin.CreateUserIdAsync(MfaUser, Accounts.Password);
            using var user = await before.SignInAsAsync(tenant, MfaUser);
            var setup = await (await user.PostAsync("/api/v1/auth/mfa/totp/setup", null, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
            seed = OtpNet.Base32Encoding.ToBytes(setup.GetProperty("secret").GetString()!);
            Assert.Equal(HttpStatusCode.OK, (await user.PostAsJsonAsync("/api/v1/auth/mfa/totp/enable", new { code = Code(seed, TimeSpan.Zero) }, Ct)).StatusCode);
            receiver = await admin.CreateReceiverAsync("inventory.movements");

            backupId = (await admin.BackupAsync()).BackupId();
            sealedBefore = await WrappedKeyAsync(before, tenant, backupId);
        }

        // Rotated without keeping the old key: the backup does not open, and verification says it is the key.
        await using (var forgetful = await new PlatformApp(azurite, prefix, Keys(Rotated)).ReadyAsync())
        {
            using var admin = await forgetful.SignedInClientAsync(tenant);
            var refused = await admin.VerifyBackupAsync(backupId);
            Assert.Equal("failed", refused.GetProperty("status").GetString());
            Assert.Contains("data-encryption key", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        // Rotated keeping the old key: what was sealed before opens (the user signs in with the same authenticator, the
        // receiver checks its sender's signature), the backup verifies, and the sweep seals its key under the new key.
        await using (var rotated = await new PlatformApp(azurite, prefix, Keys(Rotated, previous: TestKeys.DataEncryptionKey)).ReadyAsync())
        {
            using var anonymous = rotated.CreateClient();
            var signedIn = await anonymous.PostLoginAsync(tenant.Slug, MfaUser, Accounts.Password, Code(seed, TimeSpan.FromSeconds(30)));
            Assert.True(signedIn.StatusCode == HttpStatusCode.OK, $"sign-in with TOTP after the rotation: {(int)signedIn.StatusCode} {await signedIn.Content.ReadAsStringAsync(Ct)}");
            using (var hook = ReceiverApi.SignedStandard(receiver, """{"type":"ping"}"""))
            {
                Assert.Equal(HttpStatusCode.Accepted, (await anonymous.SendAsync(hook, Ct)).StatusCode);
            }

            using var admin = await rotated.SignedInClientAsync(tenant);
            Assert.Equal("succeeded", (await admin.VerifyBackupAsync(backupId)).GetProperty("status").GetString());
            using var scope = rotated.Services.CreateScope();
            await scope.ServiceProvider.GetRequiredService<BackupRetention>().SweepAsync(new TenantId(tenant.Id), DateTimeOffset.UtcNow, Ct);
            Assert.NotEqual(sealedBefore, await WrappedKeyAsync(rotated, tenant, backupId));
        }

        // The previous key retired: the backup still opens, verifies and lists as verified.
        await using var after = await new PlatformApp(azurite, prefix, Keys(Rotated)).ReadyAsync();
        using var client = await after.SignedInClientAsync(tenant);
        Assert.Equal("succeeded", (await client.VerifyBackupAsync(backupId)).GetProperty("status").GetString());
        Assert.True((await client.GetBackupAsync(backupId)).GetProperty("verified").GetBoolean());
        Assert.NotEmpty(await after.ReadPartAsync(tenant.Id, await client.GetBackupAsync(backupId), "users"));
    }

    private const string MfaUser = "mfa@example.com";

    private static string Code(byte[] seed, TimeSpan ahead) => new OtpNet.Totp(seed).ComputeTotp(DateTime.UtcNow + ahead);

    private static async Task<string> WrappedKeyAsync(PlatformApp app, TestTenant tenant, string backupId) =>
        (await app.Services.GetRequiredService<BackupStore>().GetAsync(new TenantId(tenant.Id), backupId, Ct))!.WrappedKey;
}
