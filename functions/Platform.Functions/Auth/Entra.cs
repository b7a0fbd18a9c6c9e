using System.Security.Claims;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Identity.Web;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// Microsoft Entra ID sign-in, on only when an <c>AzureAd</c> section names a client id. Entra access tokens are
/// validated by Microsoft.Identity.Web and then mapped to a Platform user: by the link of the Entra tenant and
/// object id, or - when the Platform tenant trusts that Entra tenant and allows it - on first use by the token's
/// verified email, which then creates the link. The principal that results looks like a Platform token's (<c>sub</c>,
/// <c>tid</c>, <c>sid</c>), so every route treats both alike.
/// </summary>
public static class Entra
{
    public const string Scheme = "Entra";
    public const string Section = "AzureAd";
    public const string SessionPrefix = "entra:";

    public static bool IsConfigured(IConfiguration configuration) => !string.IsNullOrWhiteSpace(configuration[$"{Section}:ClientId"]);

    internal static IHostApplicationBuilder Add(IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(EntraDirectory.TableName);
        builder.Services.AddSingleton<EntraDirectory>();
        builder.Services.AddSingleton<UnlinkRemovedUsers>();
        builder.Services.AddSingleton<IUserDeletionHook>(sp => sp.GetRequiredService<UnlinkRemovedUsers>());
        builder.Services.AddSingleton<IUserPurgeHook>(sp => sp.GetRequiredService<UnlinkRemovedUsers>());
        builder.Services.AddSingleton<EntraCommands>();
        if (!IsConfigured(builder.Configuration))
        {
            return builder;
        }

        builder.Services.AddAuthentication()
            .AddMicrosoftIdentityWebApi(builder.Configuration.GetSection(Section), jwtBearerScheme: Scheme, subscribeToJwtBearerMiddlewareDiagnosticsEvents: false);
        var instance = (builder.Configuration[$"{Section}:Instance"] ?? "https://login.microsoftonline.com/").TrimEnd('/');
        builder.Services.PostConfigure<JwtBearerOptions>(Scheme, bearer =>
        {
            // Any Entra tenant may present a token; which of them count is decided by the trust rows, so the issuer
            // rule is the multi-tenant one: the issuer must be the v2.0 issuer of the tenant named in the token's tid.
            bearer.TokenValidationParameters.IssuerValidator = (issuer, token, _) =>
                token is JsonWebToken jwt && Guid.TryParse(jwt.GetPayloadValue<string>("tid"), out var tid) &&
                string.Equals(issuer, $"{instance}/{tid}/v2.0", StringComparison.Ordinal)
                    ? issuer
                    : throw new SecurityTokenInvalidIssuerException("The issuer is not the Entra ID issuer of the token's tenant.");

            var validated = bearer.Events.OnTokenValidated;
            bearer.Events.OnTokenValidated = async context =>
            {
                await validated(context);
                if (context.Result is null || context.Result.Succeeded)
                {
                    var directory = context.HttpContext.RequestServices.GetRequiredService<EntraDirectory>();
                    if (await directory.MapAsync(context.Principal!, context.HttpContext.RequestAborted) is { } mapped)
                    {
                        context.Principal = mapped;
                    }
                    else
                    {
                        context.Fail("No active Platform user is linked to this Entra ID account.");
                    }
                }
            };
        });
        return builder;
    }

    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1").WithTags("Entra ID").RequirePermission(Permissions.TenantManage);
        group.MapGet("/tenant/entra", GetTrust).WithName("GetEntraTrust").WithSummary("The Microsoft Entra ID tenant this tenant trusts.");
        group.MapPut("/tenant/entra", PutTrust).WithName("PutEntraTrust").WithSummary("Trusts a Microsoft Entra ID tenant for sign-in.");
        group.MapDelete("/tenant/entra", DeleteTrust).WithName("DeleteEntraTrust").WithSummary("Ends the trust in the Microsoft Entra ID tenant.");
        group.MapPut("/users/{id}/entra", LinkUser).WithName("LinkEntraUser").WithSummary("Links a user to a Microsoft Entra ID account.");
        return group;
    }

    /// <param name="EntraToken">Proof of control: an Entra ID access token for this app, valid exactly as for sign-in,
    /// issued by the Entra tenant named in <paramref name="EntraTenantId"/> (its <c>tid</c>). Without it anyone could
    /// claim someone else's Entra tenant first and block or catch its sign-ins.</param>
    public sealed record TrustRequest(string? EntraTenantId, bool AllowEmailLinking, string? EntraToken = null);

    public sealed record TrustView(string EntraTenantId, bool AllowEmailLinking);

    public sealed record LinkRequest(string? ObjectId);

    internal static async Task<Results<Ok<TrustView>, ProblemHttpResult>> GetTrust(Caller caller, EntraDirectory entra, CancellationToken cancellationToken)
    {
        return await entra.GetTrustAsync(caller.Tenant, cancellationToken) is { } trust
            ? TypedResults.Ok(new TrustView(trust.EntraTenantId, trust.AllowEmailLinking))
            : Problems.NotFound("This tenant trusts no Entra ID tenant.");
    }

    internal static async Task<Results<Ok<TrustView>, ProblemHttpResult>> PutTrust(
        TrustRequest request, Caller caller, EntraCommands commands, CancellationToken cancellationToken) =>
        (await commands.TrustAsync(caller, request.EntraTenantId, request.AllowEmailLinking, request.EntraToken, cancellationToken)).ToResult(view => TypedResults.Ok(view));

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteTrust(
        Caller caller, EntraCommands commands, CancellationToken cancellationToken) =>
        (await commands.UntrustAsync(caller, cancellationToken)).ToResult(_ => TypedResults.NoContent());

    internal static async Task<Results<NoContent, ProblemHttpResult>> LinkUser(
        string id, LinkRequest request, Caller caller, EntraCommands commands, CancellationToken cancellationToken) =>
        (await commands.LinkAsync(caller, id, request.ObjectId, cancellationToken)).ToResult(_ => TypedResults.NoContent());
}

