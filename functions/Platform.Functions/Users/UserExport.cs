using System.Globalization;
using System.Runtime.CompilerServices;
using Platform.Functions.Auth;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Query;
using Platform.Functions.Roles;

namespace Platform.Functions.Users;

/// <summary>
/// The <c>users</c> export: the tenant's users read from the users table a page at a time, filtered in the users
/// list's filter language (the same fields, custom fields as <c>fields.&lt;name&gt;</c>, the same evaluation).
/// Deleted users are left out unless the filter names <c>status</c> or <c>deletedAt</c> (then the filter alone
/// decides, e.g. <c>status eq 'deleted'</c>); purged users, which are only tombstones, never appear. Only what the
/// API shows of a user is written: no password hash, TOTP seed, backup codes or settings.
/// </summary>
public sealed class UserExport(UserDirectory users, UserSchemas schemas, CallerPermissions permissions) : IExportKind
{
    public const string Kind = "users";

    /// <summary>Users read per storage page: what the export holds in memory at once.</summary>
    public const int PageSize = 1000;

    /// <summary>Types a custom field may have in a filter: what <see cref="UsersEndpoints.FilterSchemaFor"/> maps the schema's types to.</summary>
    private static readonly FieldType[] CustomFieldTypes = [FieldType.String, FieldType.Number, FieldType.Boolean, FieldType.Timestamp];

    /// <summary>
    /// The custom fields are one column holding their JSON object (as the API shows <c>fields</c>): columns are the
    /// same for every tenant, and the import reads that column back, so an export can be imported again.
    /// </summary>
    public IReadOnlyList<string> Columns { get; } =
        ["id", "email", "displayName", "status", "roles", "emailVerified", "createdAt", "updatedAt", "lastLoginAt", "deletedAt", "fields"];

    /// <summary>
    /// Checks the filter without knowing the tenant (the seam gives none), so a custom field's type is not known
    /// here: a filter passes when some type for each custom field it names makes it well-typed. The export checks it
    /// again against the tenant's schema when it starts, and a field the tenant does not have fails the job there
    /// with the parser's message.
    /// </summary>
    public string? CheckFilter(string? filter)
    {
        var assumed = new Dictionary<string, int>(StringComparer.Ordinal);
        string? firstProblem = null;
        // At most 4^4 typings: a filter naming more than four custom fields is left to the check at the start.
        for (var attempt = 0; attempt < 256; attempt++)
        {
            var named = new List<string>();
            try
            {
                FilterParser.ParseOptional(filter, new FilterSchema(UsersEndpoints.UserFields, name =>
                {
                    if (!named.Contains(name))
                    {
                        named.Add(name);
                    }

                    return CustomFieldTypes[assumed.GetValueOrDefault(name)];
                }));
                return null;
            }
            catch (FilterException ex)
            {
                firstProblem ??= ex.Message;
                if (named.Count == 0 || !NextTyping(assumed, named))
                {
                    return firstProblem;
                }
            }
        }

        return null;
    }

    /// <summary>The next typing to try, changing the field named last first: the parser stops at the first error, which is most often there.</summary>
    private static bool NextTyping(Dictionary<string, int> assumed, List<string> named)
    {
        for (var i = named.Count - 1; i >= 0; i--)
        {
            var next = assumed.GetValueOrDefault(named[i]) + 1;
            if (next < CustomFieldTypes.Length)
            {
                assumed[named[i]] = next;
                return true;
            }

            assumed[named[i]] = 0;
        }

        return false;
    }

    /// <exception cref="FilterException">The filter does not check out against the tenant's schema.</exception>
    /// <exception cref="UnauthorizedAccessException">The caller no longer holds <c>users.read</c>.</exception>
    public async IAsyncEnumerable<IReadOnlyList<string?>> RowsAsync(Caller caller, string? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!(await permissions.ForAsync(caller, cancellationToken)).Contains(Permissions.UsersRead))
        {
            throw new UnauthorizedAccessException("Exporting users needs the users.read permission.");
        }

        var where = FilterParser.ParseOptional(filter, UsersEndpoints.FilterSchemaFor(await schemas.GetAsync(caller.Tenant, cancellationToken)));
        var includeDeleted = FilterFields.Mentions(where, "status", "deletedAt");
        await foreach (var user in users.Users(caller.Tenant).QueryAsync<UserEntity>(UserEntity.KeyPrefix, PageSize, cancellationToken))
        {
            if (user.Status == UserStatus.Purged || (user.Status == UserStatus.Deleted && !includeDeleted))
            {
                continue;
            }

            if (where is null || where.Evaluate(UserListItem.From(user).ValueOf))
            {
                yield return Row(user);
            }
        }
    }

    private static string?[] Row(UserEntity user) =>
    [
        user.Id,
        user.Email,
        user.DisplayName,
        user.Status,
        string.Join(';', user.RoleList),
        user.EmailVerified ? "true" : "false",
        Timestamp(user.CreatedAt),
        Timestamp(user.UpdatedAt),
        user.LastLoginAt is { } lastLogin ? Timestamp(lastLogin) : null,
        user.DeletedAt is { } deleted ? Timestamp(deleted) : null,
        user.Fields,
    ];

    internal static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
}
