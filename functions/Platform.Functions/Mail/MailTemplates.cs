using System.Collections.Frozen;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using MimeKit;
using MimeKit.Utils;

namespace Platform.Functions.Mail;

/// <summary>
/// Turns an <see cref="OutgoingMail"/> into a message from the embedded templates under Mail/Templates: per kind a
/// <c>.txt</c> whose first line is <c>Subject: ...</c> and a <c>.html</c>. Placeholders are <c>{{name}}</c>; values
/// go into the text part as-is and into the HTML part HTML-encoded, so a display name can never become markup.
/// </summary>
public sealed partial class MailTemplates
{
    /// <summary>Names the template a message came from, so a reader of the pickup folder can find the mail it expects.</summary>
    public const string KindHeader = "X-Platform-Mail-Kind";

    private const string SubjectPrefix = "Subject:";

    private readonly FrozenDictionary<MailKind, Template> _templates;
    private readonly IOptions<MailOptions> _options;
    private readonly TimeProvider _time;

    public MailTemplates(IOptions<MailOptions> options, TimeProvider time)
    {
        _options = options;
        _time = time;
        _templates = Enum.GetValues<MailKind>().ToFrozenDictionary(kind => kind, Load);
    }

    /// <summary>
    /// Throws <see cref="InvalidOperationException"/> when a value the kind needs is missing, a value is not one of
    /// the kind's placeholders, or a template uses a placeholder the kind does not document.
    /// </summary>
    public MimeMessage Render(OutgoingMail mail)
    {
        ArgumentNullException.ThrowIfNull(mail);
        var names = MailPlaceholders.For(mail.Kind);
        CheckValues(mail.Kind, names, mail.Values);
        var template = _templates[mail.Kind];

        var options = _options.Value;
        var from = new MailboxAddress(options.FromName, options.FromAddress);
        var message = new MimeMessage();
        message.From.Add(from);
        message.To.Add(Recipient(mail));
        // A value with a line break must not turn the subject into two header lines.
        message.Subject = Fill(mail.Kind, names, template.Subject, mail.Values, html: false).ReplaceLineEndings(" ");
        message.Date = _time.GetUtcNow();
        message.MessageId = MimeUtils.GenerateMessageId(from.Domain);
        // RFC 3834: keeps out-of-office replies and auto-forwards from answering a machine.
        message.Headers.Add("Auto-Submitted", "auto-generated");
        message.Headers.Add(KindHeader, mail.Kind.ToString());
        message.Body = new BodyBuilder
        {
            TextBody = Fill(mail.Kind, names, template.Text, mail.Values, html: false),
            HtmlBody = Fill(mail.Kind, names, template.Html, mail.Values, html: true),
        }.ToMessageBody();
        return message;
    }

    private static MailboxAddress Recipient(OutgoingMail mail)
    {
        try
        {
            return new MailboxAddress(mail.ToName, mail.ToAddress);
        }
        catch (ParseException ex)
        {
            throw new ArgumentException("The recipient is not a valid email address.", nameof(mail), ex);
        }
    }

    private static void CheckValues(MailKind kind, IReadOnlyList<string> names, IReadOnlyDictionary<string, string> values)
    {
        var missing = names.Where(n => !values.TryGetValue(n, out var value) || value is null).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"{kind} mail needs a value for {string.Join(", ", missing)}.");
        }

        // An extra value is most likely a misspelt one, whose placeholder would otherwise be the one reported missing.
        var unknown = values.Keys.Where(k => !names.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new InvalidOperationException(
                $"{kind} mail has no placeholder {string.Join(", ", unknown)}; its placeholders are {string.Join(", ", names)}.");
        }
    }

    private static string Fill(MailKind kind, IReadOnlyList<string> names, string template, IReadOnlyDictionary<string, string> values, bool html)
    {
        if (Placeholder().Replace(template, "").Contains("{{", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"A {kind} template has a malformed placeholder; write {{{{name}}}} with a letters-and-digits name.");
        }

        return Placeholder().Replace(template, match =>
        {
            var name = match.Groups[1].Value;
            if (!names.Contains(name))
            {
                throw new InvalidOperationException($"A {kind} template uses the unknown placeholder {{{{{name}}}}}.");
            }

            var value = values[name];
            return html ? WebUtility.HtmlEncode(value) : value;
        });
    }

    private static Template Load(MailKind kind)
    {
        var text = Read($"{kind}.txt");
        var html = Read($"{kind}.html");
        var firstLineEnd = text.IndexOf('\n', StringComparison.Ordinal);
        var firstLine = firstLineEnd < 0 ? text : text[..firstLineEnd];
        if (!firstLine.StartsWith(SubjectPrefix, StringComparison.Ordinal) || firstLine.Length == SubjectPrefix.Length)
        {
            throw new InvalidOperationException($"Mail template {kind}.txt must start with a \"{SubjectPrefix} ...\" line.");
        }

        var body = firstLineEnd < 0 ? "" : text[(firstLineEnd + 1)..].TrimStart('\n');
        return new Template(firstLine[SubjectPrefix.Length..].Trim(), body, html);
    }

    private static string Read(string fileName)
    {
        var assembly = typeof(MailTemplates).Assembly;
        var resource = $"{typeof(MailTemplates).Namespace}.Templates.{fileName}";
        using var stream = assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The mail template {fileName} is not embedded in {assembly.GetName().Name} (resource {resource}).");
        using var reader = new StreamReader(stream);
        // A checkout with CRLF endings must render the same; MimeKit writes the line endings the wire needs.
        return reader.ReadToEnd().ReplaceLineEndings("\n");
    }

    [GeneratedRegex(@"\{\{([A-Za-z][A-Za-z0-9]*)\}\}", RegexOptions.CultureInvariant)]
    private static partial Regex Placeholder();

    private sealed record Template(string Subject, string Text, string Html);
}
