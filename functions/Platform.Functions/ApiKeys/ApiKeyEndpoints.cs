using System.Globalization;
using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Roles;

namespace Platform.Functions.ApiKeys;

/// <summary>A key as lists show it: never its secret.</summary>
public sealed record ApiKeyView(
    string Id,
    string Name,
    string Prefix,
    IReadOnlyList<string> Permissions,
    string Status,
    DateTimeOffset CreatedAt,
    string CreatedBy,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RotatedAt,
    string? PreviousPrefix,
    DateTimeOffset? PreviousValidUntil,
    DateTimeOffset? LastUsedAt,
    long UseCount)
{
    public static ApiKeyView From(ApiKeyEntity key, DateTimeOffset now)
    {
        var previous = key.PreviousPrefixInGrace(now);
        return new(key.Id, key.Name, key.Prefix, key.PermissionList, key.IsExpired(now) ? "expired" : "active", key.CreatedAt, key.CreatedBy,
            key.ExpiresAt, key.RotatedAt, previous, previous is null ? null : key.PreviousValidUntil, key.LastUsedAt, key.UseCount);
    }
}

/// <summary>A key right after creation or rotation: the only time its text (<c>key</c>) is ever shown.</summary>
public sealed record ApiKeySecretView(
    string Id,
    string Name,
    string Key,
    string Prefix,
    IReadOnlyList<string> Permissions,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset CreatedAt,
    string CreatedBy,
    string? PreviousPrefix,
    DateTimeOffset? PreviousValidUntil)
{
    public static ApiKeySecretView From(ApiKeyEntity key, string text, DateTimeOffset now) =>
        new(key.Id, key.Name, text, key.Prefix, key.PermissionList, key.ExpiresAt, key.CreatedAt, key.CreatedBy,
            key.PreviousPrefixInGrace(now), key.PreviousPrefixInGrace(now) is null ? null : key.PreviousValidUntil);
}

public sealed record ApiKeyPage(IReadOnlyList<ApiKeyView> Items, string? ContinuationToken);

public sealed record CreateApiKeyRequest(string? Name, IReadOnlyList<string?>? Permissions, DateTimeOffset? ExpiresAt);

public sealed record RotateApiKeyRequest(int? GraceSeconds);

/// <summary>
/// <c>/api/v1/api-keys</c>: create, list, read, rotate and revoke the tenant's API keys. Every route needs
/// <see cref="Permissions.ApiKeysManage"/>; rotating and revoking also need <see cref="ApiKeyAccess.MayChange"/>.
/// </summary>
public static class ApiKeyEndpoints
{
    public const int DefaultGraceSeconds = 3600;
    private const int MaxPermissionEntries = 100;
    private const int MaxEchoedLength = 64;

    internal static void Map(RouteGroupBuilder group)
    {
        group.MapPost("/", Create).RequirePermission(Permissions.ApiKeysManage).WithIdempotency().WithName("CreateApiKey")
            .WithSummary("Creates an API key; its text is in the response, and only there.");
        group.MapGet("/", List).RequirePermission(Permissions.ApiKeysManage).WithName("ListApiKeys")
            .WithSummary("The tenant's API keys, oldest first, without secrets (one page holds all of them by default).");
        group.MapGet("/{id}", Get).RequirePermission(Permissions.ApiKeysManage).WithName("GetApiKey").WithSummary("One API key, without its secret.");
        group.MapPost("/{id}/rotate", Rotate).RequirePermission(Permissions.ApiKeysManage).WithIdempotency().WithName("RotateApiKey")
            .WithSummary("Gives the key a new text; the old one keeps working for graceSeconds (default 3600, at most 604800).");
        group.MapDelete("/{id}", Revoke).RequirePermission(Permissions.ApiKeysManage).WithName("RevokeApiKey")
            .WithSummary("Revokes the key at once.");
    }

