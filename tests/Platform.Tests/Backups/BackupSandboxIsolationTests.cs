using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;
using Platform.Tests.Webhooks.Receivers;

namespace Platform.Tests.Backups;

/// <summary>
/// A sandbox restored from a backup holds copies of the tenant's API keys and receivers under the same ids and
/// prefixes, while the platform-wide indexes still name the original tenant. What the sandbox's admin does to the
/// copies must never reach the originals: the attack is a sandbox admin (who may hold roles there that the live tenant
/// took away since) revoking or rotating a copied key, or deleting a copied receiver, to cut the live tenant off.
/// </summary>
public sealed class BackupSandboxIsolationTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups(new Dictionary<string, string?>
    {
        ["Platform:Webhooks:Receivers:RequestsPerMinute"] = "100000",
    });

    private static readonly string[] UsersRead = ["users.read"];

    [Fact]
    public async Task Revoking_rotating_or_deleting_the_copies_in_a_sandbox_leaves_the_live_keys_and_receiver_working()
    {
        var revoked = await CreateKeyAsync(Admin);
        var rotated = await CreateKeyAsync(Admin);
        var receiver = await Admin.CreateReceiverAsync("inventory.movements");
        var backup = await Admin.BackupAsync();

        var slug = "iso-" + Tenant.Id[^10..].ToLowerInvariant();
        var started = await Admin.PostAsJsonAsync($"/api/v1/backups/{backup.BackupId()}/restore", new { targetTenantSlug = slug }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var job = await Admin.FinishedJobAsync((await started.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", $"the restore ended {job}");
        using var sandbox = await App.SignedInClientAsync(Tenant with { Slug = slug });

        // The sandbox's copies: a key revoked, a key rotated twice (the second drops the first's prefix, which is the
        // live key's), the receiver deleted.
        Assert.Equal(HttpStatusCode.NoContent, (await sandbox.DeleteAsync($"/api/v1/api-keys/{revoked.Id}", Ct)).StatusCode);
        var first = await (await sandbox.PostAsJsonAsync($"/api/v1/api-keys/{rotated.Id}/rotate", new { graceSeconds = 0 }, Ct)).ReadJsonAsync(HttpStatusCode.OK);
        var second = await (await sandbox.PostAsJsonAsync($"/api/v1/api-keys/{rotated.Id}/rotate", new { graceSeconds = 0 }, Ct)).ReadJsonAsync(HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.NoContent, (await sandbox.DeleteAsync($"{ReceiverApi.ReceiversPath}/{receiver.Id}", Ct)).StatusCode);

        // The live tenant's keys and receiver work as before.
        Assert.Equal(HttpStatusCode.OK, await StatusWithKeyAsync(revoked.Key));
        Assert.Equal(HttpStatusCode.OK, await StatusWithKeyAsync(rotated.Key));
        using var hooks = App.CreateClient();
        using var message = ReceiverApi.SignedStandard(receiver, """{"type":"ping"}""");
        Assert.Equal(HttpStatusCode.Accepted, (await hooks.SendAsync(message, Ct)).StatusCode);

        // A copy rotated in the sandbox authenticates there with its new text: rotating is how a sandbox key is enabled.
        Assert.NotEqual(first.Str("key"), second.Str("key"));
        using var sandboxKey = KeyClient(second.Str("key"));
        var users = await sandboxKey.GetAsync("/api/v1/users", Ct);
        Assert.Equal(HttpStatusCode.OK, users.StatusCode);
        var sandboxUsers = (await users.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("items").EnumerateArray().ToList();
        Assert.NotEmpty(sandboxUsers);
    }

    private async Task<HttpStatusCode> StatusWithKeyAsync(string key)
    {
        using var client = KeyClient(key);
        return (await client.GetAsync("/api/v1/users", Ct)).StatusCode;
    }

    private HttpClient KeyClient(string key)
    {
        var client = App.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key);
        return client;
    }

    private static async Task<(string Id, string Key)> CreateKeyAsync(HttpClient admin)
    {
        var created = await (await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "ERP", permissions = UsersRead }, Ct)).ReadJsonAsync(HttpStatusCode.Created);
        return (created.Id(), created.Str("key"));
    }
}
