using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Triggers;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Deployment;

/// <summary>
/// Compiles bicep/main.bicep once (through infra/bicep.sh, the same pinned Bicep CLI the build uses) and exposes
/// every resource of the ARM JSON, including the ones inside module deployments, with the template that holds it.
/// </summary>
public sealed class CompiledBicepTemplate : IAsyncLifetime
{
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("platform-bicep-");
    private JsonDocument? _document;
    private List<ArmResource> _resources = [];

    /// <summary>The compiled template as text, for checks that a construct appears nowhere in it.</summary>
    public string CompiledJson { get; private set; } = string.Empty;

    public JsonElement Root => (_document ?? throw new InvalidOperationException("not compiled")).RootElement;

    /// <summary>Resources this deployment creates or updates (not <c>existing</c> references).</summary>
    public IEnumerable<ArmResource> Declared(string type) =>
        _resources.Where(r => string.Equals(r.Type, type, StringComparison.OrdinalIgnoreCase) && !r.IsExisting);

    public async ValueTask InitializeAsync()
    {
        var output = Path.Combine(_work.FullName, "main.json");
        var build = await BicepScript.RunAsync(TimeSpan.FromMinutes(5), CancellationToken.None, "build-json", output);
        if (build.ExitCode != 0 || !File.Exists(output))
        {
            throw new InvalidOperationException($"infra/bicep.sh build-json failed ({build.ExitCode}):\n{build.Output}");
        }

        CompiledJson = await File.ReadAllTextAsync(output);
        _document = JsonDocument.Parse(CompiledJson);
        var resources = new List<ArmResource>();
        ArmTemplate.Collect(_document.RootElement, deployment: null, resources);
        _resources = resources;
    }

    public ValueTask DisposeAsync()
    {
        _document?.Dispose();
        _work.Delete(recursive: true);
        return ValueTask.CompletedTask;
    }
}

public sealed class BicepTemplateTests(CompiledBicepTemplate template, Azurite azurite) : IClassFixture<CompiledBicepTemplate>
{
    private const string StorageBlobDataOwner = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b";
    private const string StorageQueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";
    private const string StorageTableDataContributor = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3";
    private const string MonitoringMetricsPublisher = "3913510d-42f4-4e42-8a64-420c390055eb";
    private const string KeyVaultSecretsUser = "4633458b-17de-408a-b874-0445c86b69e6";

    private const string StorageAccountType = "Microsoft.Storage/storageAccounts";
    private const string RoleAssignmentType = "Microsoft.Authorization/roleAssignments";

    /// <summary>Roles that can change resources or grant access: none of them may be assigned by this template.</summary>
    private static readonly Dictionary<string, string> ForbiddenRoles = new(StringComparer.OrdinalIgnoreCase)
    {
        ["8e3af657-a8ff-443c-a75c-2fe8c4bcb635"] = "Owner",
        ["b24988ac-6180-42a0-ab88-20f7382dd24c"] = "Contributor",
        ["18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"] = "User Access Administrator",
        ["f58310d9-a9f6-439a-9e8d-f62e7b41a168"] = "Role Based Access Control Administrator",
        ["17d1049b-9a84-46fb-8f53-869881c3d3ab"] = "Storage Account Contributor",
        ["81a9662b-bebf-436f-a333-f67b29880f12"] = "Storage Account Key Operator Service Role",
        ["00482a5a-887f-4fb3-b363-3b7fe8e74483"] = "Key Vault Administrator",
        ["f25e0fa2-a7c8-4377-a976-54943a77a395"] = "Key Vault Contributor",
        ["de139f84-1756-47ae-9be6-808fbbe84772"] = "Website Contributor",
    };

    /// <summary>What the app identity holds, and on which kind of resource.</summary>
    private static readonly Dictionary<string, string> AppIdentityRoles = new(StringComparer.OrdinalIgnoreCase)
    {
        [StorageBlobDataOwner] = StorageAccountType,
        [StorageQueueDataContributor] = StorageAccountType,
        [StorageTableDataContributor] = StorageAccountType,
        [MonitoringMetricsPublisher] = "Microsoft.Insights/components",
        [KeyVaultSecretsUser] = "Microsoft.KeyVault/vaults",
    };

