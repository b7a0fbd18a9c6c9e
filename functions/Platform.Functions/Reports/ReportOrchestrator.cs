using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.Extensions.Options;
using Platform.Functions.Events;
using Platform.Functions.Hosting;
using Platform.Functions.Jobs;
using Platform.Functions.Mail;
using Platform.Functions.Reports.Rendering;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Reports;

/// <summary>What building a report left: its file and what the list, the event and the mail say about it.</summary>
public sealed record ReportBuilt(JobFile File, long Bytes, string Title, string Permission, Dictionary<string, double> Figures);

public sealed record ReportStepInput(JobInput<ReportParameters> Job, ReportBuilt Report, DateTimeOffset At);

/// <summary>
/// A report: build and render the document into the job's result file, record it in the reports list and announce
/// <c>report.ready</c>, then mail the recipients a link. Its headline figures become the job's
/// <see cref="JobOutcome.Figures"/>, which a workflow's condition step reads.
/// </summary>
public sealed class ReportOrchestrator : JobOrchestrator<ReportParameters>
{
    public const string Name = ReportJobType.Name;

    protected override async Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<ReportParameters> input, JobRun run)
    {
        run.Total = 1;
        run.Report("building");
        var built = await context.CallActivityAsync<ReportBuilt>(ReportBuild.Name, input, Retried);
        if (run.CancelRequested)
        {
            return run.Finish(JobOutcome.Cancelled) with { Note = "Cancelled before the report was published." };
        }

        run.Report("publishing");
        var step = new ReportStepInput(input, built, context.CurrentUtcDateTime);
        await context.CallActivityAsync<bool>(ReportPublish.Name, step, Retried);
        var note = $"The report is at {ReportView.DownloadUrlOf(input.JobId)}.";
        if (input.Parameters.Recipients is { Count: > 0 })
        {
            run.Report("mailing");
            var mailed = await context.CallActivityAsync<int>(ReportMail.Name, step, Retried);
            note += mailed == 1 ? " 1 recipient was mailed a link." : $" {mailed} recipients were mailed a link.";
        }

        run.Count(1, 0);

        // No Result: the jobs result route checks only jobs.write for a job it does not know, while a report needs
        // reports.read and its type's permission, which the reports download route checks.
        return run.Finish(JobOutcome.Succeeded) with { Figures = built.Figures, Note = note };
    }
}

/// <summary>
/// Builds the document through the keyed <see cref="IReportType"/> and renders it into the job's result blob. The
/// whole file is rendered in memory first (a report is a summary, bounded by its type) and uploaded in one go, so a
/// re-run after a crash overwrites it whole.
/// </summary>
public sealed class ReportBuild(IServiceProvider services, JobFiles files) : TaskActivity<JobInput<ReportParameters>, ReportBuilt>
{
    public const string Name = "reports.build";

    public override async Task<ReportBuilt> RunAsync(TaskActivityContext context, JobInput<ReportParameters> input)
    {
        var parameters = input.Parameters;
        var type = services.GetRequiredKeyedService<IReportType>(parameters.Type);
        var document = await type.BuildAsync(new ReportRequest(input.Tenant, parameters.From, parameters.To, parameters.Filter), CancellationToken.None);
        var format = ReportFormats.Parse(parameters.Format) ?? ReportFormat.Json;
        var (extension, contentType) = ReportFormats.FileOf(format);
        using var buffer = new MemoryStream();
        await ReportFormats.RenderAsync(document, format, buffer, CancellationToken.None);
        buffer.Position = 0;
        var blob = files.Named(input.Tenant, input.JobId, "report." + extension);
        await blob.UploadAsync(buffer, overwrite: true);
        var figures = document.Figures.Where(f => double.IsFinite(f.Value)).ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);
        return new ReportBuilt(new JobFile(blob.Name, contentType, $"{parameters.Type}-{parameters.From:yyyyMMdd}-{parameters.To:yyyyMMdd}-{input.JobId}.{extension}"),
            buffer.Length, document.Title, type.Permission, figures);
    }
}

/// <summary>Records the report in the tenant's reports list, then publishes <c>report.ready</c> (the same event id on a re-run).</summary>
public sealed class ReportPublish(ReportStore store, EventPublisher events) : TaskActivity<ReportStepInput, bool>
{
    public const string Name = "reports.publish";

