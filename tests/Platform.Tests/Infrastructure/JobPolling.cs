using System.Net.Http.Json;
using System.Text.Json;

namespace Platform.Tests.Infrastructure;

/// <summary>Waits for a job through the jobs API, as a client would: polling its status route with a deadline.</summary>
public static class JobPolling
{
    public static Task<JsonElement> FinishedJobAsync(this HttpClient client, string id, TimeSpan? timeout = null) =>
        Eventually.Until(() => client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}", TestContext.Current.CancellationToken),
            job => job.GetProperty("status").GetString() is not ("queued" or "running"), $"job {id} to finish", timeout ?? TimeSpan.FromSeconds(90));
}
