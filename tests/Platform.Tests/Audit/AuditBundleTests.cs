using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Audit;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;
using Platform.Tests.Users;

namespace Platform.Tests.Audit;

/// <summary>
/// The events a bulk change commits together are stored as bundle rows, and every reader of the trail still sees one
/// entry per event: the audit route (filters, paging), the export, a user's data export and the purge's scrub.
/// </summary>
public sealed class AuditBundleTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override IDictionary<string, string?>? Settings => PlatformApp.RunsJobs();

    private const int Created = 130;

    private static object Create(string email) => new { op = "create", data = new { email, displayName = "Bulk " + email } };

    /// <summary>Creates the users in one bulk call; their ids, in order.</summary>
    private async Task<List<string>> BulkCreateAsync(string prefix)
    {
        var response = await Admin.BulkAsync(Enumerable.Range(0, Created).Select(i => Create($"{prefix}{i:D3}@example.com")));
        var results = (await response.ReadJsonAsync(HttpStatusCode.OK)).GetProperty("results").EnumerateArray().ToList();
        Assert.All(results, r => Assert.Equal(201, r.GetProperty("status").GetInt32()));
        return [.. results.Select(r => r.Id())];
    }

    private async Task<List<AuditEntry>> StoredRowsAsync(string action) =>
        await App.Services.GetRequiredService<AuditTrail>().Entries(new TenantId(Tenant.Id))
            .QueryWhereAsync<AuditEntry>($"Action eq {action}", cancellationToken: Ct).ToListAsync(Ct);

    private async Task<List<JsonElement>> CreatedEntriesAsync(int pageSize, string action = "user.created")
    {
        var pages = await Admin.PagesAsync($"/api/v1/audit?pageSize={pageSize}&action={action}");
        Assert.All(pages, p => Assert.True(p.Count <= pageSize));
        return [.. pages.SelectMany(p => p)];
    }

    [Fact]
    public async Task A_bulk_create_is_stored_in_bundles_and_listed_as_one_entry_per_user()
    {
        var ids = await BulkCreateAsync("bundle");

        var entries = (await CreatedEntriesAsync(1000)).Where(e => e.Str("targetId") != Tenant.AdminId).ToList();

        Assert.Equal(ids, entries.Select(e => e.Str("targetId")));
        Assert.All(entries, e => Assert.Equal(Tenant.AdminId, e.Str("actorId")));
        Assert.All(entries, e => Assert.Equal("user", e.Str("targetType")));
        Assert.Equal("bundle007@example.com", entries[7].GetProperty("changes").Str("email"));
        Assert.Equal(Created, entries.Select(e => e.Str("id")).Distinct().Count());
        var stored = await StoredRowsAsync("user.created");
        Assert.Contains(stored, r => r.Bundled == true);
        Assert.True(stored.Count < Created, $"{stored.Count} rows for {Created + 1} events");
    }

    [Fact]
    public async Task Paging_through_bundles_in_small_pages_gives_every_entry_once_in_order()
    {
        await BulkCreateAsync("paged");
        var whole = await CreatedEntriesAsync(1000);

        var paged = await CreatedEntriesAsync(7);

        Assert.Equal(whole.Select(e => e.Str("id")), paged.Select(e => e.Str("id")));
        var ids = paged.Select(e => e.Str("id")).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
    }

    [Fact]
    public async Task A_target_filter_finds_the_one_entry_of_a_user_inside_a_bundle()
    {
        var ids = await BulkCreateAsync("target");

        foreach (var id in new[] { ids[0], ids[64], ids[^1] })
        {
            var entries = (await Admin.PagesAsync($"/api/v1/audit?pageSize=5&targetId={id}")).SelectMany(p => p).ToList();
            var entry = Assert.Single(entries);
            Assert.Equal("user.created", entry.Str("action"));
            Assert.Equal(id, entry.Str("targetId"));
        }
    }

    [Fact]
    public async Task The_export_and_a_users_data_export_see_each_bundled_event()
    {
        var ids = await BulkCreateAsync("export");

        var rows = await App.ExportAsync(AuditExport.Kind, await App.CallerAsync(Tenant), "action eq 'user.created'");
        var targets = rows.Column(App.ExportKind(AuditExport.Kind), "targetId");
        Assert.Equal(ids, targets.Where(t => t != Tenant.AdminId));

        var export = await Admin.GetJsonAsync($"/api/v1/users/{ids[42]}/export");
        var entry = Assert.Single(export.GetProperty("auditEntries").EnumerateArray());
        Assert.Equal(ids[42], entry.Str("targetId"));
        Assert.Equal("export042@example.com", entry.GetProperty("changes").Str("email"));
    }

    [Fact]
    public async Task Purging_a_user_created_in_bulk_scrubs_their_entry_and_leaves_the_others()
    {
        var ids = await BulkCreateAsync("purge");

        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/users/{ids[5]}?purge=true", Ct)).StatusCode);

        var entries = (await CreatedEntriesAsync(1000)).ToDictionary(e => e.Str("targetId"));
        Assert.Equal(JsonValueKind.Null, entries[ids[5]].GetProperty("changes").ValueKind);
        Assert.Equal(JsonValueKind.Null, entries[ids[5]].GetProperty("ip").ValueKind);
        Assert.Equal("purge006@example.com", entries[ids[6]].GetProperty("changes").Str("email"));
        Assert.Equal("purge004@example.com", entries[ids[4]].GetProperty("changes").Str("email"));
        Assert.Equal(entries[ids[4]].GetProperty("ip").ValueKind, entries[ids[6]].GetProperty("ip").ValueKind);
    }

    [Fact]
    public async Task Two_purges_of_users_in_one_bundle_at_once_scrub_both()
    {
        var ids = await BulkCreateAsync("twice");

        var purges = await Task.WhenAll(
            Admin.DeleteAsync($"/api/v1/users/{ids[10]}?purge=true", Ct),
            Admin.DeleteAsync($"/api/v1/users/{ids[11]}?purge=true", Ct));

        Assert.All(purges, p => Assert.Equal(HttpStatusCode.NoContent, p.StatusCode));
        var entries = (await CreatedEntriesAsync(1000)).ToDictionary(e => e.Str("targetId"));
        Assert.Equal(JsonValueKind.Null, entries[ids[10]].GetProperty("changes").ValueKind);
        Assert.Equal(JsonValueKind.Null, entries[ids[11]].GetProperty("changes").ValueKind);
        Assert.Equal("twice012@example.com", entries[ids[12]].GetProperty("changes").Str("email"));
    }

    [Fact]
    public async Task An_import_audits_each_item_it_creates_in_bundle_rows()
    {
        var csv = new System.Text.StringBuilder("sku,name\n");
        for (var i = 0; i < 300; i++)
        {
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"BND-{i:D4},\"Bundled \"\"{i}\"\"\"\n");
        }

        using var content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(csv.ToString()));
        content.Headers.ContentType = new("text/csv");
        var started = await Admin.PostAsync("/api/v1/jobs/imports?kind=inventory-items", content, Ct);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var job = await Admin.FinishedJobAsync((await started.ReadJsonAsync(HttpStatusCode.Accepted)).Str("id"));
        Assert.Equal("succeeded", job.Str("status"));

        var entries = (await Admin.PagesAsync("/api/v1/audit?pageSize=1000&action=inventory.item.created")).SelectMany(p => p).ToList();
        Assert.Equal(300, entries.Count);
        Assert.Equal(Enumerable.Range(0, 300).Select(i => $"BND-{i:D4}"), entries.Select(e => e.GetProperty("changes").Str("sku")).Order(StringComparer.Ordinal));
        Assert.Equal("Bundled \"7\"", entries.Single(e => e.GetProperty("changes").Str("sku") == "BND-0007").GetProperty("changes").Str("name"));
        Assert.True((await StoredRowsAsync("inventory.item.created")).Count <= 30, "the import's events are stored in bundles");
    }

    [Fact]
    public async Task A_bundle_never_outgrows_a_table_property_whatever_the_changes_hold()
    {
        var trail = App.Services.GetRequiredService<AuditTrail>();
        var ids = App.Services.GetRequiredService<MonotonicIds>();
        var at = Clock.GetUtcNow();
        var actor = Actor.User(Tenant.AdminId, null);
        // Quotes and non-ASCII text are what escaping lengthens most.
        var heavy = string.Concat(Enumerable.Repeat("\"é\u2028", 300));
        IReadOnlyList<PublishedEvent> row =
        [
            .. Enumerable.Range(0, 60).Select(i => new PublishedEvent(ids.Next(), at,
                new PlatformEvent("test.heavy", actor, "thing", $"thing-{i}", new Dictionary<string, object?> { ["note"] = heavy }))),
        ];

        await trail.OnOutboxRowsAsync(new TenantId(Tenant.Id), [row], Ct);

        var stored = await StoredRowsAsync("test.heavy");
        Assert.All(stored, r => Assert.True(r.Packed is { Length: <= AuditTrail.MaxPackedBytes } || (r.Bundle ?? r.Changes)!.Length <= AuditTrail.MaxBundleChars));
        Assert.True(stored.Count > 1);
        var expanded = stored.SelectMany(AuditTrail.Expand).ToList();
        Assert.Equal(row.Select(e => e.Id), expanded.Select(e => e.RowKey));
        Assert.All(expanded, e => Assert.Equal(heavy, JsonDocument.Parse(e.Changes!).RootElement.GetProperty("note").GetString()));
    }

    [Fact]
    public async Task An_outbox_row_relayed_again_adds_no_entry()
    {
        var trail = App.Services.GetRequiredService<AuditTrail>();
        var tenant = new TenantId(Tenant.Id);
        var ids = App.Services.GetRequiredService<MonotonicIds>();
        var at = Clock.GetUtcNow();
        var actor = Actor.User(Tenant.AdminId, "203.0.113.9");
        IReadOnlyList<PublishedEvent> row =
        [
            .. Enumerable.Range(0, 5).Select(i => new PublishedEvent(ids.Next(), at, new PlatformEvent("test.bundled", actor, "thing", $"thing-{i}"))),
        ];

        await trail.OnOutboxRowsAsync(tenant, [row], Ct);
        await trail.OnOutboxRowsAsync(tenant, [row], Ct);

        var stored = Assert.Single(await StoredRowsAsync("test.bundled"));
        Assert.Equal(row.Select(e => e.Id), AuditTrail.Expand(stored).Select(e => e.RowKey));
        Assert.Equal(row.Select(e => e.Event.TargetId), AuditTrail.Expand(stored).Select(e => e.TargetId));
    }

    [Fact]
    public async Task Bundles_are_stored_packed_and_one_that_does_not_pack_small_as_text()
    {
        var trail = App.Services.GetRequiredService<AuditTrail>();
        var ids = App.Services.GetRequiredService<MonotonicIds>();
        var at = Clock.GetUtcNow();
        var actor = Actor.User(Tenant.AdminId, null);
        // Random letters and digits pack to about three quarters of their length: bundles of them stay text.
        var random = new Random(7);
        string Noise(int length) => new([.. Enumerable.Range(0, length).Select(_ => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[random.Next(62)])]);
        IReadOnlyList<PublishedEvent> small =
        [
            .. Enumerable.Range(0, 48).Select(i => new PublishedEvent(ids.Next(), at,
                new PlatformEvent("test.packed", actor, "thing", $"thing-{i}", new Dictionary<string, object?> { ["sku"] = $"SKU-{i:D4}", ["name"] = $"Thing \"{i}\"" }))),
        ];
        IReadOnlyList<PublishedEvent> varied =
        [
            .. Enumerable.Range(0, 20).Select(i => new PublishedEvent(ids.Next(), at,
                new PlatformEvent("test.varied", actor, "thing", $"thing-{i}", new Dictionary<string, object?> { ["note"] = Noise(2_500) }))),
        ];

        await trail.OnOutboxRowsAsync(new TenantId(Tenant.Id), [small, varied], Ct);

        var packed = Assert.Single(await StoredRowsAsync("test.packed"));
        Assert.Null(packed.Bundle);
        Assert.True(packed.Packed is { Length: > 0 and <= 4_096 }, $"{packed.Packed?.Length} bytes for 48 events");
        Assert.Equal(small.Select(e => (e.Id, e.Event.TargetId)), AuditTrail.Expand(packed).Select(e => (e.RowKey, e.TargetId)));
        Assert.Equal("Thing \"7\"", JsonDocument.Parse(AuditTrail.Expand(packed).ElementAt(7).Changes!).RootElement.GetProperty("name").GetString());

        var text = await StoredRowsAsync("test.varied");
        Assert.Contains(text, r => r.Bundled == true && r.Bundle is not null && r.Packed is null);
        Assert.Equal(varied.Select(e => e.Id), text.SelectMany(AuditTrail.Expand).Select(e => e.RowKey));

        var listed = await CreatedEntriesAsync(1000, "test.packed");
        Assert.Equal(small.Select(e => e.Event.TargetId), listed.Select(e => e.Str("targetId")));
        Assert.Equal("SKU-0012", listed[12].GetProperty("changes").Str("sku"));
    }

    [Fact]
    public async Task A_bundle_written_as_text_by_the_earlier_version_is_still_listed()
    {
        var ids = App.Services.GetRequiredService<MonotonicIds>();
        var (first, second) = (ids.Next(), ids.Next());
        await App.Services.GetRequiredService<AuditTrail>().Entries(new TenantId(Tenant.Id)).AddAsync(new AuditEntry
        {
            RowKey = first,
            At = Clock.GetUtcNow(),
            Action = "test.earlier",
            ActorType = "user",
            ActorId = Tenant.AdminId,
            TargetType = "thing",
            Bundled = true,
            Bundle = $$"""[{"id":"{{first}}","targetId":"thing-1","changes":"{\"n\":1}"},{"id":"{{second}}","targetId":"thing-2"}]""",
        }, Ct);

        var listed = await CreatedEntriesAsync(1000, "test.earlier");

        Assert.Equal([first, second], listed.Select(e => e.Str("id")));
        Assert.Equal(["thing-1", "thing-2"], listed.Select(e => e.Str("targetId")));
        Assert.Equal(1, listed[0].GetProperty("changes").GetProperty("n").GetInt32());
    }

    [Theory]
    [InlineData("damaged")]
    [InlineData("unpacks past its bound")]
    public async Task A_packed_bundle_that_cannot_be_read_lists_nothing_and_breaks_no_page(string how)
    {
        var ids = App.Services.GetRequiredService<MonotonicIds>();
        var entries = App.Services.GetRequiredService<AuditTrail>().Entries(new TenantId(Tenant.Id));
        byte[] packed;
        if (how == "damaged")
        {
            packed = [0x78, 0x01, 0xde, 0xad, 0xbe, 0xef];
        }
        else
        {
            // A well-formed list of 20,000 events (900 KB) packs to a few kilobytes: read, it would list them all.
            var id = ids.Next();
            var bomb = new MemoryStream();
            using (var zlib = new System.IO.Compression.ZLibStream(bomb, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
            {
                zlib.Write(System.Text.Encoding.UTF8.GetBytes("[" + string.Join(',', Enumerable.Repeat($$"""{"id":"{{id}}","targetId":"bomb"}""", 20_000)) + "]"));
            }

            packed = bomb.ToArray();
        }

        await entries.AddAsync(new AuditEntry
        {
            RowKey = ids.Next(), At = Clock.GetUtcNow(), Action = "test.unreadable", ActorType = "user", ActorId = Tenant.AdminId,
            TargetType = "thing", Bundled = true, Packed = packed,
        }, Ct);
        var after = ids.Next();
        await entries.AddAsync(new AuditEntry { RowKey = after, At = Clock.GetUtcNow(), Action = "test.unreadable", ActorType = "user", ActorId = Tenant.AdminId, TargetType = "thing", TargetId = "after" }, Ct);

        var listed = await CreatedEntriesAsync(1000, "test.unreadable");

        Assert.Equal([after], listed.Select(e => e.Str("id")));
    }
}
