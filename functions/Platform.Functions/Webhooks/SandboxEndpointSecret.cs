using Azure.Data.Tables;
using Platform.Functions.Storage;

namespace Platform.Functions.Webhooks;

/// <summary>
/// A webhook endpoint copied into a sandbox tenant gets a new signing secret that nobody knows, sealed to the copy.
/// Carrying the original's secret over would let the sandbox sign messages that the live endpoint's receiver trusts:
/// the sandbox's admin could point the copy at a host of their own and collect validly signed messages, or send made-up
/// ones. The copy comes back disabled (its sandbox rule); rotating its secret shows one to configure at the receiver.
/// </summary>
public sealed class SandboxEndpointSecret(WebhookDirectory directory) : ISandboxResealer
{
    public string Table => WebhookDirectory.TableName;

    public void Reseal(TableEntity row, TenantId source, TenantId target)
    {
        if (!row.ContainsKey(nameof(EndpointEntity.Secret)) || row.GetString(nameof(EndpointEntity.Id)) is not { Length: > 0 } endpointId)
        {
            return;
        }

        row[nameof(EndpointEntity.Secret)] = directory.Seal(target, endpointId, WebhookSigner.KeyOf(WebhookSigner.NewSecret()));
        row.Remove(nameof(EndpointEntity.PreviousSecret));
        row.Remove(nameof(EndpointEntity.PreviousSecretUntil));
    }
}