    private static readonly string[] StorageIdentitySettings =
    [
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
        "AzureWebJobsStorage__tableServiceUri",
        "AzureWebJobsStorage__clientId",
    ];

    private static readonly string[] ForbiddenSettingFragments =
    [
        "AccountKey=",
        "SharedAccessSignature=",
        "listKeys(",
        "listAccountSas(",
        "listServiceSas(",
        "UseDevelopmentStorage",
    ];

    private static readonly int[] FlexInstanceMemorySizes = [512, 2048, 4096];

    [Fact]
    public void StorageAccountRefusesSharedKeyAccess()
    {
        var account = Assert.Single(template.Declared(StorageAccountType));

        Assert.Equal(JsonValueKind.False, account.Properties.GetProperty("allowSharedKeyAccess").ValueKind);
        Assert.Equal(JsonValueKind.True, account.Properties.GetProperty("defaultToOAuthAuthentication").ValueKind);
    }

    [Fact]
    public void StorageAccountAcceptsOnlyHttpsWithTls12OrLater()
    {
        var account = Assert.Single(template.Declared(StorageAccountType));

        Assert.Equal(JsonValueKind.True, account.Properties.GetProperty("supportsHttpsTrafficOnly").ValueKind);
        Assert.Equal("TLS1_2", account.Properties.GetProperty("minimumTlsVersion").GetString());
    }

    [Fact]
    public void StorageAccountAndContainersAllowNoAnonymousBlobAccess()
    {
        var account = Assert.Single(template.Declared(StorageAccountType));
        Assert.Equal(JsonValueKind.False, account.Properties.GetProperty("allowBlobPublicAccess").ValueKind);

        var containers = template.Declared("Microsoft.Storage/storageAccounts/blobServices/containers").ToList();
        Assert.NotEmpty(containers);
        Assert.All(containers, container => Assert.Equal("None", container.Properties.GetProperty("publicAccess").GetString()));
    }

    [Fact]
    public void NoAppSettingCarriesAStorageKeyOrConnectionString()
    {
        var settings = AppSettings();

        Assert.All(settings, setting => Assert.All(ForbiddenSettingFragments, fragment =>
            Assert.DoesNotContain(fragment, setting.Value, StringComparison.OrdinalIgnoreCase)));
        // The plain name holds a connection string; on Azure only the identity-based __ settings may exist.
        Assert.DoesNotContain("AzureWebJobsStorage", settings.Keys);
        Assert.DoesNotContain("WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", settings.Keys);
    }

