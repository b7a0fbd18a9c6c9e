using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Data.Tables;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>The user-management routes as a test drives them: through HTTP, like a tenant admin's script would.</summary>
internal static class UserApi
{
    public const string Users = "/api/v1/users";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A list of names (roles, permissions, emails) as an argument.</summary>
    public static string[] Names(params string[] names) => names;

    public static Task<HttpResponseMessage> PostUserAsync(this HttpClient client, object body) =>
        client.PostAsJsonAsync(Users, body, Ct);

    /// <summary>Creates a user (201 asserted) and returns the body.</summary>
    public static async Task<JsonElement> CreateUserAsync(this HttpClient client, string email, string? displayName = null, string? password = null,
        string[]? roles = null, object? fields = null)
    {
        var response = await client.PostUserAsync(new { email, displayName = displayName ?? email.Split('@')[0], password, roles, fields });
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"creating {email}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    public static async Task<string> CreateUserIdAsync(this HttpClient client, string email, string? password = null, string[]? roles = null) =>
        (await client.CreateUserAsync(email, password: password, roles: roles)).GetProperty("id").GetString()!;

    public static Task<HttpResponseMessage> PatchUserAsync(this HttpClient client, string id, object body, string? ifMatch = null) =>
        client.SendJsonAsync(HttpMethod.Patch, $"{Users}/{id}", body, ifMatch);

    public static Task<HttpResponseMessage> PutRolesAsync(this HttpClient client, string id, params string[] roles) =>
        client.PutAsJsonAsync($"{Users}/{id}/roles", new { roles }, Ct);

    public static Task<HttpResponseMessage> PutRoleAsync(this HttpClient client, string name, params string[] permissions) =>
        client.PutAsJsonAsync($"/api/v1/roles/{name}", new { permissions }, Ct);

    public static Task<HttpResponseMessage> PutSchemaAsync(this HttpClient client, params object[] fields) =>
        client.PutAsJsonAsync("/api/v1/schema/users", new { fields }, Ct);

    public static Task<HttpResponseMessage> BulkAsync(this HttpClient client, IEnumerable<object?> operations) =>
        client.PostAsJsonAsync($"{Users}/bulk", new { operations }, Ct);

    public static async Task<HttpResponseMessage> SendJsonAsync(this HttpClient client, HttpMethod method, string uri, object? body, string? ifMatch = null)
    {
        using var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return await client.SendAsync(request, Ct);
    }

    public static async Task<JsonElement> GetJsonAsync(this HttpClient client, string uri)
    {
        var response = await client.GetAsync(uri, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {uri}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    public static async Task<JsonElement> ReadJsonAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        return JsonSerializer.Deserialize<JsonElement>(text);
    }

    public static async Task<JsonElement> GetUserAsync(this HttpClient client, string id) => await client.GetJsonAsync($"{Users}/{id}");

    /// <summary>The items of one page of a list route.</summary>
    public static async Task<IReadOnlyList<JsonElement>> ListAsync(this HttpClient client, string query = "")
    {
        var page = await client.GetJsonAsync($"{Users}?pageSize=1000{(query.Length > 0 ? "&" + query : "")}");
        Assert.Equal(JsonValueKind.Null, page.GetProperty("continuationToken").ValueKind);
        return [.. page.GetProperty("items").EnumerateArray()];
    }

    public static async Task<IReadOnlyList<string>> EmailsAsync(this HttpClient client, string query = "") =>
        [.. (await client.ListAsync(query)).Select(u => u.GetProperty("email").GetString()!)];

    /// <summary>Every page of a list, following continuation tokens; returns the pages.</summary>
    public static async Task<IReadOnlyList<IReadOnlyList<JsonElement>>> PagesAsync(this HttpClient client, string uri)
    {
        var pages = new List<IReadOnlyList<JsonElement>>();
        string? token = null;
        do
        {
            var page = await client.GetJsonAsync(token is null ? uri : $"{uri}&continuationToken={Uri.EscapeDataString(token)}");
            pages.Add([.. page.GetProperty("items").EnumerateArray()]);
            token = page.GetProperty("continuationToken").GetString();
            Assert.True(pages.Count < 500, "the list never ended");
        }
        while (token is not null);

        return pages;
    }

    public static string Id(this JsonElement item) => item.GetProperty("id").GetString()!;

    public static string Str(this JsonElement item, string property) => item.GetProperty(property).GetString()!;

    public static IReadOnlyList<string> Strings(this JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];

    public static IReadOnlyList<string> Roles(this JsonElement user) => user.GetProperty("roles").Strings();

    /// <summary>The field names of a validation problem's <c>errors</c>.</summary>
    public static async Task<IReadOnlyList<string>> ValidationErrorsAsync(this HttpResponseMessage response)
    {
        var problem = await response.ReadProblemAsync(400, "validation_failed");
        return [.. problem.GetProperty("errors").EnumerateObject().Select(p => p.Name)];
    }

    public static async Task<HttpClient> SignInAsAsync(this PlatformApp app, TestTenant tenant, string email, string password = Accounts.Password)
    {
        using var anonymous = app.CreateClient();
        var response = await anonymous.PostLoginAsync(tenant.Slug, email, password);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"signing in {email}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return app.CreateClient((await Accounts.ReadTokensAsync(response)).AccessToken);
    }

    /// <summary>The stored row of a user, as Table storage holds it.</summary>
    public static Task<TableEntity?> StoredUserAsync(this PlatformApp app, TestTenant tenant, string id) =>
        app.Storage.TenantTable(UserDirectory.TableName).For(new TenantId(tenant.Id)).GetAsync<TableEntity>(UserEntity.KeyFor(id), Ct);
}
