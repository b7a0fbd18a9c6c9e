using System.Text.RegularExpressions;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>
/// A capability owns its tables and containers: only code in the folder that declares a name opens it. Others call
/// the owner's commands and queries, so partition keys, change logs and invariants stay in one place.
/// </summary>
public sealed partial class CapabilityOwnershipTests
{
    private static readonly string AppFolder = Path.Combine(Repo.Root, "functions", "Platform.Functions");

    /// <summary>Folders of shared plumbing that open tables by a name their caller hands in, never by a capability's constant.</summary>
    private static readonly HashSet<string> Plumbing = new(StringComparer.Ordinal) { "Storage" };

    [Fact]
    public void NoCapabilityOpensATableDeclaredByAnother()
    {
        var sources = Directory.GetFiles(AppFolder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal) &&
                        !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToDictionary(f => f, File.ReadAllText);
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (file, text) in sources)
        {
            foreach (Match declaration in TypeDeclaration().Matches(text))
            {
                owners.TryAdd(declaration.Groups["name"].Value, CapabilityOf(file));
            }
        }

        var trespasses = new List<string>();
        foreach (var (file, text) in sources)
        {
            var capability = CapabilityOf(file);
            if (Plumbing.Contains(capability))
            {
                continue;
            }

            foreach (Match opened in TableOpened().Matches(text))
            {
                var type = opened.Groups["type"].Value;
                if (owners.TryGetValue(type, out var owner) && owner != capability)
                {
                    trespasses.Add($"{Path.GetRelativePath(AppFolder, file)} opens {type}.{opened.Groups["constant"].Value}, a table of {owner}");
                }
            }
        }

        Assert.True(trespasses.Count == 0, string.Join('\n', trespasses));
    }

    [Fact]
    public void TheCheckSeesATrespass()
    {
        // The pattern the test relies on matches the ways a table is opened, so a trespass cannot slip past unseen.
        Assert.Matches(TableOpened(), "storage.TenantTable(UserDirectory.TableName).For(tenant)");
        Assert.Matches(TableOpened(), "storage.Table(TenantDirectory.TableName).QueryAsync");
        Assert.Matches(TableOpened(), "services.AddStorageTable(Sessions.TableName)");
        Assert.Matches(TableOpened(), "storage.Container(MeEndpoints.AvatarContainer).GetBlobClient(name)");
    }

    private static string CapabilityOf(string file) =>
        Path.GetRelativePath(AppFolder, file).Split(Path.DirectorySeparatorChar) is { Length: > 1 } parts ? parts[0] : "";

    [GeneratedRegex(@"\b(?:class|record|struct|interface)\s+(?<name>[A-Z]\w*)")]
    private static partial Regex TypeDeclaration();

    [GeneratedRegex(@"\b(?:TenantTable|Table|AddStorageTable|Container|AddStorageContainer)\(\s*(?<type>[A-Z]\w*)\.(?<constant>\w*(?:TableName|Container))\b")]
    private static partial Regex TableOpened();
}