/// <summary>
/// Which Platform tenant trusts which Entra tenant (row <c>trust:{entraTenant}</c>) and which Entra account is which
/// Platform user (row <c>link:{entraTenant}:{objectId}</c>), in one platform partition of <c>entra</c>.
/// </summary>
public sealed class EntraDirectory(StorageAccount storage, UserDirectory users, SessionGuard guard, IConfiguration configuration,
    IOptionsMonitor<JwtBearerOptions> bearerOptions)
{
    public const string TableName = "entra";
    private const string Partition = "entra";
    private const int MaxTokenLength = 16 * 1024;

    /// <summary>
    /// Null when <paramref name="token"/> proves the caller signed in to <paramref name="entraTenant"/>: validated with
    /// the sign-in scheme's own parameters (signature, issuer of its tid, audience, lifetime), and its tid is that tenant.
    /// </summary>
    public async Task<CommandError?> CheckProofAsync(string? token, Guid entraTenant, CancellationToken cancellationToken)
    {
        if (!Entra.IsConfigured(configuration))
        {
            return new CommandError(409, "entra_not_configured", "Entra ID sign-in is not configured on this deployment (AzureAd:ClientId).");
        }

        if (string.IsNullOrWhiteSpace(token))
        {
            return CommandError.Invalid(new Validation().Add("entraToken", "must be an Entra ID access token for this app, issued by the Entra tenant to trust"));
        }

        var bearer = bearerOptions.Get(Entra.Scheme);
        var parameters = bearer.TokenValidationParameters.Clone();
        var metadata = bearer.Configuration ??
            (bearer.ConfigurationManager is { } manager ? await manager.GetConfigurationAsync(cancellationToken) : null);
        if (metadata is not null)
        {
            parameters.IssuerSigningKeys = [.. parameters.IssuerSigningKeys ?? [], .. metadata.SigningKeys];
        }

        var result = token.Length > MaxTokenLength
            ? null
            : await new JsonWebTokenHandler().ValidateTokenAsync(token, parameters);
        if (result is not { IsValid: true, SecurityToken: JsonWebToken jwt })
        {
            return new CommandError(403, "entra_token_invalid", "The entraToken is not a valid, unexpired Entra ID access token for this app.");
        }

        return Guid.TryParse(jwt.TryGetPayloadValue<string>("tid", out var tid) ? tid : null, out var issuedBy) && issuedBy == entraTenant
            ? null
            : new CommandError(403, "entra_tenant_mismatch", "The entraToken was issued by another Entra ID tenant than entraTenantId; sign in to the tenant you want to trust.");
    }

    private TableClient Table => storage.Table(TableName);

    public async Task<EntraTrustEntity?> GetTrustAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        var pointer = await Table.GetEntityIfExistsAsync<EntraTrustEntity>(Partition, "tenant:" + tenant.Value, cancellationToken: cancellationToken);
        return pointer.HasValue ? pointer.Value : null;
    }

    /// <summary>Records the trust both ways; false when another Platform tenant already trusts that Entra tenant.</summary>
    public async Task<bool> TrySetTrustAsync(TenantId tenant, string entraTenantId, bool allowEmailLinking, CancellationToken cancellationToken)
    {
        var existing = await Table.GetEntityIfExistsAsync<EntraTrustEntity>(Partition, "trust:" + entraTenantId, cancellationToken: cancellationToken);
        if (existing.HasValue && existing.Value!.TenantId != tenant.Value)
        {
            return false;
        }

        // A trust set afresh gets a new id, and a link counts only under the trust id it was made under: links of an
        // ended trust never come back, even one written by a sign-in racing the removal.
        var trustId = existing.HasValue ? existing.Value!.TrustId : Guid.NewGuid().ToString("N");
        var trust = new EntraTrustEntity { PartitionKey = Partition, RowKey = "trust:" + entraTenantId, TenantId = tenant.Value, EntraTenantId = entraTenantId, AllowEmailLinking = allowEmailLinking, TrustId = trustId };
        var pointer = new EntraTrustEntity { PartitionKey = Partition, RowKey = "tenant:" + tenant.Value, TenantId = tenant.Value, EntraTenantId = entraTenantId, AllowEmailLinking = allowEmailLinking, TrustId = trustId };
        var actions = new List<TableTransactionAction>
        {
            existing.HasValue
                ? new(TableTransactionActionType.UpdateReplace, trust, existing.Value!.ETag)
                : new(TableTransactionActionType.Add, trust),
            new(TableTransactionActionType.UpsertReplace, pointer),
        };

        // Moving to another Entra tenant ends the old trust in the same transaction.
        var previous = await GetTrustAsync(tenant, cancellationToken);
        if (previous is not null && previous.EntraTenantId != entraTenantId)
        {
            actions.Add(new(TableTransactionActionType.Delete, new TableEntity(Partition, "trust:" + previous.EntraTenantId), ETag.All));
        }

        try
        {
            await Table.SubmitTransactionAsync(actions, cancellationToken);
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412)
        {
            return false;
        }

        if (previous is not null && previous.EntraTenantId != entraTenantId)
        {
            await DeleteLinksAsync(tenant, previous.EntraTenantId, cancellationToken);
        }

        return true;
    }

    /// <summary>Ends the tenant's trust and deletes its links; they stop counting at once (they are checked against the trust).</summary>
    public async Task<bool> RemoveTrustAsync(TenantId tenant, CancellationToken cancellationToken)
    {
        if (await GetTrustAsync(tenant, cancellationToken) is not { } trust)
        {
            return false;
        }

        await Table.SubmitTransactionAsync(
            [
                new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(Partition, "trust:" + trust.EntraTenantId), ETag.All),
                new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(Partition, "tenant:" + tenant.Value), ETag.All),
            ],
            cancellationToken);
        await DeleteLinksAsync(tenant, trust.EntraTenantId, cancellationToken);
        return true;
    }

    public Task LinkAsync(EntraTrustEntity trust, string objectId, string userId, CancellationToken cancellationToken) =>
        Table.UpsertEntityAsync(
            new EntraLinkEntity { PartitionKey = Partition, RowKey = $"link:{trust.EntraTenantId}:{objectId}", TenantId = trust.TenantId, UserId = userId, TrustId = trust.TrustId },
            TableUpdateMode.Replace, cancellationToken);

    /// <summary>
    /// Deletes the links to a user who was deleted or purged. Links of ended trusts were deleted when the trust ended,
    /// so only the current trust's range is read; a link made by a sign-in racing the deletion points to a user who is
    /// not active and signs no one in, and the purge that follows deletes it.
    /// </summary>
    public async Task UnlinkUserAsync(TenantId tenant, string userId, CancellationToken cancellationToken)
    {
        if (await GetTrustAsync(tenant, cancellationToken) is { } trust)
        {
            await DeleteLinksAsync(tenant, trust.EntraTenantId, cancellationToken, userId);
        }
    }

    /// <summary>Deletes the links of this Platform tenant (of one user, if given) under one Entra tenant (one range of the partition).</summary>
    private async Task DeleteLinksAsync(TenantId tenant, string entraTenantId, CancellationToken cancellationToken, string? userId = null)
    {
        var from = $"link:{entraTenantId}:";
        var to = $"link:{entraTenantId};";
        var filter = userId is null
            ? TableClient.CreateQueryFilter($"PartitionKey eq {Partition} and RowKey ge {from} and RowKey lt {to} and TenantId eq {tenant.Value}")
            : TableClient.CreateQueryFilter($"PartitionKey eq {Partition} and RowKey ge {from} and RowKey lt {to} and TenantId eq {tenant.Value} and UserId eq {userId}");
        var batch = new List<TableTransactionAction>();
        await foreach (var link in Table.QueryAsync<EntraLinkEntity>(filter, select: ["PartitionKey", "RowKey"], cancellationToken: cancellationToken))
        {
            batch.Add(new(TableTransactionActionType.Delete, new TableEntity(link.PartitionKey, link.RowKey), ETag.All));
            if (batch.Count == 100)
            {
                await DeleteBatchAsync(batch, cancellationToken);
                batch.Clear();
            }
        }

        if (batch.Count > 0)
        {
            await DeleteBatchAsync(batch, cancellationToken);
        }
    }

    private async Task DeleteBatchAsync(List<TableTransactionAction> batch, CancellationToken cancellationToken)
    {
        try
        {
            await Table.SubmitTransactionAsync(batch, cancellationToken);
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 404)
        {
            // One was deleted meanwhile: delete the rest one by one.
            foreach (var action in batch)
            {
                await Table.DeleteEntityAsync(action.Entity.PartitionKey, action.Entity.RowKey, ETag.All, cancellationToken);
            }
        }
    }

    /// <summary>The Platform principal for a validated Entra principal; null when no active user is linked.</summary>
    public async Task<ClaimsPrincipal?> MapAsync(ClaimsPrincipal entra, CancellationToken cancellationToken)
    {
        var entraTenant = entra.FindFirst("tid")?.Value ?? entra.FindFirst(ClaimConstants.TenantId)?.Value;
        var objectId = entra.FindFirst("oid")?.Value ?? entra.FindFirst(ClaimConstants.ObjectId)?.Value;
        if (!Guid.TryParse(entraTenant, out var entraTenantGuid) || !Guid.TryParse(objectId, out var objectGuid))
        {
            return null;
        }

        entraTenant = entraTenantGuid.ToString();
        objectId = objectGuid.ToString();
        var link = await Table.GetEntityIfExistsAsync<EntraLinkEntity>(Partition, $"link:{entraTenant}:{objectId}", cancellationToken: cancellationToken);
        TenantId tenant;
        UserEntity? user;
        if (link.HasValue)
        {
            // A link counts only while its tenant still trusts this Entra tenant.
            var current = await Table.GetEntityIfExistsAsync<EntraTrustEntity>(Partition, "trust:" + entraTenant, cancellationToken: cancellationToken);
            if (!current.HasValue || current.Value!.TenantId != link.Value!.TenantId || current.Value.TrustId != link.Value.TrustId)
            {
                return null;
            }

            tenant = new TenantId(link.Value!.TenantId);
            user = await users.GetAsync(tenant, link.Value.UserId, cancellationToken);
        }
        else
        {
            var trust = await Table.GetEntityIfExistsAsync<EntraTrustEntity>(Partition, "trust:" + entraTenant, cancellationToken: cancellationToken);
            // Inbound claim mapping may have renamed email to its long SOAP-era type.
            var email = entra.FindFirst("email")?.Value ?? entra.FindFirst(ClaimTypes.Email)?.Value;
            if (!trust.HasValue || !trust.Value!.AllowEmailLinking || email is null || !HasVerifiedEmail(entra))
            {
                return null;
            }

            tenant = new TenantId(trust.Value.TenantId);
            user = await users.FindByEmailAsync(tenant, email, cancellationToken) is { EmailVerified: true } verified ? verified : null;

            // Only an address the Platform user proved they own: otherwise a tenant could create an account under
            // someone else's email and catch that person's Entra sign-in.
            if (user is not null)
            {
                await LinkAsync(trust.Value, objectId, user.Id, cancellationToken);
            }
        }

        if (user is not { IsActive: true })
        {
            return null;
        }

        var sessionId = Entra.SessionPrefix + objectId;
        if (!await guard.IsValidAsync(new Caller(tenant, user.Id, sessionId), cancellationToken))
        {
            return null;
        }

        return new ClaimsPrincipal(new ClaimsIdentity(
            [
                new Claim(JwtRegisteredClaimNames.Sub, user.Id),
                new Claim(AccessTokens.TenantClaim, tenant.Value),
                new Claim(AccessTokens.SessionClaim, sessionId),
                new Claim("amr", "entra"),
            ],
            Entra.Scheme, JwtRegisteredClaimNames.Sub, null));
    }

    /// <summary>Entra marks an email whose domain the tenant has verified with <c>xms_edov</c>.</summary>
    private static bool HasVerifiedEmail(ClaimsPrincipal principal) =>
        principal.FindFirst("xms_edov")?.Value is "true" or "True" or "1" || principal.FindFirst("email_verified")?.Value is "true" or "True";

    public sealed class EntraTrustEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public string TenantId { get; set; } = "";
        public string EntraTenantId { get; set; } = "";
        public bool AllowEmailLinking { get; set; }

        /// <summary>New each time the trust is set afresh; empty on rows from before it existed.</summary>
        public string TrustId { get; set; } = "";
    }

    public sealed class EntraLinkEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public string TenantId { get; set; } = "";
        public string UserId { get; set; } = "";

        /// <summary>The <see cref="EntraTrustEntity.TrustId"/> the link was made under.</summary>
        public string TrustId { get; set; } = "";
    }
}

/// <summary>A deleted or purged user's Entra links go with them, so link rows do not outlive the users they name.</summary>
internal sealed class UnlinkRemovedUsers(EntraDirectory entra) : IUserDeletionHook, IUserPurgeHook
{
    public Task OnUserDeletedAsync(TenantId tenant, string userId, CancellationToken cancellationToken) =>
        entra.UnlinkUserAsync(tenant, userId, cancellationToken);

    public Task OnUserPurgedAsync(TenantId tenant, string userId, CancellationToken cancellationToken) =>
        entra.UnlinkUserAsync(tenant, userId, cancellationToken);
}
