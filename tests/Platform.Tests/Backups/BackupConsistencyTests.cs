using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Backups;
using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;

namespace Platform.Tests.Backups;

/// <summary>
/// A backup is a snapshot: writes that land while a table is being read are in it whole or not at all. The writes
/// come at a chosen point, right after a table's first pass and before the backup checks what changed, which is
/// where a plain scan would already have missed them.
/// </summary>
public sealed class BackupConsistencyTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    // The hook below is per-test state on the app's services.
    protected override bool SharesApp => false;

    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    private static readonly string[] AuditRead = ["audit.read"];
    private static readonly string[] InventoryRead = ["inventory.read"];

    [Fact]
    public async Task Writes_while_a_table_is_read_are_in_the_backup_whole()
    {
        var locationA = await Admin.CreateLocationIdAsync("A");
        var locationB = await Admin.CreateLocationIdAsync("B");
        var bolt = await Admin.CreateItemAsync("BOLT-M8");
        var nut = await Admin.CreateItemAsync("NUT-M8");
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync($"/api/v1/inventory/items/{bolt.Id()}/movements", new { type = "in", quantity = 40, toLocationId = locationA }, Ct)).StatusCode);
        var doomed = await Admin.CreateItemAsync("DOOMED-1");
        Assert.Equal(HttpStatusCode.Created, (await Admin.PutAsJsonAsync("/api/v1/roles/auditor", new { permissions = AuditRead }, Ct)).StatusCode);

        var files = App.Services.GetRequiredService<BackupFiles>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        files.AfterFirstPass = async (tenant, table) =>
        {
            if (tenant.Value != Tenant.Id || !done.Add(table))
            {
                return;
            }

            if (table == "inventory")
            {
                // One transaction each: the item's quantity and its stock rows move together (logged rows), with the
                // movement row (not logged); an item is created and another archived.
                Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync($"/api/v1/inventory/items/{bolt.Id()}/movements",
                    new { type = "transfer", quantity = 15, fromLocationId = locationA, toLocationId = locationB }, Ct)).StatusCode);
                Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync($"/api/v1/inventory/items/{nut.Id()}/movements", new { type = "in", quantity = 7, toLocationId = locationB }, Ct)).StatusCode);
                await Admin.CreateItemAsync("LATE-1");
                Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/inventory/items/{doomed.Id()}", Ct)).StatusCode);
            }
            else if (table == "roles")
            {
                // A table without a change log: found by comparing keys and ETags.
                Assert.Equal(HttpStatusCode.Created, (await Admin.PutAsJsonAsync("/api/v1/roles/late-role", new { permissions = InventoryRead }, Ct)).StatusCode);
                Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync("/api/v1/roles/auditor", Ct)).StatusCode);
            }
        };

        var backup = await Admin.BackupAsync();

        Assert.Contains("inventory", done);
        var inventory = await App.ReadPartAsync(Tenant.Id, backup, "inventory");
        // Doubles are stored as ["d", text] so they come back as doubles.
        string Quantity(string key) => inventory.Single(r => r.GetProperty("k").GetString() == key).GetProperty("p").GetProperty("Quantity")[1].GetString()!;
        Assert.Equal("40", Quantity($"i:{bolt.Id()}"));
        Assert.Equal("25", Quantity($"s:{bolt.Id()}:{locationA}"));
        Assert.Equal("15", Quantity($"s:{bolt.Id()}:{locationB}"));
        Assert.Equal("7", Quantity($"i:{nut.Id()}"));
        Assert.Equal("7", Quantity($"s:{nut.Id()}:{locationB}"));
        var skus = inventory.Where(r => r.GetProperty("k").GetString()!.StartsWith("i:", StringComparison.Ordinal)).Select(r => r.GetProperty("p").GetProperty("Sku").GetString()).ToHashSet();
        Assert.Contains("LATE-1", skus);
        Assert.NotEqual(System.Text.Json.JsonValueKind.Undefined,
            inventory.Single(r => r.GetProperty("k").GetString() == $"i:{doomed.Id()}").GetProperty("p").TryGetProperty("ArchivedAt", out var archived) ? archived.ValueKind : System.Text.Json.JsonValueKind.Undefined);
        Assert.Equal(System.Text.Json.JsonValueKind.Array, archived.ValueKind);
        // The movement rows (outside the change log) agree with the quantities: three movements, the transfer included.
        Assert.Equal(3, inventory.Where(r => r.GetProperty("p").TryGetProperty("Type", out var type) && type.GetString() is "in" or "transfer")
            .Select(r => r.GetProperty("p").GetProperty("Id").GetString()).Distinct().Count());

        var roles = await App.ReadPartAsync(Tenant.Id, backup, "roles");
        Assert.Contains(roles, r => r.GetProperty("k").GetString()!.Contains("late-role", StringComparison.Ordinal));
        Assert.DoesNotContain(roles, r => r.GetProperty("k").GetString()!.Contains("auditor", StringComparison.Ordinal));

        // What the manifest says still matches the rewritten parts.
        Assert.Equal(inventory.Count, backup.Part("inventory").GetProperty("count").GetInt64());
        Assert.True(backup.GetProperty("verified").GetBoolean());
    }
}
