using Microsoft.DurableTask;

namespace Platform.Functions.Jobs.Imports;

/// <param name="Kind">users, inventory-items, inventory-locations, inventory-movements.</param>
/// <param name="Format">csv, json or xlsx: how the upload is read.</param>
/// <param name="RetryOf">Set when this job re-imports the failed rows of an earlier job (no upload of its own).</param>
public sealed record ImportParameters(
    string Kind, ImportMode Mode, bool DryRun, string Format, string? RetryOf, int ChunkRows, int ChunkBytes, int Parallelism);

/// <summary>
/// A bulk import, as its steps: split the upload into chunks (one streamed read, rows never in the orchestration's
/// history), apply the chunks a wave at a time (each chunk an idempotent activity that names only its chunk), stop
/// between waves when cancelled, and write the error report when rows failed.
/// </summary>
public sealed class ImportOrchestrator : JobOrchestrator<ImportParameters>
{
    public const string Name = "import";

    protected override async Task<JobOutcome> RunJobAsync(TaskOrchestrationContext context, JobInput<ImportParameters> input, JobRun run)
    {
        run.Report("reading");
        var split = await context.CallActivityAsync<ImportSplit.Result>(ImportSplit.Name, input, Retried);
        if (split.Error is { } fileError)
        {
            return run.Finish(JobOutcome.Failed) with { Error = fileError };
        }

        run.Total = split.Rows;
        run.Report("applying");
        var applied = 0;
        var parallelism = split.InFileOrder ? 1 : Math.Max(1, input.Parameters.Parallelism);
        while (applied < split.Chunks && !run.CancelRequested)
        {
            var wave = Enumerable.Range(applied, Math.Min(parallelism, split.Chunks - applied))
                .Select(chunk => context.CallActivityAsync<ImportApply.Result>(ImportApply.Name, new ImportApply.Request(input, chunk), Retried))
                .ToList();
            foreach (var result in await Task.WhenAll(wave))
            {
                run.Count(result.Succeeded, result.Failed);
            }

            applied += wave.Count;
            run.Report("applying");
        }

        JobFile? errorReport = null;
        if (run.Failed > 0)
        {
            run.Report("reporting");
            errorReport = await context.CallActivityAsync<JobFile>(ImportReport.Name, new ImportReport.Request(input.TenantId, input.JobId, applied), Retried);
        }

        var cancelled = applied < split.Chunks;
        var status = cancelled ? JobOutcome.Cancelled : run.Failed > 0 ? JobOutcome.CompletedWithErrors : JobOutcome.Succeeded;
        if (!cancelled)
        {
            await context.CallActivityAsync<int>(ImportCleanup.Name, new ImportReport.Request(input.TenantId, input.JobId, applied), Retried);
        }

        return run.Finish(status) with
        {
            ErrorReport = errorReport,
            Note = cancelled
                ? $"Cancelled after {run.Processed} of {run.Total} rows: the rows already applied stay applied; retry the job to apply the rest."
                : input.Parameters.DryRun ? "Dry run: every row was validated and nothing was written." : null,
        };
    }
}
