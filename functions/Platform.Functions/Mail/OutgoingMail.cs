namespace Platform.Functions.Mail;

/// <summary>
/// One mail to send: who gets it, which template, and the template's values (see <see cref="MailPlaceholders"/>).
/// The values may hold secrets such as a reset link, so nothing logs them.
/// </summary>
public sealed record OutgoingMail(string ToAddress, string? ToName, MailKind Kind, IReadOnlyDictionary<string, string> Values);
