using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Webhooks;

/// <summary>
/// A webhook endpoint copied into a sandbox tenant: its signing secrets are sealed to their tenant and endpoint, so
/// they are sealed again for the copy. The copy comes back disabled (its sandbox rule); turned on, it signs with the
/// same secret as the original, so the receiving side needs no change to check it.
/// </summary>
public sealed class EndpointSecretResealer(WebhookDirectory directory) : ISandboxResealer
{
    public string Table => WebhookDirectory.TableName;

    public void Reseal(TableEntity row, TenantId source, TenantId target)
    {
        if (!row.ContainsKey(nameof(EndpointEntity.Enabled)) || row.GetString(nameof(EndpointEntity.Id)) is not { Length: > 0 } endpointId)
        {
            return;
        }

        foreach (var property in new[] { nameof(EndpointEntity.Secret), nameof(EndpointEntity.PreviousSecret) })
        {
            if (row.GetBinary(property) is { Length: > 0 } sealedSecret)
            {
                row[property] = directory.Reseal(sealedSecret, source, target, endpointId);
            }
        }
    }
}
