using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Backups;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Backups;

/// <summary>Starting, reading and checking backups through the API, as a client would; and reading what a backup stored.</summary>
public static class BackupApi
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An app that runs backup jobs (engine messages kept invisible for a minute, as for reports: no test here kills an instance).</summary>
    public static IDictionary<string, string?> RunsBackups(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?> { ["Platform:Jobs:MessageVisibilityTimeout"] = "00:01:00" };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return PlatformApp.RunsJobs(settings);
    }

    /// <summary>Starts a backup; the 202's job.</summary>
    public static async Task<JsonElement> StartBackupAsync(this HttpClient client)
    {
        var response = await client.PostAsync("/api/v1/backups", null, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"POST /api/v1/backups: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        var job = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal($"/api/v1/jobs/{job.GetProperty("id").GetString()}", response.Headers.Location?.OriginalString);
        return job;
    }

    /// <summary>Backs the tenant up and waits for the job to succeed; the backup as GET /api/v1/backups/{id} shows it.</summary>
    public static async Task<JsonElement> BackupAsync(this HttpClient client)
    {
        var id = (await client.StartBackupAsync()).GetProperty("id").GetString()!;
        var finished = await client.FinishedJobAsync(id);
        Assert.True(finished.GetProperty("status").GetString() == "succeeded", $"the backup job ended {finished}");
        return await client.GetBackupAsync(id);
    }

    public static async Task<JsonElement> GetBackupAsync(this HttpClient client, string id)
    {
        var response = await client.GetAsync($"/api/v1/backups/{id}", Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET backup {id}: {(int)response.StatusCode}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    public static async Task<List<JsonElement>> ListBackupsAsync(this HttpClient client)
    {
        var response = await client.GetAsync("/api/v1/backups", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("items").EnumerateArray()];
    }

    /// <summary>Starts a verification of the backup and waits for its job; the finished job.</summary>
    public static async Task<JsonElement> VerifyBackupAsync(this HttpClient client, string id)
    {
        var response = await client.PostAsync($"/api/v1/backups/{id}/verify", null, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"verify {id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        var job = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return await client.FinishedJobAsync(job.GetProperty("id").GetString()!);
    }

    public static string BackupId(this JsonElement backup) => backup.GetProperty("id").GetString()!;

    public static JsonElement Part(this JsonElement backup, string name) =>
        backup.GetProperty("parts").EnumerateArray().Single(p => p.GetProperty("name").GetString() == name);

    /// <summary>The lines a part of a backup holds, opened with the backup's key as a restore would.</summary>
    public static async Task<List<JsonElement>> ReadPartAsync(this PlatformApp app, string tenantId, JsonElement backup, string name)
    {
        var store = app.Services.GetRequiredService<BackupStore>();
        var files = app.Services.GetRequiredService<BackupFiles>();
        var tenant = new TenantId(tenantId);
        var id = backup.GetProperty("id").GetString()!;
        var row = (await store.GetAsync(tenant, id, Ct))!;
        var key = store.Unwrap(tenant, id, row.WrappedKey);
        var file = backup.Part(name).GetProperty("file").GetString()!;
        var lines = new List<JsonElement>();
        await foreach (var line in files.ReadLinesAsync(store.File(tenant, id, file), key, BackupFormat.Context(tenantId, id, file), name, Ct))
        {
            lines.Add(line);
        }

        return lines;
    }

    /// <summary>The stored bytes of one file of a backup, and a client to write them back (a tamper test's tools).</summary>
    public static Azure.Storage.Blobs.BlobClient BackupFile(this PlatformApp app, string tenantId, string backupId, string file) =>
        app.Services.GetRequiredService<BackupStore>().File(new TenantId(tenantId), backupId, file);
}