    public override async Task<bool> RunAsync(TaskActivityContext context, ReportStepInput input)
    {
        var job = input.Job;
        var parameters = job.Parameters;
        var report = input.Report;
        await store.RecordAsync(job.Tenant, new ReportEntity
        {
            Id = job.JobId,
            Type = parameters.Type,
            Format = parameters.Format,
            Title = report.Title,
            From = parameters.From,
            To = parameters.To,
            CreatedAt = input.At,
            Bytes = report.Bytes,
            Blob = report.File.Blob,
            ContentType = report.File.ContentType,
            FileName = report.File.FileName,
            Permission = report.Permission,
            Figures = JsonSerializer.Serialize(report.Figures),
        }, CancellationToken.None);

        await events.PublishAsync(job.Tenant, new PlatformEvent(
            "report.ready",
            job.Actor.ToCaller(job.Tenant).Actor,
            "report",
            job.JobId,
            new Dictionary<string, object?>
            {
                ["type"] = parameters.Type,
                ["format"] = parameters.Format,
                ["title"] = report.Title,
                ["from"] = parameters.From,
                ["to"] = parameters.To,
                ["bytes"] = report.Bytes,
                ["downloadUrl"] = ReportView.DownloadUrlOf(job.JobId),
                ["figures"] = report.Figures,
            })
        {
            StableId = Ids.Derived(input.At, $"report.ready\n{job.TenantId}\n{job.JobId}"),
        },
            CancellationToken.None);
        return true;
    }
}

/// <summary>
/// Mails each recipient (user ids, and every user of a <c>role:</c>) a link to the report's download route, once per
/// user. Only active users whose roles let them download the report are mailed: a link they could not open would only
/// say that the report exists. A mail that fails is logged and skipped; the report stays ready.
/// </summary>
public sealed partial class ReportMail(
    IMailSender sender, UserProjections users, RoleDirectory roles, TenantDirectory tenants, IOptions<PlatformOptions> platform, ILogger<ReportMail> logger)
    : TaskActivity<ReportStepInput, int>
{
    public const string Name = "reports.mail";

    public override async Task<int> RunAsync(TaskActivityContext context, ReportStepInput input)
    {
        var job = input.Job;
        var tenant = job.Tenant;
        var recipients = job.Parameters.Recipients ?? [];
        var userIds = recipients.Where(r => !r.StartsWith(ReportJobType.RolePrefix, StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        var roleNames = recipients.Where(r => r.StartsWith(ReportJobType.RolePrefix, StringComparison.Ordinal))
            .Select(r => r[ReportJobType.RolePrefix.Length..]).ToHashSet(StringComparer.Ordinal);
        var tenantName = (await tenants.GetAsync(tenant, CancellationToken.None))?.Name ?? "your tenant";
        var link = $"{platform.Value.PublicBaseUrl.ToString().TrimEnd('/')}{ReportView.DownloadUrlOf(job.JobId)}";
        var period = $"{MailPlaceholders.FormatAt(job.Parameters.From)} to {MailPlaceholders.FormatAt(job.Parameters.To)}";
        var mailed = 0;
        foreach (var user in await users.RowsAsync(tenant, CancellationToken.None))
        {
            var view = user.View;
            if (view.Status != UserStatus.Active || (!userIds.Contains(view.Id) && !view.Roles.Any(roleNames.Contains)))
            {
                continue;
            }

            var granted = await roles.PermissionsOfAsync(tenant, view.Roles, CancellationToken.None);
            if (!granted.Contains(Permissions.ReportsRead) || !granted.Contains(input.Report.Permission))
            {
                continue;
            }

            try
            {
                await sender.SendAsync(new OutgoingMail(view.Email, view.DisplayName, MailKind.ReportReady, new Dictionary<string, string>
                {
                    [MailPlaceholders.DisplayName] = view.DisplayName,
                    [MailPlaceholders.TenantName] = tenantName,
                    [MailPlaceholders.ReportTitle] = input.Report.Title,
                    [MailPlaceholders.Period] = period,
                    [MailPlaceholders.Link] = link,
                }), CancellationToken.None);
                mailed++;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogMailFailed(logger, ex, job.JobId);
            }
        }

        return mailed;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not mail a recipient of report {ReportId}")]
    private static partial void LogMailFailed(ILogger logger, Exception exception, string reportId);
}
