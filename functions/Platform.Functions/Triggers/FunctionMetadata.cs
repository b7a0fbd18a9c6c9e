using System.Text.Json;
using System.Text.Json.Nodes;
using Platform.Functions.Storage;

namespace Platform.Functions.Triggers;

/// <summary>
/// The <c>function.json</c> of every function, derived from the declarations. Publishing runs the built app with
/// <c>--emit-function-metadata DIR</c> to write them next to host.json; nothing else is started in that mode.
/// </summary>
public static class FunctionMetadata
{
    public const string EmitArgument = "--emit-function-metadata";

    /// <summary>The one HTTP function: it proxies <c>/api/...</c> and nothing else, so invocation routes stay internal.</summary>
    public const string HttpRoute = "api/{*route}";

    public static IReadOnlyDictionary<string, JsonObject> Describe(FunctionCatalog catalog)
    {
        var functions = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal)
        {
            [FunctionDeclaration.HttpFunctionName] = Bindings(
                new JsonObject
                {
                    ["type"] = "httpTrigger",
                    ["direction"] = "in",
                    ["name"] = "req",
                    ["authLevel"] = "anonymous",
                    ["methods"] = new JsonArray("get", "post", "put", "patch", "delete", "head", "options"),
                    ["route"] = HttpRoute,
                },
                new JsonObject { ["type"] = "http", ["direction"] = "out", ["name"] = "res" }),
        };

        foreach (var function in catalog.All)
        {
            functions[function.Name] = function switch
            {
                TimerFunction timer => Bindings(new JsonObject
                {
                    ["type"] = "timerTrigger",
                    ["direction"] = "in",
                    ["name"] = "timer",
                    ["schedule"] = timer.Schedule,
                    ["useMonitor"] = true,
                }),
                QueueFunction queue => Bindings(new JsonObject
                {
                    ["type"] = "queueTrigger",
                    ["direction"] = "in",
                    ["name"] = "message",
                    ["queueName"] = queue.QueueName,
                    ["connection"] = StorageConnection.Setting,
                }),
                _ => throw new InvalidOperationException($"No binding is known for {function.GetType().Name}."),
            };
        }

        return functions;
    }

    /// <summary>Writes the files when the process was started to emit them; true means: do not run the app.</summary>
    public static bool TryEmit(IServiceProvider services, string[] args)
    {
        var index = Array.IndexOf(args, EmitArgument);
        if (index < 0)
        {
            return false;
        }

        if (index + 1 >= args.Length)
        {
            throw new ArgumentException($"{EmitArgument} needs the folder that holds host.json.");
        }

        var root = args[index + 1];
        var options = new JsonSerializerOptions { WriteIndented = true };
        foreach (var (name, function) in Describe(services.GetRequiredService<FunctionCatalog>()))
        {
            var folder = Directory.CreateDirectory(Path.Combine(root, name));
            File.WriteAllText(Path.Combine(folder.FullName, "function.json"), function.ToJsonString(options) + "\n");
        }

        return true;
    }

    private static JsonObject Bindings(params JsonObject[] bindings) => new() { ["bindings"] = new JsonArray([.. bindings]) };
}