    internal static async Task<Results<Created<ApiKeySecretView>, ProblemHttpResult>> Create(
        CreateApiKeyRequest request, Caller caller, HttpContext http, ApiKeyStore keys, CallerPermissions callerPermissions,
        TimeProvider time, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var validation = new Validation();
        var name = validation.Text("name", request.Name, ApiKeyStore.MaxNameLength);
        var permissions = new List<string>();
        if (request.Permissions is not { Count: > 0 } requested)
        {
            validation.Add("permissions", "must list at least one permission");
        }
        else if (requested.Count > MaxPermissionEntries)
        {
            validation.Add("permissions", $"must list at most {MaxPermissionEntries} entries");
        }
        else
        {
            foreach (var permission in requested)
            {
                if (permission is null || !Permissions.All.Contains(permission))
                {
                    validation.Add("permissions", $"'{Echo(permission)}' is not a permission (GET /api/v1/permissions lists them)");
                }
                else if (!permissions.Contains(permission))
                {
                    permissions.Add(permission);
                }
            }
        }

        if (request.ExpiresAt is { } expiresAt)
        {
            if (expiresAt <= now)
            {
                validation.Add("expiresAt", "must be in the future");
            }
            else if (expiresAt > now.AddYears(ApiKeyStore.MaxLifetimeYears))
            {
                validation.Add("expiresAt", $"must be at most {ApiKeyStore.MaxLifetimeYears} years from now");
            }
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        // A key made with a key must not outlive it, or an expiring key could mint itself a lasting successor.
        if (caller.ApiKeyId is { } parentId &&
            await keys.GetAsync(caller.Tenant, parentId, cancellationToken) is { ExpiresAt: { } parentExpiry } &&
            (request.ExpiresAt is not { } wanted || wanted > parentExpiry))
        {
            return validation.Add("expiresAt", $"must be set, and at or before {parentExpiry.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}, when the API key making this request expires").ToProblem();
        }

        var held = await callerPermissions.ForAsync(caller, cancellationToken);
        var missing = permissions.Where(p => !held.Contains(p)).ToArray();
        if (missing.Length > 0)
        {
            return TypedResults.Problem(
                $"A key's permissions cannot exceed its creator's; you do not hold: {string.Join(", ", missing)}.",
                statusCode: StatusCodes.Status403Forbidden,
                title: "Permission not held",
                extensions: new Dictionary<string, object?> { ["code"] = "permission_not_held", ["permissions"] = missing });
        }

        var issue = await keys.CreateAsync(caller.Tenant, caller.UserId, name, permissions, request.ExpiresAt, caller.Actor, cancellationToken);
        if (issue.Outcome == ApiKeyOutcome.LimitReached)
        {
            return Problems.Create(StatusCodes.Status409Conflict, "api_key_limit_reached", "Too many API keys",
                $"A tenant has at most {keys.MaxKeysPerTenant} API keys; revoke one you no longer use.");
        }

        http.Response.Headers.CacheControl = "no-store";
        return TypedResults.Created($"/api/v1/api-keys/{issue.Key!.Id}", ApiKeySecretView.From(issue.Key, issue.Text!, time.GetUtcNow()));
    }

    internal static async Task<Results<Ok<ApiKeyPage>, ProblemHttpResult>> List(
        string? pageSize, string? continuationToken, Caller caller, ApiKeyStore keys, TimeProvider time, CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var size = ApiKeyOptions.MaxPageSize;
        if (pageSize is not null && (!int.TryParse(pageSize, NumberStyles.None, CultureInfo.InvariantCulture, out size) || size is < 1 or > ApiKeyOptions.MaxPageSize))
        {
            validation.Add("pageSize", $"must be a whole number from 1 to {ApiKeyOptions.MaxPageSize}");
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        string? after = null;
        if (continuationToken is not null && (after = DecodeToken(continuationToken)) is null)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, "invalid_continuation_token", "Invalid continuation token",
                "The continuation token was not issued by this list; start again without it.");
        }

        var now = time.GetUtcNow();
        var all = await keys.ListAsync(caller.Tenant, cancellationToken);
        var rest = after is null ? all : all.Where(k => string.CompareOrdinal(k.Id, after) > 0).ToList();
        var page = rest.Take(size).Select(k => ApiKeyView.From(k, now)).ToList();
        var next = rest.Count > size ? EncodeToken(page[^1].Id) : null;
        return TypedResults.Ok(new ApiKeyPage(page, next));
    }

