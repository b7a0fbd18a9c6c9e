using Microsoft.DurableTask;

namespace Platform.Functions.Jobs.Imports;

/// <param name="Kind">users, inventory-items, inventory-locations, inventory-movements.</param>
/// <param name="Format">csv, json or xlsx: how the upload is read.</param>
/// <param name="RetryOf">Set when this job re-imports the failed rows of an earlier job (no upload of its own).</param>
public sealed record ImportParameters(
    string Kind, ImportMode Mode, bool DryRun, string Format, string? RetryOf, int ChunkRows, int ChunkBytes, int Parallelism);

/// <summary>
/// A bulk import, as its steps: split the upload into chunks (one streamed read, rows never in the orchestration's
/// history), apply the chunks with a window of them in flight (each chunk an idempotent activity that names only its
/// chunk), start no new chunk once cancelled, and write the error report when rows failed.
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

        // A window of chunks in flight: each one that finishes makes room for the next, so the writers stay busy. (Waves
        // of chunks that all had to finish before the next wave began left them idle behind each wave's slowest chunk
        // and the engine's turn between waves.) Chunks start in file order and the window is drained before anything
        // else, so the chunks applied are always the first ones, which is what the error report and retry count on.
        var started = 0;
        var parallelism = split.InFileOrder ? 1 : Math.Max(1, input.Parameters.Parallelism);
        var inFlight = new List<Task<ImportApply.Result>>();
        while (started < split.Chunks || inFlight.Count > 0)
        {
            while (inFlight.Count < parallelism && started < split.Chunks && !run.CancelRequested)
            {
                inFlight.Add(context.CallActivityAsync<ImportApply.Result>(ImportApply.Name, new ImportApply.Request(input, started++), Retried));
            }

            if (inFlight.Count == 0)
            {
                break;
            }

            var done = await Task.WhenAny(inFlight);
            inFlight.Remove(done);
            var result = await done;
            run.Count(result.Succeeded, result.Failed);
            run.Report("applying");
        }

        var applied = started;
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
