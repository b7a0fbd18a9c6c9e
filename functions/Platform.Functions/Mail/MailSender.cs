using System.Globalization;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Platform.Functions.Mail;

/// <summary>
/// The one way mail leaves the app: written to the pickup folder when <c>Platform:Mail:PickupDirectory</c> is set
/// or SMTP is not configured, otherwise sent by SMTP. Logs say which kind went to which recipient domain - never
/// the address, body, link or any credential.
/// </summary>
public sealed partial class MailSender : IMailSender
{
    public static readonly TimeSpan SmtpTimeout = TimeSpan.FromSeconds(30);

    // .eml files are RFC 5322 messages, so CRLF whatever the OS; 8-bit and long lines stay unencoded so a person
    // (or a test) can read the links in the file as they are.
    private static readonly FormatOptions PickupFormat = CreatePickupFormat();

    private readonly MailTemplates _templates;
    private readonly MailOptions _options;
    private readonly IHostEnvironment _environment;
    private readonly TimeProvider _time;
    private readonly ILogger<MailSender> _logger;

    public MailSender(MailTemplates templates, IOptions<MailOptions> options, IHostEnvironment environment, TimeProvider time, ILogger<MailSender> logger)
    {
        _templates = templates;
        _options = options.Value;
        _environment = environment;
        _time = time;
        _logger = logger;

        if (!string.IsNullOrWhiteSpace(_options.PickupDirectory))
        {
            PickupDirectory = Path.GetFullPath(Path.Combine(environment.ContentRootPath, _options.PickupDirectory));
        }
        else if (string.IsNullOrWhiteSpace(_options.Smtp.Host))
        {
            PickupDirectory = DefaultPickupDirectory(environment.ContentRootPath);
            UsesDefaultPickup = true;
        }
    }

    /// <summary>The full path mail is written to, or null when mail goes out by SMTP.</summary>
    public string? PickupDirectory { get; }

    /// <summary>Nothing chose where mail goes, so it stays in the development folder.</summary>
    public bool UsesDefaultPickup { get; }

    public static string DefaultPickupDirectory(string contentRootPath) => Path.Combine(contentRootPath, ".data", "mail");

    public async Task SendAsync(OutgoingMail mail, CancellationToken cancellationToken)
    {
        using var message = _templates.Render(mail);
        var recipientDomain = message.To.Mailboxes.First().Domain;
        if (PickupDirectory is { } folder)
        {
            var file = await WriteToPickupAsync(message, folder, cancellationToken);
            LogWritten(_logger, mail.Kind, recipientDomain, file);
        }
        else
        {
            await SendBySmtpAsync(message, mail.Kind, recipientDomain, cancellationToken);
            LogSent(_logger, mail.Kind, recipientDomain);
        }
    }

    /// <summary>Says once at start where mail goes; a production app that keeps its mail on disk is almost always a mistake.</summary>
    internal void ReportTransport()
    {
        if (PickupDirectory is null)
        {
            var smtp = _options.Smtp;
            var authenticated = !string.IsNullOrEmpty(smtp.UserName);
            LogUsingSmtp(_logger, smtp.Host!, smtp.Port, smtp.Security, authenticated);
        }
        else if (UsesDefaultPickup && _environment.IsProduction())
        {
            LogDefaultPickupInProduction(_logger, PickupDirectory);
        }
        else
        {
            LogUsingPickup(_logger, PickupDirectory);
        }
    }

    private async Task<string> WriteToPickupAsync(MimeMessage message, string folder, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(folder);
        var name = string.Create(CultureInfo.InvariantCulture, $"{_time.GetUtcNow():yyyyMMdd'T'HHmmssfff}-{Guid.NewGuid():N}.eml");
        var path = Path.Combine(folder, name);
        // Written under a name no "*.eml" reader matches, then renamed within the folder - an atomic step - so a
        // reader polling the folder sees either no file or the whole message.
        var temporary = Path.Combine(folder, $".{name}.tmp");
        try
        {
            message.Prepare(EncodingConstraint.EightBit, maxLineLength: 998);
            await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 16 * 1024, useAsync: true))
            {
                await message.WriteToAsync(PickupFormat, stream, cancellationToken);
                await stream.FlushAsync(cancellationToken);
            }

            File.Move(temporary, path);
            return name;
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private async Task SendBySmtpAsync(MimeMessage message, MailKind kind, string recipientDomain, CancellationToken cancellationToken)
    {
        var smtp = _options.Smtp;
        var host = smtp.Host!;
        // MailKit's timeout bounds each network step; this one bounds the whole exchange, so a server that
        // trickles its replies cannot hold a job for minutes.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(SmtpTimeout);
        using var client = new SmtpClient { Timeout = (int)SmtpTimeout.TotalMilliseconds };
        try
        {
            await client.ConnectAsync(host, smtp.Port, ToSocketOptions(smtp.Security), deadline.Token);
            if (!string.IsNullOrEmpty(smtp.UserName))
            {
                await client.AuthenticateAsync(smtp.UserName, smtp.Password ?? "", deadline.Token);
            }

            await client.SendAsync(message, deadline.Token);
            await client.DisconnectAsync(quit: true, deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogSmtpFailed(_logger, kind, recipientDomain, host, smtp.Port, nameof(TimeoutException));
            throw new TimeoutException($"The SMTP server {host}:{smtp.Port} did not take the mail within {SmtpTimeout.TotalSeconds:0} s.");
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or MailKit.ProtocolException
            or CommandException or AuthenticationException or SslHandshakeException or TimeoutException)
        {
            // Only the type: a server's reply text can quote the full recipient address.
            LogSmtpFailed(_logger, kind, recipientDomain, host, smtp.Port, ex.GetType().Name);
            throw;
        }
    }

    private static SecureSocketOptions ToSocketOptions(SmtpSecurity security) => security switch
    {
        SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
        SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
        SmtpSecurity.None => SecureSocketOptions.None,
        _ => throw new ArgumentOutOfRangeException(nameof(security), security, "Unknown SMTP security."),
    };

    private static FormatOptions CreatePickupFormat()
    {
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        return format;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Kind} mail for a recipient at {RecipientDomain} written to the pickup folder as {FileName}")]
    private static partial void LogWritten(ILogger logger, MailKind kind, string recipientDomain, string fileName);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Kind} mail for a recipient at {RecipientDomain} sent by SMTP")]
    private static partial void LogSent(ILogger logger, MailKind kind, string recipientDomain);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Kind} mail for a recipient at {RecipientDomain} could not be sent by SMTP via {Host}:{Port}: {Error}")]
    private static partial void LogSmtpFailed(ILogger logger, MailKind kind, string recipientDomain, string host, int port, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Mail goes out by SMTP via {Host}:{Port} ({Security}, authenticated: {Authenticated})")]
    private static partial void LogUsingSmtp(ILogger logger, string host, int port, SmtpSecurity security, bool authenticated);

    [LoggerMessage(Level = LogLevel.Information, Message = "Mail is written to the pickup folder {Folder} instead of being sent")]
    private static partial void LogUsingPickup(ILogger logger, string folder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Mail is not configured, so it is written to {Folder} and never leaves this machine; set Platform__Mail__Smtp__Host to send it, or Platform__Mail__PickupDirectory to keep it on disk on purpose")]
    private static partial void LogDefaultPickupInProduction(ILogger logger, string folder);
}

/// <summary>Reports where mail goes when the app starts rather than at the first mail, which may be days later.</summary>
internal sealed class MailStartupReport(MailSender sender) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        sender.ReportTransport();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