    [Fact]
    public void TemplateNeverListsKeysOrSharedAccessSignatures()
    {
        Assert.DoesNotContain("listKeys(", template.CompiledJson, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("listAccountSas(", template.CompiledJson, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("listServiceSas(", template.CompiledJson, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("AccountKey=", template.CompiledJson, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void AppReachesStorageByServiceUrisAndItsManagedIdentity()
    {
        var settings = AppSettings();

        Assert.Equal("managedidentity", settings["AzureWebJobsStorage__credential"]);
        Assert.All(StorageIdentitySettings, name => Assert.False(string.IsNullOrWhiteSpace(settings[name]), name));
        Assert.Equal(settings["AzureWebJobsStorage__clientId"], settings["AZURE_CLIENT_ID"]);
    }

    [Fact]
    public void TemplateDeclaresExactlyTheQueuesTheAppsQueueFunctionsConsume()
    {
        using var app = new PlatformApp(azurite, settings: new Dictionary<string, string?> { ["Platform:Triggers:Standalone"] = "false" });
        var declared = app.Services.GetRequiredService<FunctionCatalog>().All.OfType<QueueFunction>()
            .SelectMany(f => new[] { f.QueueName, f.PoisonQueueName }).Distinct().Order(StringComparer.Ordinal);

        var inTemplate = template.Root.GetProperty("variables").GetProperty("queueNames").EnumerateArray()
            .Select(q => q.GetString()!).Order(StringComparer.Ordinal);

        Assert.Equal(declared, inTemplate);
    }

    [Fact]
    public void AppSettingsConfigurePlatformForTheFunctionsHost()
    {
        var settings = AppSettings();

        Assert.Equal("false", settings["Platform__Triggers__Standalone"]);
        Assert.False(string.IsNullOrWhiteSpace(settings["Platform__KeyVault__Uri"]));
        Assert.Contains("https://", settings["Platform__PublicBaseUrl"], StringComparison.Ordinal);
        // function.json names the plain queues, so the app must not prefix them on Azure.
        Assert.True(
            !settings.TryGetValue("Platform__Storage__Prefix", out var prefix) || prefix.Length == 0,
            "Platform__Storage__Prefix must be unset on Azure");
        // Flex Consumption takes the runtime from functionAppConfig and rejects these settings.
        Assert.DoesNotContain("FUNCTIONS_WORKER_RUNTIME", settings.Keys);
        Assert.DoesNotContain("WEBSITE_RUN_FROM_PACKAGE", settings.Keys);
    }

    [Fact]
    public void TelemetryIsSentWithTheAppIdentity()
    {
        var settings = AppSettings();

        Assert.False(string.IsNullOrWhiteSpace(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]));
        var authentication = settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"];
        Assert.Contains("Authorization=AAD", authentication, StringComparison.Ordinal);
        Assert.Contains("ClientId=", authentication, StringComparison.Ordinal);
    }

    [Fact]
    public void ApplicationInsightsAcceptsOnlyEntraAuthenticatedTelemetry()
    {
        var component = Assert.Single(template.Declared("Microsoft.Insights/components"));

        Assert.Equal(JsonValueKind.True, component.Properties.GetProperty("DisableLocalAuth").ValueKind);
        Assert.False(string.IsNullOrWhiteSpace(component.Properties.GetProperty("WorkspaceResourceId").GetString()));
        Assert.Single(template.Declared("Microsoft.OperationalInsights/workspaces"));
    }

    [Fact]
    public void FunctionAppServesHttpsOnly()
    {
        var site = Assert.Single(template.Declared("Microsoft.Web/sites"));

        Assert.Equal(JsonValueKind.True, site.Properties.GetProperty("httpsOnly").ValueKind);
        var siteConfig = site.Properties.GetProperty("siteConfig");
        Assert.Equal("1.2", siteConfig.GetProperty("minTlsVersion").GetString());
        Assert.Equal("Disabled", siteConfig.GetProperty("ftpsState").GetString());
    }

    [Fact]
    public void FunctionAppHasNoPublishingPasswords()
    {
        var policies = template.Declared("Microsoft.Web/sites/basicPublishingCredentialsPolicies").ToList();

        Assert.Equal(2, policies.Count);
        Assert.All(policies, policy => Assert.Equal(JsonValueKind.False, policy.Properties.GetProperty("allow").ValueKind));
    }

    [Fact]
    public void FunctionAppRunsAsItsUserAssignedIdentity()
    {
        var site = Assert.Single(template.Declared("Microsoft.Web/sites"));

        var identity = site.Body.GetProperty("identity");
        Assert.Equal("UserAssigned", identity.GetProperty("type").GetString());
        Assert.Single(identity.GetProperty("userAssignedIdentities").EnumerateObject());
        Assert.Single(template.Declared("Microsoft.ManagedIdentity/userAssignedIdentities"));

        var packageStorage = site.Properties.GetProperty("functionAppConfig").GetProperty("deployment").GetProperty("storage");
        Assert.Equal("blobContainer", packageStorage.GetProperty("type").GetString());
        Assert.Equal("UserAssignedIdentity", packageStorage.GetProperty("authentication").GetProperty("type").GetString());
    }

    [Fact]
    public void FunctionAppRunsOnFlexConsumptionAsACustomHandler()
    {
        var plan = Assert.Single(template.Declared("Microsoft.Web/serverfarms"));
        Assert.Equal("FC1", plan.Body.GetProperty("sku").GetProperty("name").GetString());
        Assert.Equal("FlexConsumption", plan.Body.GetProperty("sku").GetProperty("tier").GetString());
        Assert.Equal(JsonValueKind.True, plan.Properties.GetProperty("reserved").ValueKind);

        var site = Assert.Single(template.Declared("Microsoft.Web/sites"));
        Assert.Contains("linux", site.Body.GetProperty("kind").GetString(), StringComparison.Ordinal);
        var config = site.Properties.GetProperty("functionAppConfig");
        Assert.Equal("custom", config.GetProperty("runtime").GetProperty("name").GetString());
        var scale = config.GetProperty("scaleAndConcurrency");
        Assert.Contains("maximumInstanceCount", scale.GetProperty("maximumInstanceCount").GetString(), StringComparison.Ordinal);
        Assert.Contains("instanceMemoryMB", scale.GetProperty("instanceMemoryMB").GetString(), StringComparison.Ordinal);

        // The durable worker runs in the app and the scale controller cannot see the task hub's queues: at least one
        // instance must stay up to poll them.
        var alwaysReady = Assert.Single(scale.GetProperty("alwaysReady").EnumerateArray());
        Assert.Equal("http", alwaysReady.GetProperty("name").GetString());
        Assert.Contains("alwaysReadyInstances", alwaysReady.GetProperty("instanceCount").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, template.Root.GetProperty("parameters").GetProperty("alwaysReadyInstances").GetProperty("minValue").GetInt32());
    }

    [Fact]
    public void ScaleIsSetByParameters()
    {
        var parameters = template.Root.GetProperty("parameters");

        var memory = parameters.GetProperty("instanceMemoryMB");
        Assert.Equal(FlexInstanceMemorySizes, memory.GetProperty("allowedValues").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal(2048, memory.GetProperty("defaultValue").GetInt32());

        var instances = parameters.GetProperty("maximumInstanceCount");
        Assert.Equal(1000, instances.GetProperty("maxValue").GetInt32());
        Assert.InRange(instances.GetProperty("defaultValue").GetInt32(), 1, 1000);

        Assert.True(parameters.TryGetProperty("environmentName", out _));
        Assert.True(parameters.TryGetProperty("location", out _));
    }

    [Fact]
    public void AppIdentityHoldsExactlyTheDataRolesItNeeds()
    {
        var appAssignments = template.Declared(RoleAssignmentType)
            .Where(a => a.Properties.GetProperty("principalType").GetString() == "ServicePrincipal")
            .ToList();

        var granted = appAssignments.Select(ArmTemplate.RoleDefinitionGuid).ToList();
        Assert.Equal(AppIdentityRoles.Keys.Order(StringComparer.OrdinalIgnoreCase), granted.Order(StringComparer.OrdinalIgnoreCase));

        Assert.All(appAssignments, assignment =>
        {
            var role = ArmTemplate.RoleDefinitionGuid(assignment);
            // Scoped to the one resource the role is about, never to the resource group or subscription.
            Assert.Contains(AppIdentityRoles[role], assignment.Body.GetProperty("scope").GetString(), StringComparison.OrdinalIgnoreCase);
            // Granted to the app identity: the module parameter the identity's principal ID is passed into.
            Assert.Equal("[parameters('appPrincipalId')]", assignment.Properties.GetProperty("principalId").GetString());
            var passed = assignment.Deployment!.Properties.GetProperty("parameters").GetProperty("appPrincipalId").GetProperty("value").GetString();
            Assert.Contains("'platform-identity'", passed, StringComparison.Ordinal);
            Assert.Contains("outputs.principalId", passed, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void NoRoleAssignmentGrantsOwnershipContributionOrAccessManagement()
    {
        var assignments = template.Declared(RoleAssignmentType).ToList();
        Assert.NotEmpty(assignments);

        Assert.All(assignments, assignment =>
        {
            var role = ArmTemplate.RoleDefinitionGuid(assignment);
            Assert.False(ForbiddenRoles.TryGetValue(role, out var name), $"role assignment grants {name}");
            Assert.True(assignment.Body.TryGetProperty("scope", out _), "every role assignment is scoped to one resource");
        });
    }

    [Fact]
    public void KeyVaultAuthorizesWithRbacAndKeepsDeletedSecrets()
    {
        var vault = Assert.Single(template.Declared("Microsoft.KeyVault/vaults"));

        Assert.Equal(JsonValueKind.True, vault.Properties.GetProperty("enableRbacAuthorization").ValueKind);
        Assert.Equal(JsonValueKind.True, vault.Properties.GetProperty("enableSoftDelete").ValueKind);
        Assert.False(vault.Properties.TryGetProperty("accessPolicies", out _), "an RBAC vault has no access policies");
        // Secret values never pass through the template.
        Assert.Empty(template.Declared("Microsoft.KeyVault/vaults/secrets"));
    }

    [Fact]
    public void TemplateOutputsTheApiBaseUrl()
    {
        var output = template.Root.GetProperty("outputs").GetProperty("API_BASE_URL");

        Assert.Equal("string", output.GetProperty("type").GetString());
        var value = output.GetProperty("value").GetString();
        Assert.Contains("https://", value, StringComparison.Ordinal);
        Assert.Contains("defaultHostName", value, StringComparison.Ordinal);
        Assert.Contains("/api/v1", value, StringComparison.Ordinal);
    }

    [Fact]
    public void ParametersFileSetsEveryRequiredParameterAndNoUnknownOne()
    {
        var declared = template.Root.GetProperty("parameters").EnumerateObject().ToList();
        using var file = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repo.Root, "bicep", "main.parameters.json")));
        var supplied = file.RootElement.GetProperty("parameters").EnumerateObject().Select(p => p.Name).ToList();

        Assert.All(supplied, name => Assert.Contains(name, declared.Select(p => p.Name)));
        Assert.All(
            declared.Where(p => !p.Value.TryGetProperty("defaultValue", out _)),
            required => Assert.Contains(required.Name, supplied));
    }

    [Fact]
    public void AzdDeploysTheFunctionProjectToTheTaggedApp()
    {
        var azureYaml = File.ReadAllText(Path.Combine(Repo.Root, "azure.yaml"));

        Assert.Matches(new Regex(@"^\s+path:\s*bicep\s*$", RegexOptions.Multiline), azureYaml);
        Assert.Matches(new Regex(@"^\s+host:\s*function\s*$", RegexOptions.Multiline), azureYaml);
        var project = Regex.Match(azureYaml, @"^\s+project:\s*(\S+)\s*$", RegexOptions.Multiline);
        Assert.True(project.Success, "azure.yaml names the service project");
        Assert.True(
            File.Exists(Path.Combine(Repo.Root, project.Groups[1].Value, "Platform.Functions.csproj")),
            "the azd service project is the function app");

        var service = Regex.Match(azureYaml, @"^services:\s*\n\s+([A-Za-z0-9_-]+):", RegexOptions.Multiline);
        Assert.True(service.Success, "azure.yaml declares a service");
        var site = Assert.Single(template.Declared("Microsoft.Web/sites"));
        var serviceNameParameter = site.Deployment!.Body.GetProperty("properties").GetProperty("template")
            .GetProperty("parameters").GetProperty("serviceName").GetProperty("defaultValue").GetString();
        Assert.Equal(service.Groups[1].Value, serviceNameParameter);
        Assert.Contains("azd-service-name", site.Body.GetProperty("tags").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LintReportsNoWarnings()
    {
        var lint = await BicepScript.RunAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken, "lint");

        Assert.True(lint.ExitCode == 0, $"infra/bicep.sh lint failed ({lint.ExitCode}):\n{lint.Output}");
        Assert.DoesNotContain(" : Warning ", lint.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(" : Error ", lint.Output, StringComparison.Ordinal);
    }

    /// <summary>The app settings the template gives the function app, by name (ARM expressions left as text).</summary>
    private Dictionary<string, string> AppSettings()
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var config in template.Declared("Microsoft.Web/sites/config"))
        {
            var name = config.Body.GetProperty("name").GetString()!;
            if (!name.EndsWith("'appsettings')]", StringComparison.Ordinal) && !name.EndsWith("/appsettings", StringComparison.Ordinal))
            {
                continue;
            }

            Assert.Equal(JsonValueKind.Object, config.Properties.ValueKind);
            foreach (var setting in config.Properties.EnumerateObject())
            {
                settings[setting.Name] = setting.Value.ToString();
            }
        }

        foreach (var site in template.Declared("Microsoft.Web/sites"))
        {
            if (site.Properties.TryGetProperty("siteConfig", out var siteConfig) && siteConfig.TryGetProperty("appSettings", out var list))
            {
                foreach (var setting in list.EnumerateArray())
                {
                    settings[setting.GetProperty("name").GetString()!] = setting.GetProperty("value").ToString();
                }
            }
        }

        Assert.NotEmpty(settings);
        return settings;
    }
}

/// <summary>A resource of the compiled template, with the template and the module deployment that contain it.</summary>
public sealed record ArmResource(string Type, JsonElement Body, JsonElement Template, ArmResource? Deployment)
{
    public bool IsExisting => Body.TryGetProperty("existing", out var existing) && existing.ValueKind == JsonValueKind.True;

    public JsonElement Properties => Body.TryGetProperty("properties", out var properties) ? properties : default;
}

internal static partial class ArmTemplate
{
    /// <summary>
    /// Adds every resource of <paramref name="template"/> to <paramref name="into"/> and descends into nested
    /// (module) deployments. Resources are an array, or an object keyed by symbolic name (languageVersion 2.0).
    /// </summary>
    public static void Collect(JsonElement template, ArmResource? deployment, List<ArmResource> into)
    {
        if (!template.TryGetProperty("resources", out var resources))
        {
            return;
        }

        var items = resources.ValueKind == JsonValueKind.Object
            ? resources.EnumerateObject().Select(p => p.Value).ToList()
            : resources.EnumerateArray().ToList();
        foreach (var body in items)
        {
            var resource = new ArmResource(body.GetProperty("type").GetString()!, body, template, deployment);
            into.Add(resource);
            if (string.Equals(resource.Type, "Microsoft.Resources/deployments", StringComparison.OrdinalIgnoreCase)
                && resource.Properties.ValueKind == JsonValueKind.Object
                && resource.Properties.TryGetProperty("template", out var inner))
            {
                Collect(inner, resource, into);
            }
        }
    }

    /// <summary>The built-in role GUID a role assignment grants, written inline or through a template variable.</summary>
    public static string RoleDefinitionGuid(ArmResource assignment)
    {
        var expression = assignment.Properties.GetProperty("roleDefinitionId").GetString()!;
        var guids = GuidPattern().Matches(expression).Select(m => m.Value).ToList();
        if (assignment.Template.TryGetProperty("variables", out var variables))
        {
            foreach (Match reference in VariableReference().Matches(expression))
            {
                if (variables.TryGetProperty(reference.Groups[1].Value, out var value) && value.ValueKind == JsonValueKind.String)
                {
                    guids.AddRange(GuidPattern().Matches(value.GetString()!).Select(m => m.Value));
                }
            }
        }

        Assert.True(guids.Count == 1, $"cannot tell which role '{expression}' grants");
        return guids[0];
    }

    [GeneratedRegex("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")]
    private static partial Regex GuidPattern();

    [GeneratedRegex(@"variables\('([^']+)'\)")]
    private static partial Regex VariableReference();
}

internal sealed record ScriptResult(int ExitCode, string StandardOutput, string StandardError)
{
    public string Output => $"{StandardOutput}\n{StandardError}";
}

internal static class BicepScript
{
    /// <summary>Runs <c>bash infra/bicep.sh ARGS</c> from the repository root, for at most <paramref name="timeout"/>.</summary>
    public static async Task<ScriptResult> RunAsync(TimeSpan timeout, CancellationToken cancellationToken, params string[] arguments)
    {
        var start = new ProcessStartInfo("bash")
        {
            WorkingDirectory = Repo.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(Repo.Root, "infra", "bicep.sh"));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // A test host started by `dotnet test` may carry MSBuild variables that would steer the nested restore.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start bash");
        var standardOutput = process.StandardOutput.ReadToEndAsync(deadline.Token);
        var standardError = process.StandardError.ReadToEndAsync(deadline.Token);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"infra/bicep.sh {string.Join(' ', arguments)} did not finish within {timeout}");
        }

        return new ScriptResult(process.ExitCode, await standardOutput, await standardError);
    }
}
