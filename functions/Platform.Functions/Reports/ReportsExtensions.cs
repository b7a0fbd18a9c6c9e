using Platform.Functions.Jobs;
using Platform.Functions.Jobs.Engine;
using Platform.Functions.Reports.Types;
using Platform.Functions.Storage;

namespace Platform.Functions.Reports;

public static class ReportsExtensions
{
    /// <summary>
    /// The report pipeline: the <c>report</c> job type and its orchestration, the reports list, and the
    /// <c>jobs-summary</c> report type. Other report types are registered by the capabilities whose data they read.
    /// </summary>
    public static IHostApplicationBuilder AddReports(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ReportTypeCatalog>();
        services.AddStorageTable(ReportStore.TableName);
        services.AddSingleton<ReportStore>();
        services.AddSingleton<IJobPurgeListener>(provider => provider.GetRequiredService<ReportStore>());

        services.AddSingleton<ReportJobType>();
        services.AddJobType<ReportJobType>(ReportJobType.Name);
        services.AddOrchestrator<ReportOrchestrator>(ReportOrchestrator.Name);
        services.AddActivity<ReportBuild>(ReportBuild.Name);
        services.AddActivity<ReportPublish>(ReportPublish.Name);
        services.AddActivity<ReportMail>(ReportMail.Name);

        services.AddReportType<JobsSummaryReport>(JobsSummaryReport.Type);
        return builder;
    }
}
