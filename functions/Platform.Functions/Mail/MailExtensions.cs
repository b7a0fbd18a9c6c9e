using Platform.Functions.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Platform.Functions.Mail;

public static class MailExtensions
{
    /// <summary>Mail settings (validated at start), the templates and the one <see cref="IMailSender"/>.</summary>
    public static IHostApplicationBuilder AddMail(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<MailOptions>(MailOptions.Section);
        services.AddSingleton<IValidateOptions<MailOptions>, MailOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<MailTemplates>();
        services.AddSingleton<MailSender>();
        services.AddSingleton<IMailSender>(sp => sp.GetRequiredService<MailSender>());
        services.AddHostedService<MailStartupReport>();
        return builder;
    }
}
