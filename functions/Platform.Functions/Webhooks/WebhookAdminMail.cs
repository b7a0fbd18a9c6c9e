using Platform.Functions.Mail;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Webhooks;

/// <summary>Tells the tenant's active admins that an endpoint was disabled; a mail failure is logged, never fatal.</summary>
public sealed partial class WebhookAdminMail(IMailSender sender, TenantDirectory tenants, UserProjections users, TimeProvider time, ILogger<WebhookAdminMail> logger)
{
    public async Task SendDisabledAsync(TenantId tenant, EndpointEntity endpoint, string reason, CancellationToken cancellationToken)
    {
        var tenantName = (await tenants.GetAsync(tenant, cancellationToken))?.Name ?? "your tenant";
        var why = reason == "gone"
            ? "it answered 410 Gone, which asks senders to stop."
            : "its deliveries have failed without a success for too long.";
        foreach (var user in await users.RowsAsync(tenant, cancellationToken))
        {
            if (user.View.Status != UserStatus.Active || !user.View.Roles.Contains(BuiltInRoles.Admin))
            {
                continue;
            }

            try
            {
                await sender.SendAsync(new OutgoingMail(user.View.Email, user.View.DisplayName, MailKind.WebhookEndpointDisabled, new Dictionary<string, string>
                {
                    [MailPlaceholders.DisplayName] = user.View.DisplayName,
                    [MailPlaceholders.TenantName] = tenantName,
                    [MailPlaceholders.At] = MailPlaceholders.FormatAt(time.GetUtcNow()),
                    [MailPlaceholders.Url] = endpoint.ShownUrl,
                    [MailPlaceholders.Reason] = why,
                }), cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogMailFailed(logger, ex, endpoint.Id);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not mail an admin that webhook endpoint {EndpointId} was disabled")]
    private static partial void LogMailFailed(ILogger logger, Exception exception, string endpointId);
}
