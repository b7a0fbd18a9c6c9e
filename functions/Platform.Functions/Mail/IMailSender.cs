namespace Platform.Functions.Mail;

/// <summary>Sends mail by SMTP or writes it to the pickup folder, whichever the settings choose.</summary>
public interface IMailSender
{
    Task SendAsync(OutgoingMail mail, CancellationToken cancellationToken);
}
