using Microsoft.DurableTask;
using Platform.Functions.Jobs.Files;

namespace Platform.Functions.Jobs.Exports;

/// <param name="Kind">users, inventory-items, inventory-movements, audit.</param>
/// <param name="Format">csv, json (NDJSON) or xlsx.</param>
public sealed record ExportParameters(string Kind, string Format, string? Filter);

/// <summary>An export: one activity streams the matching rows into the result file.</summary>
public sealed class ExportOrchestrator : JobOrchestrator<ExportParameters>
{
    public const string Name = "export";

    protected override async Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<ExportParameters> input, JobRun run)
    {
        run.Report("writing");
        var written = await context.CallActivityAsync<ExportWrite.Result>(ExportWrite.Name, input, Retried);
        run.Total = written.Rows;
        run.Count(written.Rows, 0);
        return run.Finish(JobOutcome.Succeeded) with { Result = written.File };
    }
}

/// <summary>
/// Streams the kind's rows into the result blob through the file writer: a page of rows in memory at a time,
/// whatever the size of the export. A re-run overwrites the file from the start.
/// </summary>
public sealed class ExportWrite(JobFiles files, IServiceProvider services) : TaskActivity<JobInput<ExportParameters>, ExportWrite.Result>
{
    public const string Name = "export.write";

    public sealed record Result(long Rows, JobFile File);

    public override async Task<Result> RunAsync(TaskActivityContext context, JobInput<ExportParameters> input)
    {
        var parameters = input.Parameters;
        var kind = services.GetRequiredKeyedService<IExportKind>(parameters.Kind);
        var format = Enum.Parse<TabularFormat>(parameters.Format, ignoreCase: true);
        var (extension, contentType) = ExportFormats.Of(format);
        var blob = files.Named(input.Tenant, input.JobId, "result." + extension);
        long rows;
        await using (var output = await blob.OpenWriteAsync(overwrite: true))
        {
            var writer = TabularWriter.Create(output, format, kind.Columns, sheetName: parameters.Kind);
            await using (writer)
            {
                await foreach (var row in kind.RowsAsync(input.Caller, parameters.Filter, CancellationToken.None))
                {
                    await writer.WriteRowAsync(row, CancellationToken.None);
                }
            }

            rows = writer.RowsWritten;
        }

        return new Result(rows, new JobFile(blob.Name, contentType, $"{parameters.Kind}-{input.JobId}.{extension}"));
    }
}

public static class ExportFormats
{
    public const string XlsxContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

    public static (string Extension, string ContentType) Of(TabularFormat format) => format switch
    {
        TabularFormat.Csv => ("csv", "text/csv; charset=utf-8"),
        TabularFormat.Json => ("ndjson", "application/x-ndjson"),
        _ => ("xlsx", XlsxContentType),
    };
}
