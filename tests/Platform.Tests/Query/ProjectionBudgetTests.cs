using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Query;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Query;

/// <summary>
/// Lists of many tenants on one instance: the projections hold tenants by a memory budget, not a tenant count, so many
/// small tenants stay held, and a budget too small for all of them still serves every tenant its own users.
/// </summary>
public sealed class ProjectionBudgetTests(Azurite azurite)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Member(TestTenant Tenant, HttpClient Admin, List<string> Emails);

    private Task<PlatformApp> AppWithBudgetAsync(string? megabytes) =>
        new PlatformApp(azurite, settings: megabytes is null ? null : new Dictionary<string, string?> { ["Platform:Lists:ProjectionMemoryMB"] = megabytes })
            .ReadyAsync();

    /// <summary>Tenants signed up and signed in a few at a time, each holding its admin and <paramref name="users"/> more.</summary>
    private static async Task<List<Member>> TenantsAsync(PlatformApp app, int count, int users)
    {
        var members = new Member[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = Ct }, async (i, _) =>
        {
            var tenant = await app.SignUpAsync();
            var admin = await app.SignedInClientAsync(tenant);
            var emails = Enumerable.Range(0, users).Select(u => $"user{u}@{tenant.Slug}.example").ToList();
            if (users > 0)
            {
                var bulk = await admin.BulkAsync(emails.Select(email => new { op = "create", data = new { email, displayName = "User of " + tenant.Slug } }));
                Assert.All((await bulk.ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray(),
                    r => Assert.Equal(201, r.GetProperty("status").GetInt32()));
            }

            members[i] = new Member(tenant, admin, [tenant.AdminEmail, .. emails]);
        });
        return [.. members];
    }

    /// <summary>Each tenant's list, in turn: exactly its own users, none of another tenant's.</summary>
    private static async Task ListEachAsync(IEnumerable<Member> members)
    {
        foreach (var member in members)
        {
            Assert.Equal(member.Emails.Order(StringComparer.Ordinal), (await member.Admin.EmailsAsync()).Order(StringComparer.Ordinal));
        }
    }

    private static long Loads(PlatformApp app) => app.Services.GetRequiredService<UserProjections>().Loads;

    [Fact]
    public async Task FiftyFiveSmallTenantsListedAgainAreServedWithoutAScan()
    {
        // Past the old bound of 50 tenants, every list in a round robin was a partition scan.
        await using var app = await AppWithBudgetAsync(null);
        var members = await TenantsAsync(app, 55, users: 0);
        await ListEachAsync(members);
        var afterFirstRound = Loads(app);

        await ListEachAsync(members);
        await ListEachAsync(members);

        Assert.Equal(afterFirstRound, Loads(app));
        Assert.Equal(0, app.Services.GetRequiredService<ProjectionMemory>().Evictions);
    }

    [Fact]
    public async Task WithABudgetForAboutThreeTenantsSixTenantsEachSeeTheirOwnUsersAndAWriteMadeWhileDropped()
    {
        // 0.01 MB holds about 3 tenants of 3 users (about 1 KB a user), so a round robin over 6 drops each before its turn.
        await using var app = await AppWithBudgetAsync("0.01");
        var members = await TenantsAsync(app, 6, users: 2);
        await ListEachAsync(members);

        var before = Loads(app);
        await ListEachAsync(members);
        Assert.Equal(before + members.Count, Loads(app));

        // The first tenant is dropped by now: a user created meanwhile shows when it is loaded again.
        var first = members[0];
        await first.Admin.CreateUserAsync("late@" + first.Tenant.Slug + ".example", "Late");
        first.Emails.Add("late@" + first.Tenant.Slug + ".example");
        await ListEachAsync(members);
        Assert.Contains("late@" + first.Tenant.Slug + ".example", await first.Admin.EmailsAsync("q=late"));

        var memory = app.Services.GetRequiredService<ProjectionMemory>();
        Assert.InRange(memory.HeldBytes, 1, memory.BudgetBytes);
        Assert.True(memory.Evictions >= members.Count);
    }

    [Fact]
    public async Task ATenantLargerThanTheWholeBudgetIsServedAndHeldAloneUntilAnotherTenantNeedsTheRoom()
    {
        await using var app = await AppWithBudgetAsync("0.01");
        var members = await TenantsAsync(app, 2, users: 0);
        var large = (await TenantsAsync(app, 1, users: 30))[0];

        await ListEachAsync(members);
        await ListEachAsync([large]);
        var memory = app.Services.GetRequiredService<ProjectionMemory>();
        Assert.True(memory.HeldBytes > memory.BudgetBytes, $"{memory.HeldBytes} bytes held, the budget is {memory.BudgetBytes}");

        // Held alone: listed again, it is not scanned again.
        var loads = Loads(app);
        Assert.Equal(31, (await large.Admin.ListAsync("q=example")).Count);
        Assert.Equal(loads, Loads(app));

        // A small tenant's list drops it, and it loads again whole.
        await ListEachAsync(members);
        Assert.InRange(memory.HeldBytes, 1, memory.BudgetBytes);
        await ListEachAsync([large]);
        Assert.Equal(loads + members.Count + 1, Loads(app));
    }

    [Fact]
    public void ABudgetOutsideItsRangeStopsTheAppAtStart()
    {
        // The checks the app runs at start, on the registration the app uses (through WebApplicationFactory a start
        // that fails this fast can surface as ObjectDisposedException instead).
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Platform:Lists:ProjectionMemoryMB"] = "0" }).Build();
        using var services = new ServiceCollection()
            .AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(configuration)
            .AddProjectionMemory()
            .BuildServiceProvider();

        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            services.GetRequiredService<Microsoft.Extensions.Options.IStartupValidator>().Validate());

        Assert.Contains("ProjectionMemoryMB", error.Message, StringComparison.Ordinal);
    }
}
