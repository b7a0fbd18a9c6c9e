using Platform.Tests.Infrastructure;
using Platform.Tests.Inventory;

namespace Platform.Tests.Backups;

/// <summary>
/// Attacks on a stored backup: a flipped byte, a cut-off part, a manifest taken from another tenant's backup. Each is
/// found by verification, which names the damaged file, and the backup is no longer shown as verified.
/// </summary>
public sealed class BackupTamperTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => BackupApi.RunsBackups();

    [Fact]
    public async Task A_flipped_byte_in_a_part_is_found_and_named()
    {
        await Admin.CreateItemAsync("BOLT-M8");
        var backup = await Admin.BackupAsync();
        var file = backup.Part("inventory").GetProperty("file").GetString()!;
        var blob = App.BackupFile(Tenant.Id, backup.Id(), file);
        var bytes = (await blob.DownloadContentAsync(Ct)).Value.Content.ToArray();
        bytes[bytes.Length / 2] ^= 0x01;
        await blob.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true, Ct);

        var job = await Admin.VerifyBackupAsync(backup.Id());

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("inventory", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        var after = await Admin.GetBackupAsync(backup.Id());
        Assert.False(after.GetProperty("verified").GetBoolean());
        Assert.StartsWith("inventory:", after.GetProperty("failedPart").GetString(), StringComparison.Ordinal);
        Assert.False((await Admin.ListBackupsAsync()).Single().GetProperty("verified").GetBoolean());
    }

    [Fact]
    public async Task A_truncated_part_is_found_even_when_cut_between_segments()
    {
        var backup = await Admin.BackupAsync();
        var users = App.BackupFile(Tenant.Id, backup.Id(), backup.Part("users").GetProperty("file").GetString()!);
        var bytes = (await users.DownloadContentAsync(Ct)).Value.Content.ToArray();
        await users.UploadAsync(BinaryData.FromBytes(bytes[..^5]), overwrite: true, Ct);

        var job = await Admin.VerifyBackupAsync(backup.Id());

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("users", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains("truncated", job.GetProperty("error").GetString(), StringComparison.Ordinal);

        // The last segment gone whole (a cut exactly at a segment boundary) is found too: every file ends with a marked last segment.
        var roles = App.BackupFile(Tenant.Id, backup.Id(), backup.Part("roles").GetProperty("file").GetString()!);
        var magicOnly = (await roles.DownloadContentAsync(Ct)).Value.Content.ToArray()[..4];
        await roles.UploadAsync(BinaryData.FromBytes(magicOnly), overwrite: true, Ct);
        await users.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true, Ct);
        var second = await Admin.VerifyBackupAsync(backup.Id());
        Assert.Equal("failed", second.GetProperty("status").GetString());
        Assert.Contains("roles", second.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains("truncated", second.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_manifest_or_part_from_another_tenants_backup_does_not_pass()
    {
        var backup = await Admin.BackupAsync();
        var other = await App.SignUpAsync();
        using var otherAdmin = await App.SignedInClientAsync(other);
        var foreign = await otherAdmin.BackupAsync();

        var manifest = App.BackupFile(Tenant.Id, backup.Id(), "manifest");
        var own = (await manifest.DownloadContentAsync(Ct)).Value.Content;
        await manifest.UploadAsync((await App.BackupFile(other.Id, foreign.Id(), "manifest").DownloadContentAsync(Ct)).Value.Content, overwrite: true, Ct);

        var job = await Admin.VerifyBackupAsync(backup.Id());
        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("manifest", job.GetProperty("error").GetString(), StringComparison.Ordinal);

        // With its own manifest back but the other tenant's roles part in place of its own, the part is named.
        await manifest.UploadAsync(own, overwrite: true, Ct);
        var file = backup.Part("roles").GetProperty("file").GetString()!;
        await App.BackupFile(Tenant.Id, backup.Id(), file).UploadAsync(
            (await App.BackupFile(other.Id, foreign.Id(), file).DownloadContentAsync(Ct)).Value.Content, overwrite: true, Ct);
        var second = await Admin.VerifyBackupAsync(backup.Id());
        Assert.Equal("failed", second.GetProperty("status").GetString());
        Assert.Contains("roles", second.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.False((await Admin.GetBackupAsync(backup.Id())).GetProperty("verified").GetBoolean());
    }

    [Fact]
    public async Task A_backup_whose_files_are_gone_is_not_verified()
    {
        var backup = await Admin.BackupAsync();
        await App.BackupFile(Tenant.Id, backup.Id(), backup.Part("audit").GetProperty("file").GetString()!).DeleteAsync(cancellationToken: Ct);

        var job = await Admin.VerifyBackupAsync(backup.Id());

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("audit: its file is missing", job.GetProperty("error").GetString(), StringComparison.Ordinal);
    }
}
