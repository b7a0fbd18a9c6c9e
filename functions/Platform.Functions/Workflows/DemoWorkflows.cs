using System.Text.Json;
using Platform.Functions.Auth;
using Platform.Functions.Jobs;
using Platform.Functions.Roles;

namespace Platform.Functions.Workflows;

/// <summary>
/// The demo tenant's "weekly restock" workflow: an inventory-status report, then a condition on its low-stock figure,
/// a mail asking the managers to approve, the approval by a manager (two days), and an <c>inventory.reorder</c> webhook carrying the
/// figure, the report and where the reorder suggestions are. Its first step is a <c>report</c> job: a workflow naming
/// a job type the app does not have is refused on save, so the workflow is seeded only when that type is registered.
/// </summary>
public sealed partial class DemoWorkflows(WorkflowStore workflows, JobTypes jobTypes, ILogger<DemoWorkflows> logger)
{
    public const string Id = "weekly-restock";
    public const string ReorderEvent = "inventory.reorder";

    public async Task SeedAsync(Caller admin, CancellationToken cancellationToken)
    {
        if (!jobTypes.Names.Contains("report"))
        {
            LogSkipped(logger, Id);
            return;
        }

        var steps = JsonSerializer.SerializeToElement(new object[]
        {
            new { id = "report", kind = StepKinds.Job, job = new { type = "report", parameters = new { type = "inventory-status", format = "html" } } },
            new { id = "low-stock", kind = StepKinds.Condition, filter = "lowStockCount gt 0" },
            new
            {
                id = "ask",
                kind = StepKinds.Mail,
                template = WorkflowMail.Template,
                to = "role:manager",
                subject = "Stock is low: approve the weekly reorder",
                message = "This week's inventory-status report found items at or below their reorder point. Approve the reorder by sending the event approve to the run named below (POST /api/v1/workflows/weekly-restock/runs/<run id>/events/approve; data.approved false declines).",
            },
            new { id = "approve", kind = StepKinds.Approval, timeout = "P2D", approvers = "role:" + BuiltInRoles.Manager },
            new
            {
                id = "reorder",
                kind = StepKinds.Webhook,
                @event = ReorderEvent,
                data = new { lowStockCount = "${steps.report.lowStockCount}", report = "${steps.report.resultUrl}", suggestions = "/api/v1/inventory/reorder-suggestions" },
            },
        }, JsonSerializerOptions.Web);
        var saved = await workflows.PutAsync(admin, Id, new WorkflowRequest("Weekly restock", steps), _ => true, mustExist: false, cancellationToken);
        if (saved.Failed(out var error, out _))
        {
            LogRefused(logger, Id, error.Fields is { } fields ? string.Join("; ", fields.Errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")) : error.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The demo workflow {Id} is not seeded: this app has no report job type")]
    private static partial void LogSkipped(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The demo workflow {Id} was refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string id, string reason);
}
