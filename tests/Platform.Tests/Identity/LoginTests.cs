using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class LoginTests(Azurite azurite) : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private PlatformApp _app = null!;
    private TestTenant _tenant = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _app = await new PlatformApp(azurite, services: s => s.AddSingleton<TimeProvider>(_clock)).ReadyAsync();
        _tenant = await _app.SignUpAsync();
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task LoginGivesATokenPairWhoseAccessTokenOpensTheAccount()
    {
        using var client = _app.CreateClient();

        var response = await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail.ToUpperInvariant(), _tenant.AdminPassword);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var tokens = await Accounts.ReadTokensAsync(response);
        Assert.Equal(900, tokens.ExpiresIn);
        using var signedIn = _app.CreateClient(tokens.AccessToken);
        var me = await signedIn.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.Equal(_tenant.AdminId, me.GetProperty("id").GetString());
        Assert.NotEqual(JsonValueKind.Null, me.GetProperty("lastLoginAt").ValueKind);
    }

    [Fact]
    public async Task WrongPasswordUnknownUserAndUnknownTenantGetTheSameAnswer()
    {
        using var client = _app.CreateClient();

        var answers = new[]
        {
            await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, "wrong password here"),
            await client.PostLoginAsync(_tenant.Slug, "nobody@nowhere.example", "wrong password here"),
            await client.PostLoginAsync("no-such-tenant", _tenant.AdminEmail, "wrong password here"),
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
        using var client = _app.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await (await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, "wrong password " + i)).ReadProblemAsync(401, "invalid_credentials");
        }

        var locked = await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, _tenant.AdminPassword);

        await locked.ReadProblemAsync(429, "account_locked");
        Assert.Equal(TimeSpan.FromMinutes(15), locked.Headers.RetryAfter?.Delta);

        _clock.Advance(TimeSpan.FromMinutes(15) + TimeSpan.FromSeconds(1));
        var afterwards = await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, _tenant.AdminPassword);
        Assert.Equal(HttpStatusCode.OK, afterwards.StatusCode);
    }

    [Fact]
    public async Task EachFurtherLockoutLastsTwiceAsLong()
    {
        using var client = _app.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, "wrong password");
        }

        _clock.Advance(TimeSpan.FromMinutes(16));
        for (var i = 0; i < 5; i++)
        {
            await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, "wrong password");
        }

        var locked = await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, _tenant.AdminPassword);

        await locked.ReadProblemAsync(429, "account_locked");
        Assert.Equal(TimeSpan.FromMinutes(30), locked.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task UnknownUsersAreLockedLikeRealOnesSoLockoutRevealsNothing()
    {
        using var client = _app.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await client.PostLoginAsync(_tenant.Slug, "ghost@nowhere.example", "wrong password");
        }

        var locked = await client.PostLoginAsync(_tenant.Slug, "ghost@nowhere.example", "wrong password");

        await locked.ReadProblemAsync(429, "account_locked");
    }

    [Fact]
    public async Task FailuresAndSuccessesAreAuditedWithoutThePassword()
    {
        using var client = _app.CreateClient();
        await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, "a wrong guess");
        await _app.LoginAsync(_tenant);

        var entries = await _app.Services.GetRequiredService<AuditTrail>().Entries(new TenantId(_tenant.Id))
            .QueryAsync<AuditEntry>(cancellationToken: Ct).ToListAsync(Ct);

        Assert.Contains(entries, e => e.Action == "auth.login.failed" && e.TargetId == _tenant.AdminId);
        Assert.Contains(entries, e => e.Action == "auth.login.succeeded" && e.ActorId == _tenant.AdminId);
        Assert.DoesNotContain(entries, e => (e.Changes ?? "").Contains("a wrong guess", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{\"tenant\":")]
    [InlineData("[1,2,3]")]
    public async Task MalformedLoginBodyIsABadRequest(string body)
    {
        using var client = _app.CreateClient();

        var response = await client.PostAsync("/api/v1/auth/login", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        await response.ReadProblemAsync(400, "invalid_json");
    }

    [Fact]
    public async Task OversizedLoginBodyIsRefusedBeforeItIsRead()
    {
        using var client = _app.CreateClient();

        var response = await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, new string('p', 2 * 1024 * 1024));

        await response.ReadProblemAsync(413, "payload_too_large");
    }

    [Fact]
    public async Task AnEmptyPasswordIsJustWrong()
    {
        using var client = _app.CreateClient();

        var response = await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, "");

        await response.ReadProblemAsync(401, "invalid_credentials");
    }

    [Fact]
    public async Task AMegabytePasswordUnderTheBodyLimitIsJustWrong()
    {
        using var client = _app.CreateClient();

        var response = await client.PostLoginAsync(_tenant.Slug, _tenant.AdminEmail, new string('p', 500_000));

        await response.ReadProblemAsync(401, "invalid_credentials");
    }
}
