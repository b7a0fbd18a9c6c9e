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