    internal static async Task<Results<Ok<ApiKeyView>, ProblemHttpResult>> Get(
        string id, Caller caller, HttpContext http, ApiKeyStore keys, TimeProvider time, CancellationToken cancellationToken)
    {
        if (await keys.GetAsync(caller.Tenant, id, cancellationToken) is not { } key)
        {
            return Problems.NotFound();
        }

        http.Response.Headers.ETag = ETags.For(key.ETag);
        return TypedResults.Ok(ApiKeyView.From(key, time.GetUtcNow()));
    }

    internal static async Task<Results<Ok<ApiKeySecretView>, ProblemHttpResult>> Rotate(
        string id, RotateApiKeyRequest? request, Caller caller, HttpContext http, ApiKeyStore keys, CallerPermissions callerPermissions,
        TimeProvider time, CancellationToken cancellationToken)
    {
        var graceSeconds = request?.GraceSeconds ?? DefaultGraceSeconds;
        if (graceSeconds < 0 || graceSeconds > ApiKeyStore.MaxGrace.TotalSeconds)
        {
            return new Validation().Add("graceSeconds", $"must be from 0 to {(int)ApiKeyStore.MaxGrace.TotalSeconds} (7 days)").ToProblem();
        }

        var held = await callerPermissions.ForAsync(caller, cancellationToken);
        var issue = await keys.RotateAsync(caller.Tenant, id, TimeSpan.FromSeconds(graceSeconds), caller.Actor, cancellationToken,
            mayChange: key => ApiKeyAccess.MayChange(key, caller, held));
        switch (issue.Outcome)
        {
            case ApiKeyOutcome.NotFound:
                return Problems.NotFound();
            case ApiKeyOutcome.NotPermitted:
                return ApiKeyAccess.NotPermitted.ToProblem();
            case ApiKeyOutcome.Expired:
                return Problems.Create(StatusCodes.Status409Conflict, "api_key_expired", "API key expired", "An expired key cannot be rotated; create a new one.");
            default:
                http.Response.Headers.CacheControl = "no-store";
                http.Response.Headers.ETag = ETags.For(issue.Key!.ETag);
                return TypedResults.Ok(ApiKeySecretView.From(issue.Key, issue.Text!, time.GetUtcNow()));
        }
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Revoke(
        string id, Caller caller, HttpContext http, ApiKeyStore keys, CallerPermissions callerPermissions, CancellationToken cancellationToken)
    {
        var held = await callerPermissions.ForAsync(caller, cancellationToken);
        var outcome = await keys.RevokeAsync(caller.Tenant, id, caller.Actor, cancellationToken,
            precondition: key => ETags.IfMatchAllows(http.Request, key.ETag), mayChange: key => ApiKeyAccess.MayChange(key, caller, held));
        return outcome switch
        {
            ApiKeyOutcome.NotFound => Problems.NotFound(),
            ApiKeyOutcome.NotPermitted => ApiKeyAccess.NotPermitted.ToProblem(),
            ApiKeyOutcome.PreconditionFailed => Problems.Create(StatusCodes.Status412PreconditionFailed, "precondition_failed", "Precondition failed",
                "The key changed since you read it (a rotation, or its usage was recorded); read it again."),
            _ => TypedResults.NoContent(),
        };
    }

    private static string Echo(string? value) =>
        value is null ? "null" : value.Length > MaxEchoedLength ? value[..MaxEchoedLength] + "…" : value;

    private static string EncodeToken(string id) => Base64UrlEncoder.Encode(Encoding.ASCII.GetBytes("k1:" + id));

    private static string? DecodeToken(string token)
    {
        try
        {
            var text = token.Length <= 64 ? Encoding.ASCII.GetString(Base64UrlEncoder.DecodeBytes(token)) : "";
            return text.StartsWith("k1:", StringComparison.Ordinal) && ApiKeyStore.IsId(text[3..]) ? text[3..] : null;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            return null;
        }
    }
}
