using Microsoft.Extensions.Options;

namespace Platform.Functions.Storage;

/// <summary>
/// Where the storage account is, read from <c>AzureWebJobsStorage</c> - the same setting the Functions host uses:
/// either a connection string (Azurite, development) or, on Azure, the account's service URIs
/// (<c>AzureWebJobsStorage__tableServiceUri</c>, <c>__blobServiceUri</c>, <c>__queueServiceUri</c>) reached with
/// managed identity (<c>__clientId</c> picks a user-assigned identity). No account keys on Azure.
/// </summary>
public sealed class StorageConnection
{
    public const string Setting = "AzureWebJobsStorage";

    public string? ConnectionString { get; set; }
    public Uri? TableServiceUri { get; set; }
    public Uri? BlobServiceUri { get; set; }
    public Uri? QueueServiceUri { get; set; }
    public string? ClientId { get; set; }

    public bool UsesConnectionString => !string.IsNullOrWhiteSpace(ConnectionString);

    internal static void Bind(StorageConnection target, IConfiguration configuration)
    {
        var section = configuration.GetSection(Setting);
        target.ConnectionString = section.Value;
        target.TableServiceUri = ReadUri(section, "tableServiceUri");
        target.BlobServiceUri = ReadUri(section, "blobServiceUri");
        target.QueueServiceUri = ReadUri(section, "queueServiceUri");
        target.ClientId = section["clientId"];
    }

    private static Uri? ReadUri(IConfigurationSection section, string key) =>
        Uri.TryCreate(section[key], UriKind.Absolute, out var uri) ? uri : null;

    internal sealed class Validator(IConfiguration configuration) : IValidateOptions<StorageConnection>
    {
        public ValidateOptionsResult Validate(string? name, StorageConnection options)
        {
            if (options.UsesConnectionString)
            {
                return ValidateOptionsResult.Success;
            }

            var section = configuration.GetSection(Setting);
            var failures = new List<string>();
            foreach (var key in new[] { "tableServiceUri", "blobServiceUri", "queueServiceUri" })
            {
                var raw = section[key];
                if (string.IsNullOrWhiteSpace(raw))
                {
                    failures.Add($"{Setting}__{key} is not set");
                }
                else if (!Uri.TryCreate(raw, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps && !uri.IsLoopback)
                {
                    failures.Add($"{Setting}__{key} must be an absolute https URI");
                }
            }

            return failures.Count == 0
                ? ValidateOptionsResult.Success
                : ValidateOptionsResult.Fail(
                    $"Storage is not configured: set {Setting} to a connection string (UseDevelopmentStorage=true for Azurite) " +
                    $"or set the account's service URIs for managed identity ({string.Join("; ", failures)}).");
        }
    }
}
