using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class LoginTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    // The few checks the parallel-guess tests let through must never meet the hashing gate's limit on a loaded
    // machine: a 503 there would be a refusal, not a check, and blur what is counted.
    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Auth:PasswordHashing:BusyAfter"] = "00:02:00",
    };

    /// <summary>
    /// The attack: many wrong guesses sent at once all passed the lock check before the first was counted, so all
    /// were checked (and contention on the lockout row surfaced as 412/500). Each guess must be counted before its
    /// check: five are checked, every other one is refused, and the right password sent after them is refused too.
    /// </summary>
    [Theory]
    [InlineData(40)]
    [InlineData(200)]
    public async Task ParallelGuessesAreCheckedAtMostFiveTimesAndTheRightPasswordAfterThemIsLockedOut(int guesses)
    {
        using var client = App.CreateClient();

        var answers = await Task.WhenAll(Enumerable.Range(0, guesses)
            .Select(i => client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password " + i)));

        var statuses = answers.Select(a => (int)a.StatusCode).ToList();
        Assert.All(statuses, status => Assert.True(status is 401 or 429, $"a guess answered {status}"));
        Assert.Equal(5, statuses.Count(s => s == 401));
        foreach (var answer in answers)
        {
            await answer.ReadProblemAsync((int)answer.StatusCode, answer.StatusCode == HttpStatusCode.Unauthorized ? "invalid_credentials" : "account_locked");
        }

        var right = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword);
        var wrong = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "one more wrong password");

        await LockedAnswers.AssertSameAsync(right, wrong);
    }

    [Fact]
    public async Task WhileLockedTheRightAndAWrongPasswordGetTheSameAnswer()
    {
        using var client = App.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password " + i)).ReadProblemAsync(401, "invalid_credentials");
        }

        var right = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword);
        var wrong = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password 5");

        await LockedAnswers.AssertSameAsync(right, wrong);
    }

    [Fact]
    public async Task TheRightPasswordAfterFourFailuresSignsInAndStartsTheCountAfresh()
    {
        using var client = App.CreateClient();
        for (var i = 0; i < 4; i++)
        {
            await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password " + i)).ReadProblemAsync(401, "invalid_credentials");
        }

        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).StatusCode);
        for (var i = 0; i < 4; i++)
        {
            await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password " + i)).ReadProblemAsync(401, "invalid_credentials");
        }

        Assert.Equal(HttpStatusCode.OK, (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword)).StatusCode);
    }

    [Fact]
    public async Task LoginGivesATokenPairWhoseAccessTokenOpensTheAccount()
    {
        using var client = App.CreateClient();

        var response = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail.ToUpperInvariant(), Tenant.AdminPassword);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var tokens = await Accounts.ReadTokensAsync(response);
        Assert.Equal(900, tokens.ExpiresIn);
        using var signedIn = App.CreateClient(tokens.AccessToken);
        var me = await signedIn.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.Equal(Tenant.AdminId, me.GetProperty("id").GetString());
        Assert.NotEqual(JsonValueKind.Null, me.GetProperty("lastLoginAt").ValueKind);
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$", me.GetProperty("createdAt").GetString());
    }

    [Fact]
    public async Task WrongPasswordUnknownUserAndUnknownTenantGetTheSameAnswer()
    {
        using var client = App.CreateClient();

        var answers = new[]
        {
            await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password here"),
            await client.PostLoginAsync(Tenant.Slug, "nobody@nowhere.example", "wrong password here"),
            await client.PostLoginAsync("no-such-tenant", Tenant.AdminEmail, "wrong password here"),
        };

        var bodies = new List<string>();
        foreach (var answer in answers)
        {
            var problem = await answer.ReadProblemAsync(401, "invalid_credentials");
            bodies.Add($"{problem.GetProperty("title")}|{problem.GetProperty("detail")}");
        }

        Assert.Single(bodies.Distinct());
    }

    [Fact]
    public async Task FiveFailuresLockTheAccountUntilTheLockoutExpires()
    {
        using var client = App.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await (await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password " + i)).ReadProblemAsync(401, "invalid_credentials");
        }

        var locked = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword);

        await locked.ReadProblemAsync(429, "account_locked");
        Assert.Equal(TimeSpan.FromMinutes(15), locked.Headers.RetryAfter?.Delta);

        Clock.Advance(TimeSpan.FromMinutes(15) + TimeSpan.FromSeconds(1));
        var afterwards = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword);
        Assert.Equal(HttpStatusCode.OK, afterwards.StatusCode);
    }

    [Fact]
    public async Task EachFurtherLockoutLastsTwiceAsLong()
    {
        using var client = App.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password");
        }

        Clock.Advance(TimeSpan.FromMinutes(16));
        for (var i = 0; i < 5; i++)
        {
            await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "wrong password");
        }

        var locked = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, Tenant.AdminPassword);

        await locked.ReadProblemAsync(429, "account_locked");
        Assert.Equal(TimeSpan.FromMinutes(30), locked.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task UnknownUsersAreLockedLikeRealOnesSoLockoutRevealsNothing()
    {
        using var client = App.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await client.PostLoginAsync(Tenant.Slug, "ghost@nowhere.example", "wrong password");
        }

        var locked = await client.PostLoginAsync(Tenant.Slug, "ghost@nowhere.example", "wrong password");

        await locked.ReadProblemAsync(429, "account_locked");
    }

    [Fact]
    public async Task FailuresAndSuccessesAreAuditedWithoutThePassword()
    {
        using var client = App.CreateClient();
        await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "a wrong guess");
        await App.LoginAsync(Tenant);
        await App.Services.GetRequiredService<EventRelay>().CatchUpAsync(new TenantId(Tenant.Id), Ct);

        // Events reach the trail through the relay, moments after the answer: read it as the audit route does, caught up.
        await App.Services.GetRequiredService<EventRelay>().CatchUpAsync(new TenantId(Tenant.Id), Ct);
        var entries = await App.Services.GetRequiredService<AuditTrail>().Entries(new TenantId(Tenant.Id))
            .QueryAsync<AuditEntry>(cancellationToken: Ct).ToListAsync(Ct);

        Assert.Contains(entries, e => e.Action == "auth.login.failed" && e.TargetId == Tenant.AdminId);
        Assert.Contains(entries, e => e.Action == "auth.login.succeeded" && e.ActorId == Tenant.AdminId);
        Assert.DoesNotContain(entries, e => (e.Changes ?? "").Contains("a wrong guess", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{\"tenant\":")]
    [InlineData("[1,2,3]")]
    public async Task MalformedLoginBodyIsABadRequest(string body)
    {
        using var client = App.CreateClient();

        var response = await client.PostAsync("/api/v1/auth/login", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        await response.ReadProblemAsync(400, "invalid_json");
    }

    [Fact]
    public async Task OversizedLoginBodyIsRefusedBeforeItIsRead()
    {
        using var client = App.CreateClient();

        var response = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, new string('p', 2 * 1024 * 1024));

        await response.ReadProblemAsync(413, "payload_too_large");
    }

    [Fact]
    public async Task AnEmptyPasswordIsJustWrong()
    {
        using var client = App.CreateClient();

        var response = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, "");

        await response.ReadProblemAsync(401, "invalid_credentials");
    }

    [Fact]
    public async Task AMegabytePasswordUnderTheBodyLimitIsJustWrong()
    {
        using var client = App.CreateClient();

        var response = await client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, new string('p', 500_000));

        await response.ReadProblemAsync(401, "invalid_credentials");
    }
}

/// <summary>What a locked account answers, compared field by field (all but the per-request traceId).</summary>
internal static class LockedAnswers
{
    public static async Task AssertSameAsync(HttpResponseMessage right, HttpResponseMessage wrong)
    {
        var rightBody = await right.ReadProblemAsync(429, "account_locked");
        var wrongBody = await wrong.ReadProblemAsync(429, "account_locked");

        Assert.Equal(Fields(wrongBody), Fields(rightBody));
        Assert.NotNull(right.Headers.RetryAfter?.Delta);
        Assert.Equal(wrong.Headers.RetryAfter?.Delta, right.Headers.RetryAfter?.Delta);
    }

    private static List<string> Fields(JsonElement problem) =>
        [.. problem.EnumerateObject().Where(p => p.Name != "traceId").Select(p => $"{p.Name}={p.Value.GetRawText()}").Order(StringComparer.Ordinal)];
}
