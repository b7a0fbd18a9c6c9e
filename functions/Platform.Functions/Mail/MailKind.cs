using System.Globalization;

namespace Platform.Functions.Mail;

/// <summary>The kinds of mail the platform sends; each has a plain-text and an HTML template under Mail/Templates.</summary>
public enum MailKind
{
    PasswordReset,
    EmailVerification,

    // Security notifications: they tell the owner of the address that something changed, so an unexpected one is a
    // signal that the account is in someone else's hands.
    PasswordChanged,
    MfaEnabled,
    MfaDisabled,

    /// <summary>To the tenant's admins: a webhook endpoint was disabled (410 Gone, or failing for days).</summary>
    WebhookEndpointDisabled,

    /// <summary>To a report's recipients: the report is ready, with a link to its download route.</summary>
    ReportReady,
    /// <summary>A workflow's mail step: the tenant's subject and text, to users of a role or listed users.</summary>
    Workflow,
}

/// <summary>
/// The placeholder names of <see cref="OutgoingMail.Values"/>. Every kind needs exactly the values <see cref="For"/>
/// lists - a missing or extra value is a bug in the caller, and rendering throws rather than send a broken mail.
/// </summary>
public static class MailPlaceholders
{
    public const string DisplayName = "displayName";
    public const string TenantName = "tenantName";

    /// <summary>An absolute URL; inserted as-is into the text part and HTML-encoded into the HTML part.</summary>
    public const string Link = "link";

    public const string ExpiresInMinutes = "expiresInMinutes";
    public const string ExpiresInHours = "expiresInHours";

    /// <summary>When the change happened, as text; <see cref="FormatAt"/> gives the form every notification uses.</summary>
    public const string At = "at";

    private static readonly string[] PasswordReset = [DisplayName, Link, ExpiresInMinutes, TenantName];
    private static readonly string[] EmailVerification = [DisplayName, Link, ExpiresInHours, TenantName];
    private static readonly string[] Notification = [DisplayName, TenantName, At];

    public const string Url = "url";
    public const string Reason = "reason";
    private static readonly string[] EndpointDisabled = [DisplayName, TenantName, At, Url, Reason];

    public const string ReportTitle = "reportTitle";
    public const string Period = "period";
    private static readonly string[] ReportReady = [DisplayName, TenantName, ReportTitle, Period, Link];
    public const string WorkflowName = "workflowName";
    public const string Subject = "subject";
    public const string Message = "message";
    public const string RunId = "runId";
    private static readonly string[] Workflow = [DisplayName, TenantName, WorkflowName, Subject, Message, RunId];

    public static IReadOnlyList<string> For(MailKind kind) => kind switch
    {
        MailKind.PasswordReset => PasswordReset,
        MailKind.EmailVerification => EmailVerification,
        MailKind.PasswordChanged or MailKind.MfaEnabled or MailKind.MfaDisabled => Notification,
        MailKind.WebhookEndpointDisabled => EndpointDisabled,
        MailKind.ReportReady => ReportReady,
        MailKind.Workflow => Workflow,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown mail kind."),
    };

    /// <summary>The recipient may be anywhere, so the time is stated in UTC and says so.</summary>
    public static string FormatAt(DateTimeOffset at) =>
        at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
}
