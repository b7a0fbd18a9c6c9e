using System.Text.Json;
using Platform.Functions.Auth;
using Platform.Functions.Inventory;
using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Tenants;

/// <summary>
/// Fills the new demo tenant with something to look at - people with roles, a location tree, items with stock and
/// movements, one of them low on stock (so an alert is open), finished jobs, a first report and a scheduled workflow -
/// through the same commands the API runs, so the demo shows exactly what a tenant's own calls would produce (audit
/// trail included).
/// </summary>
public sealed partial class DemoData(
    Sessions sessions, UserCommands users, LocationCommands locations, ItemCommands items, MovementCommands movements, JobCommands jobs,
    Workflows.DemoWorkflows workflows, JobTypes jobTypes, Schedules.ScheduleCommands schedules, TimeProvider time, ILogger<DemoData> logger)
{
    public async Task SeedAsync(TenantId tenant, string adminId, CancellationToken cancellationToken)
    {
        // Commands check the caller's permissions against a live session, as for any request: the seeding runs as the
        // admin on a session of its own, ended when it is done.
        var (session, _) = await sessions.StartAsync(tenant, adminId, "demo seeding", null, cancellationToken);
        var admin = new Caller(tenant, adminId, session.Id);
        try
        {
            await users.CreateAsync(admin, new UserInput("maria@demo.example", "Maria Manager", null, [BuiltInRoles.Manager], null, null), cancellationToken);
            await users.CreateAsync(admin, new UserInput("ulf@demo.example", "Ulf User", null, null, null, null), cancellationToken);

            var warehouse = (await locations.CreateAsync(admin, new LocationInput("Main warehouse", "WH1", null, "Receiving and bulk storage"), cancellationToken)).Value;
            var aisle = (await locations.CreateAsync(admin, new LocationInput("Aisle 3", "A3", warehouse.Id, "Fasteners and small parts"), cancellationToken)).Value;
            var bolts = await ItemAsync(admin, new { sku = "BOLT-M10", name = "Bolt M10", category = "fasteners", unit = "pcs", unitCost = 0.25, reorderPoint = 100, reorderQuantity = 500, locationId = aisle.Id, supplier = "Acme" }, cancellationToken);
            var glue = await ItemAsync(admin, new { sku = "GLUE-1", name = "Wood glue 1 l", category = "supplies", unit = "bottle", unitCost = 6.5, reorderPoint = 5, locationId = warehouse.Id }, cancellationToken);
            var saw = await ItemAsync(admin, new { sku = "SAW-600", name = "Hand saw 600 mm", category = "tools", unit = "pcs", unitCost = 24.0, reorderPoint = 2, locationId = warehouse.Id }, cancellationToken);

            await MoveAsync(admin, bolts, new MovementInput("in", 400, null, null, aisle.Id, "B-2026-11", "Acme", "PO-1001"), cancellationToken);
            await MoveAsync(admin, bolts, new MovementInput("out", 320, "Order 4711", aisle.Id, null, null, null, null), cancellationToken);
            await MoveAsync(admin, glue, new MovementInput("in", 24, null, null, warehouse.Id, null, "Woodcraft", "PO-1002"), cancellationToken);
            await MoveAsync(admin, saw, new MovementInput("in", 6, null, null, warehouse.Id, null, "Toolworks", "PO-1003"), cancellationToken);
            await MoveAsync(admin, saw, new MovementInput("transfer", 2, null, warehouse.Id, aisle.Id, null, null, null), cancellationToken);

            // Two finished jobs to look at: an import of a supplier's price list with one bad row (so there is an
            // error report), and an export of the items to xlsx. The session must outlive them: they run as the admin.
            var import = await jobs.StartImportAsync(admin, "inventory-items", ImportMode.Create, "csv", BinaryData.FromString(
                "sku,name,category,unit,unitCost,reorderPoint\nNUT-M10,Nut M10,fasteners,pcs,0.08,200\nWASHER-M10,Washer M10,fasteners,pcs,0.03,200\nSCREW-X,,fasteners,pcs,0.05,10\n"),
                cancellationToken);
            await WaitAsync(tenant, import.Id, cancellationToken);
            var export = await jobs.StartAsync(admin, ExportOrchestrator.Name, new ExportParameters("inventory-items", "xlsx", null), cancellationToken);
            await WaitAsync(tenant, export.Id, cancellationToken);

            await workflows.SeedAsync(admin, cancellationToken);
            await ScheduleAndReportAsync(admin, cancellationToken);

            // A first backup to look at under /api/v1/backups; the tenant's daily one comes at night.
            if (jobTypes.Names.Contains(Backups.BackupOrchestrator.Name))
            {
                var backup = await jobs.StartAsync(admin, Backups.BackupOrchestrator.Name, new Backups.BackupParameters(), cancellationToken, Ids.New(time));
                await WaitAsync(tenant, backup.Id, cancellationToken);
            }
        }
        catch (InvalidOperationException ex)
        {
            // A command refused (its Outcome had no value): the demo stays as far as it got.
            LogIncomplete(logger, ex.Message);
        }
        finally
        {
            await sessions.RevokeAsync(tenant, session, CancellationToken.None);
        }
    }

    /// <summary>
    /// Weekly restock on a schedule (Mondays 06:00, Berlin time) and a first inventory-status report, so what runs on
    /// its own shows too. Both need the report job type, as the workflow does.
    /// </summary>
    private async Task ScheduleAndReportAsync(Caller admin, CancellationToken cancellationToken)
    {
        if (!jobTypes.Names.Contains("report"))
        {
            return;
        }

        var validation = new Http.Validation();
        var input = Schedules.ScheduleInput.Read(JsonSerializer.SerializeToElement(new
        {
            name = "Weekly restock",
            cron = "0 6 * * MON",
            timeZone = "Europe/Berlin",
            target = new { workflow = new { id = Workflows.DemoWorkflows.Id, input = new { } } },
        }, JsonSerializerOptions.Web), validation);
        if (!validation.IsValid || (await schedules.CreateAsync(admin, input, cancellationToken)).Failed(out _, out _))
        {
            LogIncomplete(logger, "the weekly restock schedule was refused");
        }

        var report = await jobTypes.StartAsync(admin, "report",
            JsonSerializer.SerializeToElement(new { type = "inventory-status", format = "html" }, JsonSerializerOptions.Web), Ids.New(time), cancellationToken);
        if (report.Failed(out var error, out _))
        {
            LogIncomplete(logger, "the first report was refused: " + error.Message);
            return;
        }

        await WaitAsync(admin.Tenant, report.Value.Id, cancellationToken);
    }

    private async Task WaitAsync(TenantId tenant, string jobId, CancellationToken cancellationToken)
    {
        if (await jobs.WaitAsync(tenant, jobId, TimeSpan.FromMinutes(2), cancellationToken) is not { IsFinished: true })
        {
            LogIncomplete(logger, $"job {jobId} did not finish within 2 minutes");
        }
    }

    private async Task<string> ItemAsync(Caller admin, object body, CancellationToken cancellationToken) =>
        (await items.CreateAsync(admin, JsonSerializer.SerializeToElement(body, JsonSerializerOptions.Web), cancellationToken)).Value.Id;

    private async Task MoveAsync(Caller admin, string itemId, MovementInput movement, CancellationToken cancellationToken) =>
        _ = (await movements.RecordAsync(admin, itemId, movement, cancellationToken)).Value;

    [LoggerMessage(Level = LogLevel.Warning, Message = "The demo tenant's sample data is incomplete: {Reason}")]
    private static partial void LogIncomplete(ILogger logger, string reason);
}
