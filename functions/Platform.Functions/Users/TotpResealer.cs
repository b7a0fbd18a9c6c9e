using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>
/// A user copied into a sandbox tenant: TOTP seeds are sealed to their tenant, so they are sealed again for the copy
/// and the user signs in there with the same authenticator app. Backup codes are keyed hashes over the tenant and
/// cannot be moved: a sandbox user has none (their TOTP still works).
/// </summary>
public sealed class TotpResealer(Mfa mfa) : ISandboxResealer
{
    public string Table => UserDirectory.TableName;

    public void Reseal(TableEntity row, TenantId source, TenantId target)
    {
        if (!row.RowKey.StartsWith(UserEntity.KeyPrefix, StringComparison.Ordinal))
        {
            return;
        }

        var userId = row.RowKey[UserEntity.KeyPrefix.Length..];
        foreach (var property in new[] { nameof(UserEntity.TotpSecret), nameof(UserEntity.PendingTotpSecret) })
        {
            if (row.GetString(property) is { Length: > 0 } sealedSeed)
            {
                row[property] = mfa.Reseal(sealedSeed, source, target, userId);
            }
        }

        if (row.ContainsKey(nameof(UserEntity.BackupCodeHashes)))
        {
            row[nameof(UserEntity.BackupCodeHashes)] = "[]";
        }
    }
}
