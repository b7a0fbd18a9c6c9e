using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

public sealed class HttpBasicsTests(Azurite azurite) : IAsyncLifetime
{
    private PlatformApp _app = null!;
    private HttpClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _app = await new PlatformApp(azurite, services: s => s.AddSingleton<IStartupFilter, ThrowingRoute>()).ReadyAsync();
        _client = _app.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task LivenessAnswersHealthy()
    {
        var response = await _client.GetAsync("/api/health/live", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("healthy", body.GetProperty("status").GetString());
    }

    [Fact]
    public async Task ReadinessReportsTableBlobAndQueueStorage()
    {
        var response = await _client.GetAsync("/api/health/ready", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("healthy", body.GetProperty("status").GetString());
        foreach (var check in new[] { "tables", "blobs", "queues", "storage" })
        {
            Assert.Equal("healthy", body.GetProperty("checks").GetProperty(check).GetProperty("status").GetString());
        }
    }

    [Fact]
    public async Task RootAnswersForTheFunctionsHostProbe()
    {
        var response = await _client.GetAsync("/", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("/api/v1/nothing-here")]
    [InlineData("/not-a-function")]
    public async Task UnknownRouteIsANotFoundProblem(string path)
    {
        var response = await _client.GetAsync(path, Ct);

        await response.ReadProblemAsync(404, "not_found");
    }

    [Fact]
    public async Task WrongMethodIsAMethodNotAllowedProblem()
    {
        var response = await _client.DeleteAsync("/api/health/live", Ct);

        await response.ReadProblemAsync(405, "method_not_allowed");
        Assert.Contains("GET", response.Content.Headers.Allow);
    }

    [Fact]
    public async Task UnhandledExceptionIsA500ProblemThatRevealsNothing()
    {
        var response = await _client.GetAsync(ThrowingRoute.Path, Ct);

        var problem = await response.ReadProblemAsync(500, "internal_error");
        var text = problem.GetRawText();
        Assert.DoesNotContain(ThrowingRoute.Secret, text, StringComparison.Ordinal);
        Assert.DoesNotContain("InvalidOperationException", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResponsesCarrySecurityHeaders()
    {
        var response = await _client.GetAsync("/api/health/live", Ct);

        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("DENY", Assert.Single(response.Headers.GetValues("X-Frame-Options")));
        Assert.Equal("no-referrer", Assert.Single(response.Headers.GetValues("Referrer-Policy")));
        Assert.Contains("default-src 'none'", Assert.Single(response.Headers.GetValues("Content-Security-Policy")), StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("Server"));
    }

    [Fact]
    public async Task OpenApiDocumentDescribesThePublicRoutesOnly()
    {
        var response = await _client.GetAsync("/api/openapi/v1.json", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/api/health/live", paths);
        Assert.DoesNotContain("/Jobs", paths);
        Assert.DoesNotContain("/StorageHousekeeping", paths);
    }

    [Fact]
    public async Task InteractiveDocsAreServed()
    {
        var response = await _client.GetAsync("/api/docs/v1", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        // Scalar resolves the document URL against the page's base path.
        Assert.Contains("\"url\":\"api/openapi/v1.json\"", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedJsonIsABadRequestProblem()
    {
        var response = await _client.PostAsync("/StorageHousekeeping", Json("{\"Data\": {"), Ct);

        var problem = await response.ReadProblemAsync(400, "invalid_json");
        Assert.Contains("line 1", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongContentTypeIsAnUnsupportedMediaTypeProblem()
    {
        var response = await _client.PostAsync("/StorageHousekeeping", new StringContent("{}", Encoding.UTF8, "text/plain"), Ct);

        await response.ReadProblemAsync(415, "unsupported_media_type");
    }

    [Fact]
    public async Task OversizedBodyIsAPayloadTooLargeProblem()
    {
        var body = "{\"Data\":{\"message\":\"" + new string('x', 600 * 1024) + "\"}}";

        var response = await _client.PostAsync("/PasswordResets", Json(body), Ct);

        var problem = await response.ReadProblemAsync(413, "payload_too_large");
        Assert.Equal(512 * 1024, problem.GetProperty("limit").GetInt64());
    }

    [Fact]
    public async Task EmptyBodyIsABadRequestProblem()
    {
        var response = await _client.PostAsync("/StorageHousekeeping", Json(""), Ct);

        await response.ReadProblemAsync(400, "invalid_body");
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>A route that fails, added behind the app's own pipeline so its error handling is what answers.</summary>
    private sealed class ThrowingRoute : IStartupFilter
    {
        public const string Path = "/api/test/throws";
        public const string Secret = "connection-password-hunter2";

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            next(app);
            app.Map(Path, branch => branch.Run(_ => throw new InvalidOperationException(Secret)));
        };
    }
}
