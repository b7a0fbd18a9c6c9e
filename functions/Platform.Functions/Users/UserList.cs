using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Query;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

public static partial class UsersEndpoints
{
    internal static readonly IReadOnlyDictionary<string, FieldType> UserFields = new Dictionary<string, FieldType>(StringComparer.Ordinal)
    {
        ["id"] = FieldType.String,
        ["email"] = FieldType.String,
        ["displayName"] = FieldType.String,
        ["status"] = FieldType.String,
        ["roles"] = FieldType.StringList,
        ["emailVerified"] = FieldType.Boolean,
        ["mfaEnabled"] = FieldType.Boolean,
        ["createdAt"] = FieldType.Timestamp,
        ["updatedAt"] = FieldType.Timestamp,
        ["lastLoginAt"] = FieldType.Timestamp,
        ["deletedAt"] = FieldType.Timestamp,
    };

    /// <summary>What <c>filter</c> and <c>sort</c> may name for this tenant: the user fields and its custom fields.</summary>
    public static FilterSchema FilterSchemaFor(SchemaDocument schema) =>
        new(UserFields, name => schema.Fields.FirstOrDefault(f => f.Name == name)?.Type switch
        {
            "string" or "enum" => FieldType.String,
            "number" => FieldType.Number,
            "boolean" => FieldType.Boolean,
            "date" => FieldType.Timestamp,
            _ => null,
        });

    internal static async Task<Results<Ok<PagedList<UserView>>, ProblemHttpResult>> ListUsers(
        string? filter, string? q, string? sort, bool? includeDeleted, string? pageSize, string? continuationToken,
        Caller caller, UserProjections projections, UserSchemas schemas, ContinuationTokens tokens, CancellationToken cancellationToken)
    {
        var filterSchema = FilterSchemaFor(await schemas.GetAsync(caller.Tenant, cancellationToken));
        var users = (await projections.RowsAsync(caller.Tenant, cancellationToken))
            .Where(u => includeDeleted == true || u.View.Status != UserStatus.Deleted);
        return InMemoryLists.Page(users, filterSchema, filter, q, sort, pageSize, continuationToken, (includeDeleted == true).ToString(), caller.Tenant, tokens);
    }
}
