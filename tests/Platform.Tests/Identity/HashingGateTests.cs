using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

/// <summary>
/// The app with the smallest hashing gate there is: two slots, one of them the most bulk work may hold, and sign-ins
/// that never wait for a slot (busy unless one is free). What these tests assert holds whatever the timing.
/// </summary>
public sealed class HashingGateTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Auth:PasswordHashing:MaxConcurrentHashes"] = "2",
        ["Platform:Auth:PasswordHashing:MaxConcurrentBulkHashes"] = "1",
        ["Platform:Auth:PasswordHashing:BusyAfter"] = "00:00:00",
    };

    /// <summary>
    /// With two slots and no waiting, guesses sent at once meet a full gate. A guess refused there (503 busy) has checked
    /// nothing and still counts: refused or checked, exactly five are let past the lockout, never more.
    /// </summary>
    [Fact]
    public async Task AGuessRefusedAtTheHashingGateIsCountedLikeACheckedOne()
    {
        using var client = App.CreateClient();

        var answers = await Task.WhenAll(Enumerable.Range(0, 40)
            .Select(i => client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password " + i)));

        var statuses = answers.Select(a => (int)a.StatusCode).ToList();
        Assert.All(statuses, status => Assert.True(status is 401 or 429 or 503, $"a guess answered {status}"));
        Assert.Equal(5, statuses.Count(s => s is 401 or 503));
        foreach (var answer in answers)
        {
            await answer.ReadProblemAsync((int)answer.StatusCode, (int)answer.StatusCode switch
            {
                401 => "invalid_credentials",
                503 => "busy",
                _ => "account_locked",
            });
        }

        var right = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword);
        var wrong = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "one more wrong password");
        await LockedAnswers.AssertSameAsync(right, wrong);
    }

    /// <summary>
    /// Bulk creates with passwords hash in a lane of one slot, so a sign-in, which here never waits, always finds the
    /// other slot free: while two bulk requests are in flight every sign-in succeeds. (Without the lane the bulk
    /// requests' parallel hashes hold both slots and sign-ins answer 503 busy.)
    /// </summary>
    [Fact]
    public async Task SignInsWhileBulkCreatesHashPasswordsAreNeverRefusedBusy()
    {
        using var admin = await App.SignedInClientAsync(Tenant);
        var bulks = Enumerable.Range(0, 2).Select(b => admin.PostAsJsonAsync("/api/v1/users/bulk", new
        {
            operations = Enumerable.Range(0, 20).Select(i => new
            {
                op = "create",
                data = new { email = $"bulk{b}-{i}@example.com", displayName = $"Bulk {b}-{i}", password = $"bulk user passphrase {b}-{i}" },
            }),
        }, Ct)).ToList();

        using var client = App.CreateClient();
        var signIns = new List<HttpStatusCode>();
        do
        {
            signIns.Add((await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).StatusCode);
        }
        while (!bulks.All(b => b.IsCompleted));

        Assert.All(signIns, status => Assert.Equal(HttpStatusCode.OK, status));
        foreach (var bulk in bulks)
        {
            var response = await bulk;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var results = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("results");
            Assert.All(results.EnumerateArray(), r => Assert.Equal(201, r.GetProperty("status").GetInt32()));
        }

        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, "bulk1-19@example.com", "bulk user passphrase 1-19")).StatusCode);
    }
}
