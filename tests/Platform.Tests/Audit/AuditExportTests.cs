using System.Globalization;
using System.Net;
using System.Text.Json;
using Platform.Functions.Audit;
using Platform.Functions.Auth;
using Platform.Functions.Query;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Audit;

/// <summary>The <c>audit</c> export kind: the tenant's audit trail, oldest first, filtered in the filter language.</summary>
public sealed class AuditExportTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    private static string Iso(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    private Task<Caller> CallerAsync() => App.CallerAsync(Tenant);

    private async Task<IReadOnlyList<IReadOnlyList<string?>>> ExportAsync(string? filter) => await App.ExportAsync(AuditExport.Kind, await CallerAsync(), filter);

    private IReadOnlyList<string?> Column(IReadOnlyList<IReadOnlyList<string?>> rows, string column) => rows.Column(App.ExportKind(AuditExport.Kind), column);

    [Fact]
    public async Task EntriesAreExportedOldestFirstWithEveryField()
    {
        Clock.Advance(TimeSpan.FromSeconds(1));
        var ada = await Admin.CreateUserIdAsync("ada@example.com");
        Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchUserAsync(ada, new { displayName = "Ada L." })).StatusCode);

        var rows = await ExportAsync($"targetId eq '{ada}'");

        Assert.Equal(["id", "at", "action", "actorType", "actorId", "onBehalfOf", "ip", "targetType", "targetId", "changes"], App.ExportKind(AuditExport.Kind).Columns);
        Assert.Equal(["user.created", "user.updated"], Column(rows, "action"));
        Assert.Equal(["user", "user"], Column(rows, "actorType"));
        Assert.Equal([Tenant.AdminId, Tenant.AdminId], Column(rows, "actorId"));
        Assert.Equal(["user", "user"], Column(rows, "targetType"));
        Assert.Equal("Ada L.", JsonDocument.Parse(Column(rows, "changes")[1]!).RootElement.GetProperty("displayName").GetString());
        var at = Column(rows, "at").Select(a => DateTimeOffset.Parse(a!, CultureInfo.InvariantCulture)).ToList();
        Assert.True(at[0] < at[1]);
        Assert.All(Column(rows, "at"), a => Assert.EndsWith("Z", a));

        // The same entries the audit route shows.
        var listed = (await Admin.GetJsonAsync($"/api/v1/audit?targetId={ada}&pageSize=100")).GetProperty("items").EnumerateArray().Select(e => e.Str("id"));
        Assert.Equal(listed, Column(rows, "id"));
    }

    [Fact]
    public async Task TheFilterNarrowsByTimeActionAndActor()
    {
        Clock.Advance(TimeSpan.FromSeconds(90));
        var early = await Admin.CreateUserIdAsync("early@example.com");
        Clock.Advance(TimeSpan.FromSeconds(90));
        var from = Clock.GetUtcNow();
        var middle = await Admin.CreateUserIdAsync("middle@example.com");
        Clock.Advance(TimeSpan.FromSeconds(90));
        var to = Clock.GetUtcNow();
        Clock.Advance(TimeSpan.FromSeconds(90));
        var late = await Admin.CreateUserIdAsync("late@example.com");

        Assert.Equal([middle], Column(await ExportAsync($"action eq 'user.created' and at ge {Iso(from)} and at le {Iso(to)}"), "targetId"));
        Assert.Equal([early, late], Column(await ExportAsync($"action eq 'user.created' and targetId ne '{Tenant.AdminId}' and (at lt {Iso(from)} or at gt {Iso(to)})"), "targetId"));
        Assert.Equal([late], Column(await ExportAsync($"at gt '{Iso(to)}' and targetType eq 'user'"), "targetId"));
        Assert.Empty(await ExportAsync($"at ge {Iso(to)} and at le {Iso(from)}"));
        Assert.Equal([early, middle, late], Column(await ExportAsync($"actorId eq '{Tenant.AdminId}' and startswith(action, 'user.') and targetId ne '{Tenant.AdminId}'"), "targetId"));
    }

    [Fact]
    public async Task AnotherTenantsEntriesAreNeverExported()
    {
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        var theirs = await otherAdmin.CreateUserIdAsync("theirs@example.com");

        var rows = await ExportAsync(null);

        Assert.NotEmpty(rows);
        Assert.DoesNotContain(theirs, Column(rows, "targetId"));
        Assert.DoesNotContain(other.AdminId, Column(rows, "actorId"));
        Assert.Empty(await ExportAsync($"targetId eq '{theirs}'"));
    }

    [Fact]
    public async Task ABadFilterIsRefusedWithTheParsersMessage()
    {
        var kind = App.ExportKind(AuditExport.Kind);

        Assert.Null(kind.CheckFilter(null));
        Assert.Null(kind.CheckFilter("action eq 'user.created' and at ge 2026-01-01"));
        Assert.Equal("Unknown field 'changes' at position 0", kind.CheckFilter("changes eq 'x'"));
        Assert.Equal("Unknown field 'fields.x' at position 0", kind.CheckFilter("fields.x eq 'x'"));
        Assert.Equal(Parse("at gt 'yesterday'"), kind.CheckFilter("at gt 'yesterday'"));
        Assert.Equal(Parse("action eq"), kind.CheckFilter("action eq"));
        await Assert.ThrowsAsync<FilterException>(() => ExportAsync("action eq"));
    }

    private static string Parse(string filter) => Assert.Throws<FilterException>(() => FilterParser.Parse(filter, AuditExport.FilterSchema)).Message;

    [Fact]
    public async Task ACallerWithoutAuditReadExportsNothing()
    {
        var userId = await Admin.CreateUserIdAsync("plain@example.com", Accounts.Password, ["user"]);
        var user = await App.CallerAsync(Tenant, "plain@example.com", userId);

        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => App.ExportAsync(AuditExport.Kind, user));
    }
}
