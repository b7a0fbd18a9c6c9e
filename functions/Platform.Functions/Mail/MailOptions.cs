using System.Net;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Platform.Functions.Mail;

/// <summary>
/// Settings under <c>Platform:Mail</c> (<c>Platform__Mail__PickupDirectory</c> etc. in the environment).
/// <see cref="PickupDirectory"/> set: mail is written there as .eml files, even if SMTP is configured too.
/// Otherwise <see cref="SmtpOptions.Host"/> set: mail goes out by SMTP. Otherwise mail lands in
/// <c>&lt;content root&gt;/.data/mail</c>, the development default.
/// </summary>
public sealed class MailOptions
{
    public const string Section = "Platform:Mail";

    /// <summary>When set, outgoing mail is written there as .eml files instead of being sent by SMTP; relative to the content root.</summary>
    public string? PickupDirectory { get; set; }

    public string FromAddress { get; set; } = "no-reply@platform.local";

    public string FromName { get; set; } = "Platform";

    public SmtpOptions Smtp { get; set; } = new();
}

/// <summary>Settings under <c>Platform:Mail:Smtp</c>.</summary>
public sealed class SmtpOptions
{
    public string? Host { get; set; }

    public int Port { get; set; } = 587;

    public SmtpSecurity Security { get; set; } = SmtpSecurity.StartTls;

    /// <summary>When set, the client authenticates; when empty it sends unauthenticated (a relay that trusts the network).</summary>
    public string? UserName { get; set; }

    /// <summary>A secret: never logged, never part of an error message.</summary>
    public string? Password { get; set; }
}

public enum SmtpSecurity
{
    /// <summary>Plain connect, then STARTTLS, which must succeed (port 587).</summary>
    StartTls,

    /// <summary>TLS from the first byte (port 465).</summary>
    SslOnConnect,

    /// <summary>No TLS at all; only for a relay on this machine, where nothing crosses a network.</summary>
    None,
}

internal sealed class MailOptionsValidator : IValidateOptions<MailOptions>
{
    private const string Prefix = MailOptions.Section + ":";

    public ValidateOptionsResult Validate(string? name, MailOptions options)
    {
        var failures = new List<string>();

        if (string.IsNullOrWhiteSpace(options.FromAddress) || !IsAddress(options.FromAddress))
        {
            failures.Add($"{Prefix}FromAddress must be an email address such as no-reply@example.com.");
        }

        if (options.PickupDirectory is { } pickup && pickup.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            failures.Add($"{Prefix}PickupDirectory is not a valid path.");
        }

        var smtp = options.Smtp;
        if (!string.IsNullOrWhiteSpace(smtp.Host))
        {
            if (Uri.CheckHostName(smtp.Host) == UriHostNameType.Unknown)
            {
                failures.Add($"{Prefix}Smtp:Host must be a host name or an IP address.");
            }

            if (smtp.Port is < 1 or > 65535)
            {
                failures.Add($"{Prefix}Smtp:Port must be between 1 and 65535.");
            }

            if (!Enum.IsDefined(smtp.Security))
            {
                failures.Add($"{Prefix}Smtp:Security must be StartTls, SslOnConnect or None.");
            }
            else if (smtp.Security == SmtpSecurity.None && !IsLoopback(smtp.Host))
            {
                // Without TLS the credentials and every reset link would cross the network in clear text.
                failures.Add($"{Prefix}Smtp:Security None is only allowed when {Prefix}Smtp:Host is a loopback address (localhost, 127.0.0.1, ::1); use StartTls or SslOnConnect.");
            }

            // Half a credential is a typo, not a choice; sending unauthenticated instead would hide it until the relay refuses.
            var hasUser = !string.IsNullOrEmpty(smtp.UserName);
            var hasPassword = !string.IsNullOrEmpty(smtp.Password);
            if (hasPassword && !hasUser)
            {
                failures.Add($"{Prefix}Smtp:Password is set but {Prefix}Smtp:UserName is not.");
            }
            else if (hasUser && !hasPassword)
            {
                failures.Add($"{Prefix}Smtp:UserName is set but {Prefix}Smtp:Password is not.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address);

    private static bool IsAddress(string value)
    {
        try
        {
            // The constructor parses exactly one addr-spec, unlike TryParse, which also accepts "Name <addr>".
            _ = new MailboxAddress(null, value);
            return value.Contains('@', StringComparison.Ordinal);
        }
        catch (ParseException)
        {
            return false;
        }
    }
}
