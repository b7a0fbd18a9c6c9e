using Microsoft.DurableTask;
using Platform.Functions.Mail;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Workflows;

public sealed record MailStepInput(string TenantId, string WorkflowId, string WorkflowName, string RunId, string Subject, string Message, MailRecipients To);

/// <summary>
/// A mail step's mail (template <c>workflow</c>): the step's subject and text, to the active users of a role or the
/// listed active users of the tenant. Ids that name no active user are passed over. Sent at least once: a run of the
/// activity cut off mid-way sends again to those it had reached.
/// </summary>
public sealed class WorkflowMail(IMailSender sender, TenantDirectory tenants, UserProjections users)
{
    public const string Template = "workflow";

    public async Task<int> SendAsync(MailStepInput input, CancellationToken cancellationToken)
    {
        var tenant = new TenantId(input.TenantId);
        var tenantName = (await tenants.GetAsync(tenant, cancellationToken))?.Name ?? "your tenant";
        var listed = input.To.UserIds?.ToHashSet(StringComparer.Ordinal);
        var sent = 0;
        foreach (var user in await users.RowsAsync(tenant, cancellationToken))
        {
            var view = user.View;
            if (view.Status != UserStatus.Active ||
                (input.To.Role is { } role ? !view.Roles.Contains(role) : listed?.Contains(view.Id) != true))
            {
                continue;
            }

            await sender.SendAsync(new OutgoingMail(view.Email, view.DisplayName, MailKind.Workflow, new Dictionary<string, string>
            {
                [MailPlaceholders.DisplayName] = view.DisplayName,
                [MailPlaceholders.TenantName] = tenantName,
                [MailPlaceholders.WorkflowName] = input.WorkflowName,
                [MailPlaceholders.Subject] = input.Subject,
                [MailPlaceholders.Message] = input.Message,
                [MailPlaceholders.RunId] = input.RunId,
            }), cancellationToken);
            sent++;
        }

        return sent;
    }
}

public sealed class WorkflowMailStep(WorkflowMail mail) : TaskActivity<MailStepInput, int>
{
    public const string Name = "WorkflowMail";

    public override Task<int> RunAsync(TaskActivityContext context, MailStepInput input) => mail.SendAsync(input, CancellationToken.None);
}
