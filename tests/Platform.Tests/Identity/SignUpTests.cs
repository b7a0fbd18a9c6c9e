using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

public sealed class SignUpTests(Azurite azurite) : IAsyncLifetime
{
    private PlatformApp _app = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _app = await new PlatformApp(azurite).ReadyAsync();

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task SignUpCreatesTheTenantAndAnAdminWhosePasswordIsStoredHashed()
    {
        using var client = _app.CreateClient();
        var slug = "acme-" + Guid.NewGuid().ToString("N")[..8];

        var response = await client.PostAsJsonAsync("/api/v1/tenants", new
        {
            name = "Acme Corp",
            slug,
            admin = new { email = "Ada@Acme.example", password = Accounts.Password, displayName = "Ada" },
        }, Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var tenant = body.GetProperty("tenant");
        Assert.Equal(slug, tenant.GetProperty("slug").GetString());
        Assert.Equal("Acme Corp", tenant.GetProperty("name").GetString());
        Assert.Equal("free", tenant.GetProperty("plan").GetString());
        var user = body.GetProperty("user");
        Assert.Equal(["admin"], user.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal("Ada@Acme.example", user.GetProperty("email").GetString());
        Assert.False(user.GetProperty("emailVerified").GetBoolean());
        Assert.False(user.TryGetProperty("passwordHash", out _));
        Assert.Equal($"/api/v1/users/{user.GetProperty("id").GetString()}", response.Headers.Location?.OriginalString);

        var stored = await _app.Services.GetRequiredService<UserDirectory>()
            .FindByEmailAsync(new TenantId(tenant.GetProperty("id").GetString()!), "ada@acme.example", Ct);
        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", stored!.PasswordHash, StringComparison.Ordinal);
        Assert.DoesNotContain(Accounts.Password, stored.PasswordHash, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignUpWithATakenSlugIsAConflict()
    {
        var first = await _app.SignUpAsync();
        using var client = _app.CreateClient();

        var response = await client.PostAsJsonAsync("/api/v1/tenants", new
        {
            name = "Copycat",
            slug = first.Slug,
            admin = new { email = "someone@else.example", password = Accounts.Password, displayName = "Someone" },
        }, Ct);

        await response.ReadProblemAsync(409, "slug_taken");
    }

    [Fact]
    public async Task ConcurrentSignUpsForOneSlugCreateExactlyOneTenant()
    {
        var slug = "race-" + Guid.NewGuid().ToString("N")[..8];
        using var client = _app.CreateClient();

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => client.PostAsJsonAsync("/api/v1/tenants", new
        {
            name = "Racer " + i,
            slug,
            admin = new { email = $"racer{i}@race.example", password = Accounts.Password, displayName = "Racer" },
        }, Ct)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        Assert.Equal(7, responses.Count(r => r.StatusCode == HttpStatusCode.Conflict));
    }

    [Fact]
    public async Task InvalidSignUpNamesEveryBadField()
    {
        using var client = _app.CreateClient();

        var response = await client.PostAsJsonAsync("/api/v1/tenants", new
        {
            name = "",
            slug = "No Spaces!",
            admin = new { email = "not-an-email", password = "password", displayName = new string('x', 101) },
        }, Ct);

        var problem = await response.ReadProblemAsync(400, "validation_failed");
        var errors = problem.GetProperty("errors");
        foreach (var field in new[] { "name", "slug", "admin.email", "admin.password", "admin.displayName" })
        {
            Assert.True(errors.TryGetProperty(field, out _), $"no error for {field}");
        }

        Assert.Contains("common", errors.GetProperty("admin.password")[0].GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ab")]
    [InlineData("this-slug-is-much-too-long-to-be-accepted-x")]
    [InlineData("UPPER")]
    [InlineData("emoji-🙂")]
    public async Task SlugOutsideTheRulesIsRefused(string slug)
    {
        using var client = _app.CreateClient();

        var response = await client.PostAsJsonAsync("/api/v1/tenants", new
        {
            name = "X",
            slug,
            admin = new { email = "x@x.example", password = Accounts.Password, displayName = "X" },
        }, Ct);

        var problem = await response.ReadProblemAsync(400, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty("slug", out _));
    }

    [Fact]
    public async Task SignUpMailsAVerificationLinkThatVerifiesTheEmailOnce()
    {
        var tenant = await _app.SignUpAsync();
        var token = _app.TokenFromMail(tenant.AdminEmail, "verify-email");
        using var client = _app.CreateClient();

        var verified = await client.PostAsJsonAsync("/api/v1/auth/verify-email", new { token }, Ct);
        var again = await client.PostAsJsonAsync("/api/v1/auth/verify-email", new { token }, Ct);

        Assert.Equal(HttpStatusCode.NoContent, verified.StatusCode);
        await again.ReadProblemAsync(400, "invalid_token");
        using var signedIn = await _app.SignedInClientAsync(tenant);
        var me = await signedIn.GetFromJsonAsync<JsonElement>("/api/v1/me", Ct);
        Assert.True(me.GetProperty("emailVerified").GetBoolean());
        var link = _app.MailTo(tenant.AdminEmail).Single().TextBody!;
        Assert.Contains("http://localhost:7071/verify-email?token=", link, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignUpsFromOneAddressAreRateLimited()
    {
        await using var strict = await new PlatformApp(azurite, settings: new Dictionary<string, string?> { ["Platform:RateLimits:SignUpsPerHourPerIp"] = "2" }).ReadyAsync();
        await strict.SignUpAsync();
        await strict.SignUpAsync();
        using var client = strict.CreateClient();

        var response = await client.PostAsJsonAsync("/api/v1/tenants", new
        {
            name = "Third",
            slug = "third-" + Guid.NewGuid().ToString("N")[..8],
            admin = new { email = "third@x.example", password = Accounts.Password, displayName = "Third" },
        }, Ct);

        await response.ReadProblemAsync(429, "rate_limited");
        Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero);
    }

    [Fact]
    public async Task SignUpIsAudited()
    {
        var tenant = await _app.SignUpAsync();

        // Events reach the trail through the relay, moments after the answer: read it as the audit route does, caught up.
        await _app.Services.GetRequiredService<EventRelay>().CatchUpAsync(new TenantId(tenant.Id), Ct);
        var entries = await _app.Services.GetRequiredService<AuditTrail>().Entries(new TenantId(tenant.Id))
            .QueryAsync<AuditEntry>(cancellationToken: Ct).ToListAsync(Ct);

        Assert.Contains(entries, e => e.Action == "tenant.created" && e.TargetId == tenant.Id);
        Assert.Contains(entries, e => e.Action == "user.created" && e.TargetId == tenant.AdminId && e.ActorId == tenant.AdminId);
        Assert.DoesNotContain(entries, e => e.Changes?.Contains(Accounts.Password, StringComparison.Ordinal) == true);
    }
}
