using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Docs;

/// <summary>
/// The OpenAPI document as third-party tools read it: valid against the OpenAPI 3.1 schema (checked by
/// @seriousme/openapi-schema-validator, pinned in infra/package.json) and complete enough for generated SDKs to
/// have typed errors.
/// </summary>
public sealed class OpenApiDocumentTests(Azurite azurite) : IAsyncLifetime
{
    private static readonly string[] Methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
    private PlatformApp _app = null!;
    private string _text = "";
    private JsonElement _document;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _app = await new PlatformApp(azurite).ReadyAsync();
        using var client = _app.CreateClient();
        var response = await client.GetAsync("/api/openapi/v1.json", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        _text = await response.Content.ReadAsStringAsync(Ct);
        _document = JsonDocument.Parse(_text).RootElement;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private IEnumerable<(string Method, string Path, JsonElement Operation)> Operations() =>
        _document.GetProperty("paths").EnumerateObject().SelectMany(path => path.Value.EnumerateObject()
            .Where(op => Methods.Contains(op.Name))
            .Select(op => (op.Name.ToUpperInvariant(), path.Name, op.Value)));

    [Fact]
    public async Task TheDocumentIsValidAgainstTheOpenApi31Schema()
    {
        Assert.StartsWith("3.1.", _document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var cli = Path.Combine(Repo.Root, "infra", "node_modules", "@seriousme", "openapi-schema-validator", "bin", "validate-api-cli.js");
        Assert.True(File.Exists(cli), $"The OpenAPI validator is not installed at {cli}. Run 'npm ci' in infra/ (the test command does).");
        var file = Path.Combine(Directory.CreateTempSubdirectory("platform-openapi-").FullName, "v1.json");
        await File.WriteAllTextAsync(file, _text, Ct);

        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(cli);
        start.ArgumentList.Add(file);
        using var node = Process.Start(start)!;
        var output = node.StandardOutput.ReadToEndAsync(Ct);
        var errors = node.StandardError.ReadToEndAsync(Ct);
        await node.WaitForExitAsync(Ct);

        Assert.True(node.ExitCode == 0, $"The validator refused the document:\n{await output}\n{await errors}");
        Assert.True(JsonDocument.Parse(await output).RootElement.GetProperty("valid").GetBoolean());
    }

    [Fact]
    public void ComponentNamesAreOnesEveryToolAccepts()
    {
        foreach (var kind in _document.GetProperty("components").EnumerateObject())
        {
            foreach (var component in kind.Value.EnumerateObject())
            {
                Assert.Matches("^[a-zA-Z0-9._-]+$", component.Name);
            }
        }
    }

    [Fact]
    public void EveryOperationHasASummaryAnIdAndItsProblemResponses()
    {
        var problems = new List<string>();
        var operationIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (method, path, operation) in Operations())
        {
            var name = $"{method} {path}";
            if (!operation.TryGetProperty("summary", out var summary) || string.IsNullOrWhiteSpace(summary.GetString()))
            {
                problems.Add($"{name}: no summary");
            }

            if (!operation.TryGetProperty("operationId", out var id) || !operationIds.Add(id.GetString()!))
            {
                problems.Add($"{name}: no operationId, or one used twice");
            }

            var responses = operation.GetProperty("responses").EnumerateObject().ToDictionary(r => r.Name, r => r.Value);
            var problemResponses = responses.Where(r => ProblemSchemaOf(r.Value) is not null).Select(r => r.Key).ToList();
            var takesInput = operation.TryGetProperty("parameters", out _) || operation.TryGetProperty("requestBody", out _) || operation.TryGetProperty("security", out _);
            // Only a route that reads nothing from the request (no parameter, body or credential) has no 4xx to give.
            if (takesInput ? !problemResponses.Any(s => s.StartsWith('4')) : !problemResponses.Contains("default"))
            {
                problems.Add($"{name}: no problem response (responses: {string.Join(", ", responses.Keys)})");
            }

            if (responses.Keys.Any(s => s.StartsWith('4')) && problemResponses.Count(s => s.StartsWith('4')) != responses.Keys.Count(s => s.StartsWith('4')))
            {
                problems.Add($"{name}: a 4xx response without the problem schema");
            }

            if (responses.TryGetValue("400", out var badRequest) && ProblemSchemaOf(badRequest) != "ValidationProblem")
            {
                problems.Add($"{name}: 400 does not describe validation errors");
            }

            if (operation.TryGetProperty("security", out _) && !(responses.ContainsKey("401") && responses.ContainsKey("403")))
            {
                problems.Add($"{name}: needs a credential but documents no 401/403");
            }

            if (path.Contains('{', StringComparison.Ordinal) && !responses.ContainsKey("404"))
            {
                problems.Add($"{name}: names a resource but documents no 404");
            }
        }

        Assert.True(operationIds.Count >= 65, $"only {operationIds.Count} operations");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void TheProblemSchemaCarriesTheCodeAndValidationProblemsTheirErrors()
    {
        var schemas = _document.GetProperty("components").GetProperty("schemas");
        var problem = schemas.GetProperty("Problem");
        Assert.Contains("code", problem.GetProperty("required").EnumerateArray().Select(r => r.GetString()));
        foreach (var member in new[] { "type", "title", "status", "detail", "code", "traceId" })
        {
            Assert.True(problem.GetProperty("properties").TryGetProperty(member, out _), member);
        }

        var validation = schemas.GetProperty("ValidationProblem").GetProperty("allOf").EnumerateArray().ToList();
        Assert.Contains(validation, part => part.TryGetProperty("$ref", out var reference) && reference.GetString() == "#/components/schemas/Problem");
        Assert.Contains(validation, part => part.TryGetProperty("properties", out var properties) && properties.TryGetProperty("errors", out _));

        var idempotent = Operations().Single(o => o.Operation.GetProperty("operationId").GetString() == "CreateItem").Operation;
        Assert.Contains("Idempotency-Key", idempotent.GetProperty("parameters").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        Assert.True(idempotent.GetProperty("responses").TryGetProperty("422", out _));
        var login = Operations().Single(o => o.Operation.GetProperty("operationId").GetString() == "Login").Operation;
        Assert.True(login.GetProperty("responses").TryGetProperty("429", out _));
        Assert.False(login.TryGetProperty("security", out _));
    }

    /// <summary>The problem schema a response refers to for application/problem+json, or null.</summary>
    private static string? ProblemSchemaOf(JsonElement response) =>
        response.TryGetProperty("content", out var content) && content.TryGetProperty("application/problem+json", out var media) &&
        media.GetProperty("schema").TryGetProperty("$ref", out var reference) &&
        reference.GetString() is "#/components/schemas/Problem" or "#/components/schemas/ValidationProblem"
            ? reference.GetString()!["#/components/schemas/".Length..]
            : null;
}
