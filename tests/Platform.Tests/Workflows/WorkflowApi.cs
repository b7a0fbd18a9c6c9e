using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Workflows;

/// <summary>Drives the workflow routes as a client does: define, start, poll a run, send events.</summary>
internal static class WorkflowApi
{
    public const string WorkflowsPath = "/api/v1/workflows";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static readonly object ExportUsers = new { type = "export", parameters = new { kind = "users", format = "csv" } };

    public static async Task<JsonElement> DefineAsync(this HttpClient client, string id, params object[] steps)
    {
        var response = await client.PutAsJsonAsync($"{WorkflowsPath}/{id}", new { name = "Workflow " + id, steps }, Ct);
        Assert.True(response.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK, $"PUT {id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    public static async Task<string> StartRunAsync(this HttpClient client, string id, object? input = null)
    {
        var response = await client.PostAsJsonAsync($"{WorkflowsPath}/{id}/runs", new { input }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"POST runs: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        var run = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var runId = run.GetProperty("runId").GetString()!;
        Assert.Equal($"{WorkflowsPath}/{id}/runs/{runId}", response.Headers.Location?.OriginalString);
        return runId;
    }

    public static Task<JsonElement> RunAsync(this HttpClient client, string id, string runId) =>
        client.GetFromJsonAsync<JsonElement>($"{WorkflowsPath}/{id}/runs/{runId}", Ct);

    public static Task<JsonElement> RunUntilAsync(this HttpClient client, string id, string runId, Func<JsonElement, bool> done, string what, TimeSpan? timeout = null) =>
        Eventually.Until(() => client.RunAsync(id, runId), done, what, timeout ?? TimeSpan.FromSeconds(90));

    public static Task<JsonElement> FinishedRunAsync(this HttpClient client, string id, string runId, TimeSpan? timeout = null) =>
        client.RunUntilAsync(id, runId, run => run.GetProperty("status").GetString() is "succeeded" or "failed" or "cancelled", $"run {runId} to finish", timeout);

    public static Task<JsonElement> StepWaitingAsync(this HttpClient client, string id, string runId, string stepId) =>
        client.RunUntilAsync(id, runId, run => Step(run, stepId).GetProperty("status").GetString() == "waiting", $"step {stepId} to wait");

    public static JsonElement Step(JsonElement run, string stepId)
    {
        foreach (var step in run.GetProperty("steps").EnumerateArray())
        {
            if (step.GetProperty("id").GetString() == stepId)
            {
                return step;
            }

            if (step.TryGetProperty("steps", out var children) && children.ValueKind == JsonValueKind.Array)
            {
                foreach (var child in children.EnumerateArray())
                {
                    if (child.GetProperty("id").GetString() == stepId)
                    {
                        return child;
                    }
                }
            }
        }

        throw new InvalidOperationException($"The run has no step {stepId}: {run}");
    }

    public static string StatusOf(JsonElement run, string stepId) => Step(run, stepId).GetProperty("status").GetString()!;

    public static Dictionary<string, string> Statuses(JsonElement run) =>
        run.GetProperty("steps").EnumerateArray().ToDictionary(s => s.GetProperty("id").GetString()!, s => s.GetProperty("status").GetString()!);
}
