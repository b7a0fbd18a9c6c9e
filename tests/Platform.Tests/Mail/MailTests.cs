using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MimeKit;
using Platform.Functions.Mail;

namespace Platform.Tests.Mail;

public sealed class MailTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "platform-mail-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    public static TheoryData<MailKind> Kinds => new(Enum.GetValues<MailKind>());

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EveryKindRendersWithTheValuesItDocuments(MailKind kind)
    {
        using var message = Templates().Render(Mail(kind));

        Assert.False(string.IsNullOrWhiteSpace(message.Subject));
        Assert.DoesNotContain("{{", message.Subject, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(message.TextBody));
        Assert.False(string.IsNullOrWhiteSpace(message.HtmlBody));
        Assert.DoesNotContain("{{", message.TextBody, StringComparison.Ordinal);
        Assert.DoesNotContain("{{", message.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("Ada", message.TextBody, StringComparison.Ordinal);
        Assert.Contains("Contoso", message.HtmlBody, StringComparison.Ordinal);
        Assert.Equal("multipart/alternative", message.Body?.ContentType.MimeType);
        Assert.Equal(kind.ToString(), message.Headers[MailTemplates.KindHeader]);
        Assert.False(string.IsNullOrEmpty(message.MessageId));
        Assert.Equal("no-reply@platform.local", message.From.Mailboxes.Single().Address);
        if (MailPlaceholders.For(kind).Contains(MailPlaceholders.Link))
        {
            Assert.Contains(Link, message.TextBody, StringComparison.Ordinal);
            Assert.Contains(Link, message.HtmlBody, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void HtmlPartEncodesMarkupInADisplayNameWhileTheTextPartKeepsItVerbatim()
    {
        const string name = "<script>alert(1)</script>";

        using var message = Templates().Render(Mail(MailKind.PasswordReset, name));

        Assert.DoesNotContain("<script>", message.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", message.HtmlBody, StringComparison.Ordinal);
        Assert.Contains(name, message.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingValueThrows()
    {
        var values = Values(MailKind.PasswordReset).Where(v => v.Key != MailPlaceholders.Link).ToDictionary();

        var error = Assert.Throws<InvalidOperationException>(() =>
            Templates().Render(new OutgoingMail("ada@example.com", null, MailKind.PasswordReset, values)));
        Assert.Contains(MailPlaceholders.Link, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AValueThatIsNotAPlaceholderOfTheKindThrows()
    {
        var values = new Dictionary<string, string>(Values(MailKind.PasswordChanged)) { [MailPlaceholders.Link] = Link };

        Assert.Throws<InvalidOperationException>(() =>
            Templates().Render(new OutgoingMail("ada@example.com", null, MailKind.PasswordChanged, values)));
    }

    [Fact]
    public async Task PickupSenderWritesOneEmlPerMailThatParsesBackWithRecipientSubjectAndLink()
    {
        var sender = Sender(new MailOptions { PickupDirectory = _folder });
        var ct = TestContext.Current.CancellationToken;

        await sender.SendAsync(Mail(MailKind.PasswordReset), ct).WaitAsync(Bound, ct);
        await sender.SendAsync(Mail(MailKind.EmailVerification), ct).WaitAsync(Bound, ct);

        Assert.Equal(_folder, sender.PickupDirectory);
        Assert.Equal(2, Directory.GetFiles(_folder).Length);
        var files = Directory.GetFiles(_folder, "*.eml");
        Assert.Equal(2, files.Length);
        var messages = new List<MimeMessage>();
        foreach (var file in files)
        {
            Assert.Matches(@"^\d{8}T\d{9}-[0-9a-f]{32}\.eml$", Path.GetFileName(file));
            messages.Add(await MimeMessage.LoadAsync(file, ct));
        }

        try
        {
            var reset = Assert.Single(messages, m => m.Headers[MailTemplates.KindHeader] == nameof(MailKind.PasswordReset));
            var to = Assert.Single(reset.To.Mailboxes);
            Assert.Equal("ada@example.com", to.Address);
            Assert.Equal("Ada Lovelace", to.Name);
            Assert.Equal("Reset your Contoso password", reset.Subject);
            Assert.Contains(Link, reset.TextBody, StringComparison.Ordinal);
            Assert.Contains(Link, reset.HtmlBody, StringComparison.Ordinal);
            Assert.Single(messages, m => m.Headers[MailTemplates.KindHeader] == nameof(MailKind.EmailVerification));
        }
        finally
        {
            messages.ForEach(m => m.Dispose());
        }
    }

    [Fact]
    public void PickupDirectoryWinsOverSmtpAndARelativeOneIsUnderTheContentRoot()
    {
        var sender = Sender(new MailOptions { PickupDirectory = "outbox", Smtp = { Host = "smtp.example.com" } });

        Assert.Equal(Path.Combine(_folder, "outbox"), sender.PickupDirectory);
        Assert.False(sender.UsesDefaultPickup);
    }

    [Fact]
    public void WithoutPickupDirectoryOrSmtpHostMailGoesToTheDefaultFolder()
    {
        var sender = Sender(new MailOptions());

        Assert.Equal(Path.Combine(_folder, ".data", "mail"), sender.PickupDirectory);
        Assert.True(sender.UsesDefaultPickup);
        Assert.Null(Sender(new MailOptions { Smtp = { Host = "smtp.example.com" } }).PickupDirectory);
    }

    [Theory]
    [InlineData("smtp.example.com", SmtpSecurity.None, "Platform:Mail:Smtp:Security")]
    [InlineData("smtp.example.com", (SmtpSecurity)7, "Platform:Mail:Smtp:Security")]
    [InlineData("bad host", SmtpSecurity.StartTls, "Platform:Mail:Smtp:Host")]
    public void InvalidSmtpSettingsFailValidationNamingTheSetting(string host, SmtpSecurity security, string setting)
    {
        var result = new MailOptionsValidator().Validate(null, new MailOptions { Smtp = { Host = host, Security = security } });

        Assert.True(result.Failed);
        Assert.Contains(setting, result.FailureMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void SmtpWithoutTlsIsAllowedOnLoopback(string host)
    {
        var result = new MailOptionsValidator().Validate(null, new MailOptions { Smtp = { Host = host, Security = SmtpSecurity.None } });

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Theory]
    [InlineData("not an address")]
    [InlineData("Name <a@example.com>")]
    [InlineData("")]
    public void AFromAddressThatIsNotAnAddressFailsValidation(string from)
    {
        var result = new MailOptionsValidator().Validate(null, new MailOptions { FromAddress = from });

        Assert.True(result.Failed);
        Assert.Contains("Platform:Mail:FromAddress", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void HalfACredentialFailsValidationWithoutRevealingThePassword()
    {
        var result = new MailOptionsValidator().Validate(null,
            new MailOptions { Smtp = { Host = "smtp.example.com", Password = "hunter2-secret" } });

        Assert.True(result.Failed);
        Assert.Contains("Platform:Mail:Smtp:UserName", result.FailureMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2-secret", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SmtpSenderDeliversTheMailToTheConfiguredServer()
    {
        var ct = TestContext.Current.CancellationToken;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Bound);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var server = ReceiveOneMailAsync(listener, timeout.Token);
            var sender = Sender(new MailOptions { Smtp = { Host = "127.0.0.1", Port = port, Security = SmtpSecurity.None } });

            await sender.SendAsync(Mail(MailKind.PasswordReset), timeout.Token).WaitAsync(Bound, ct);
            var received = await server.WaitAsync(Bound, ct);

            Assert.Contains("RCPT TO:<ada@example.com>", received.Commands);
            Assert.Contains("Subject: Reset your Contoso password", received.Data, StringComparison.Ordinal);
            Assert.Contains("ada@example.com", received.Data, StringComparison.Ordinal);
        }
        finally
        {
            listener.Stop();
        }
    }

    private const string Link = "https://platform.test/reset?token=abc123";

    private static MailTemplates Templates() =>
        new(Options.Create(new MailOptions()), TimeProvider.System);

    private MailSender Sender(MailOptions options)
    {
        var environment = new HostingEnvironment
        {
            EnvironmentName = Environments.Development,
            ApplicationName = "Platform.Tests",
            ContentRootPath = _folder,
        };
        return new MailSender(new MailTemplates(Options.Create(options), TimeProvider.System), Options.Create(options),
            environment, TimeProvider.System, NullLogger<MailSender>.Instance);
    }

    private static OutgoingMail Mail(MailKind kind, string displayName = "Ada") =>
        new("ada@example.com", "Ada Lovelace", kind, Values(kind, displayName));

    private static Dictionary<string, string> Values(MailKind kind, string displayName = "Ada")
    {
        var all = new Dictionary<string, string>
        {
            [MailPlaceholders.DisplayName] = displayName,
            [MailPlaceholders.TenantName] = "Contoso",
            [MailPlaceholders.Link] = Link,
            [MailPlaceholders.ExpiresInMinutes] = "30",
            [MailPlaceholders.ExpiresInHours] = "24",
            [MailPlaceholders.At] = MailPlaceholders.FormatAt(new DateTimeOffset(2025, 1, 2, 13, 45, 0, TimeSpan.Zero)),
            [MailPlaceholders.Url] = "https://erp.example.com/hooks",
            [MailPlaceholders.Reason] = "it answered 410 Gone.",
            [MailPlaceholders.ReportTitle] = "Inventory status",
            [MailPlaceholders.Period] = "2025-01-01 00:00 UTC to 2025-01-31 00:00 UTC",
            [MailPlaceholders.WorkflowName] = "Weekly restock",
            [MailPlaceholders.Subject] = "Stock is low",
            [MailPlaceholders.Message] = "Three items need reordering.",
            [MailPlaceholders.RunId] = "01JD3Z8M6Q0000000000000000",
        };
        return MailPlaceholders.For(kind).ToDictionary(name => name, name => all[name]);
    }

    private sealed record ReceivedMail(List<string> Commands, string Data);

    /// <summary>Just enough of an SMTP server (RFC 5321 without extensions) for MailKit to hand over one message.</summary>
    private static async Task<ReceivedMail> ReceiveOneMailAsync(TcpListener listener, CancellationToken cancellationToken)
    {
        using var client = await listener.AcceptTcpClientAsync(cancellationToken);
        await using var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.Latin1);
        await using var writer = new StreamWriter(stream, Encoding.Latin1) { NewLine = "\r\n", AutoFlush = true };
        var commands = new List<string>();
        var data = new StringBuilder();

        await writer.WriteLineAsync("220 localhost test SMTP");
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            commands.Add(line);
            var verb = line.Split(' ', 2)[0].ToUpperInvariant();
            switch (verb)
            {
                case "EHLO" or "HELO":
                    await writer.WriteLineAsync("250 localhost");
                    break;
                case "DATA":
                    await writer.WriteLineAsync("354 end with <CRLF>.<CRLF>");
                    while (await reader.ReadLineAsync(cancellationToken) is { } dataLine && dataLine != ".")
                    {
                        data.Append(dataLine).Append("\r\n");
                    }

                    await writer.WriteLineAsync("250 queued");
                    break;
                case "QUIT":
                    await writer.WriteLineAsync("221 bye");
                    return new ReceivedMail(commands, data.ToString());
                default:
                    await writer.WriteLineAsync("250 ok");
                    break;
            }
        }

        return new ReceivedMail(commands, data.ToString());
    }
}
