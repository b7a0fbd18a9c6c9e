using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Auth;
using Platform.Functions.Housekeeping;
using Platform.Functions.Triggers;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

/// <summary>
/// Lockout and session rows go when their time is up, and not before: the fake clock moves and the
/// <c>StorageHousekeeping</c> timer's handler runs as the timer would.
/// </summary>
public sealed class RowExpiryTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    // A lockout longer than the failure window, so "the window ended" and "the lock ended" are different moments.
    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Platform:Auth:LockoutWindow"] = "00:15:00",
        ["Platform:Auth:FirstLockout"] = "01:00:00",
        ["Platform:Auth:MaxLockout"] = "02:00:00",
        ["Platform:Auth:SessionIdleTimeout"] = "01:00:00",
    };

    private async Task RunHousekeepingAsync()
    {
        await using var scope = App.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<StorageHousekeeping>().RunAsync(new TimerInvocation(false, null, null), Ct);
    }

    private List<TableEntity> Rows(string table, string rowKeyPrefix = "") =>
        [.. App.Storage.Table(table).Query<TableEntity>($"PartitionKey eq '{Tenant.Id}'", cancellationToken: Ct).Where(e => e.RowKey.StartsWith(rowKeyPrefix, StringComparison.Ordinal))];

    private Task<HttpResponseMessage> LoginAsync(HttpClient client, string password) => client.PostLoginAsync(Tenant.Slug, Tenant.AdminEmail, password);

    [Fact]
    public async Task AFailureRowWithoutALockoutGoesWhenItsWindowEnds()
    {
        using var client = App.CreateClient();
        await (await LoginAsync(client, "wrong password")).ReadProblemAsync(401, "invalid_credentials");
        Assert.Single(Rows(Lockouts.TableName));

        Clock.Advance(TimeSpan.FromMinutes(14));
        await RunHousekeepingAsync();
        Assert.Single(Rows(Lockouts.TableName));

        Clock.Advance(TimeSpan.FromMinutes(2));
        await RunHousekeepingAsync();
        Assert.Empty(Rows(Lockouts.TableName));
    }

    [Fact]
    public async Task HousekeepingNeverUnlocksALockedAccountAndTheRowGoesOnlyLongAfterTheLockEnds()
    {
        using var client = App.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await (await LoginAsync(client, "wrong password " + i)).ReadProblemAsync(401, "invalid_credentials");
        }

        // The entry scheduled at the row's creation comes due when the window ends; the lock runs for an hour.
        Clock.Advance(TimeSpan.FromMinutes(20));
        await RunHousekeepingAsync();
        var locked = await LoginAsync(client, Tenant.AdminPassword);
        await locked.ReadProblemAsync(429, "account_locked");
        Assert.Single(Rows(Lockouts.TableName));

        // The lock ended; the row stays MaxLockout longer so the next lockout would still be the doubled one.
        Clock.Advance(TimeSpan.FromMinutes(40) + TimeSpan.FromHours(2) - TimeSpan.FromMinutes(1));
        await RunHousekeepingAsync();
        Assert.Single(Rows(Lockouts.TableName));

        Clock.Advance(TimeSpan.FromMinutes(2));
        await RunHousekeepingAsync();
        Assert.Empty(Rows(Lockouts.TableName));
        Assert.DoesNotContain(App.Storage.Table(Expirations.TableName).Query<TableEntity>(cancellationToken: Ct), e => e.GetString("Table") == Lockouts.TableName);
        Assert.Equal(HttpStatusCode.OK, (await LoginAsync(client, Tenant.AdminPassword)).StatusCode);
    }

    [Fact]
    public async Task ARevokedSessionIsDeletedByTheNextHousekeepingRun()
    {
        var tokens = await App.LoginAsync(Tenant);
        var key = SessionEntityKey(tokens.SessionId);
        await RunHousekeepingAsync();
        Assert.Single(Rows(Sessions.TableName, key));

        using var client = App.CreateClient(tokens.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, (await client.PostAsync("/api/v1/auth/logout", null, Ct)).StatusCode);
        await RunHousekeepingAsync();

        Assert.Empty(Rows(Sessions.TableName, key));
        using var anonymous = App.CreateClient();
        await (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = tokens.RefreshToken }, Ct)).ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task ASessionInUseStaysAndGoesOnlyOnceItHasBeenIdleForTheIdleTimeout()
    {
        var tokens = await App.LoginAsync(Tenant);
        var key = SessionEntityKey(tokens.SessionId);
        using var anonymous = App.CreateClient();

        Clock.Advance(TimeSpan.FromMinutes(50));
        var refreshed = await Accounts.ReadTokensAsync(await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = tokens.RefreshToken }, Ct));

        // An hour after sign-in the entry scheduled then comes due, but the session was used 20 minutes ago.
        Clock.Advance(TimeSpan.FromMinutes(59));
        await RunHousekeepingAsync();
        Assert.Single(Rows(Sessions.TableName, key));

        Clock.Advance(TimeSpan.FromMinutes(2));
        await RunHousekeepingAsync();
        Assert.Empty(Rows(Sessions.TableName, key));
        await (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refreshToken = refreshed.RefreshToken }, Ct)).ReadProblemAsync(401, "invalid_refresh_token");
    }

    [Fact]
    public async Task SigningInOverTheSessionCapLeavesNoRowsOfEvictedSessionsForTheNextSignInToRead()
    {
        // The attack: every sign-in over the cap left a revoked row that each later sign-in read again, for 90 days.
        for (var i = 0; i < 15; i++)
        {
            await App.LoginAsync(Tenant);
        }

        Assert.Equal(10, Rows(Sessions.TableName, Tenant.AdminId + ":").Count);
        using var client = App.CreateClient((await App.LoginAsync(Tenant)).AccessToken);
        var listed = await client.GetFromJsonAsync<JsonElement>("/api/v1/auth/sessions", Ct);
        Assert.Equal(10, listed.GetProperty("items").GetArrayLength());
    }

    private string SessionEntityKey(string sessionId) => SessionEntity.KeyFor(Tenant.AdminId, sessionId);
}
