using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Platform.Functions.Auth;

namespace Platform.Functions.Roles;

/// <summary>
/// Rules for routes that need no permission of their own, only a signed-in caller (<c>/me</c>, sessions, MFA,
/// logout): without them an API key of any scope could act there as its creator - list and end their sessions,
/// change their profile. A key is a narrowed delegate of a person, never the person.
/// </summary>
public static class CallerKindRules
{
    public const string UserSessionPolicy = "user-session";
    internal const string KeyScopePolicyPrefix = "key-scope:";
    public const string ApiKeyNotAllowedCode = "api_key_not_allowed";

    /// <summary>The route is for a person's own session only: an API key gets 403 <c>api_key_not_allowed</c>.</summary>
    public static TBuilder RequireUserSession<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(UserSessionPolicy);

    /// <summary>
    /// Open to any signed-in person; an API key needs <paramref name="permission"/> among its scopes (and its creator
    /// must still hold it), otherwise 403 like any missing permission.
    /// </summary>
    public static TBuilder RequireKeyScope<TBuilder>(this TBuilder builder, string permission) where TBuilder : IEndpointConventionBuilder =>
        Permissions.All.Contains(permission)
            ? builder.RequireAuthorization(KeyScopePolicyPrefix + permission)
            : throw new ArgumentException($"'{permission}' is not a permission.", nameof(permission));

    internal static void AddPolicies(AuthorizationOptions options)
    {
        options.AddPolicy(UserSessionPolicy, policy => policy.RequireAuthenticatedUser().AddRequirements(new UserSessionRequirement()));
        foreach (var permission in Permissions.All)
        {
            options.AddPolicy(KeyScopePolicyPrefix + permission, policy => policy.RequireAuthenticatedUser().AddRequirements(new KeyScopeRequirement(permission)));
        }
    }
}

public sealed record UserSessionRequirement : IAuthorizationRequirement;

public sealed record KeyScopeRequirement(string Permission) : IAuthorizationRequirement;

internal sealed class UserSessionHandler : AuthorizationHandler<UserSessionRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, UserSessionRequirement requirement)
    {
        if (Caller.From(context.User) is { Kind: CallerKind.User })
        {
            context.Succeed(requirement);
        }
        else
        {
            context.Fail(new AuthorizationFailureReason(this, "API keys cannot use this route; sign in as the user."));
        }

        return Task.CompletedTask;
    }
}

internal sealed class KeyScopeHandler(CallerPermissions permissions) : AuthorizationHandler<KeyScopeRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, KeyScopeRequirement requirement)
    {
        if (Caller.From(context.User) is not { } caller)
        {
            return;
        }

        var cancellationToken = (context.Resource as HttpContext)?.RequestAborted ?? CancellationToken.None;
        if (caller.Kind == CallerKind.User || (await permissions.ForAsync(caller, cancellationToken)).Contains(requirement.Permission))
        {
            context.Succeed(requirement);
        }
    }
}

/// <summary>Gives a refusal by <see cref="UserSessionHandler"/> its own problem code; every other result goes the default way.</summary>
internal sealed class CallerKindResultHandler(IProblemDetailsService problems) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Forbidden && authorizeResult.AuthorizationFailure?.FailureReasons.Any(r => r.Handler is UserSessionHandler) == true)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await problems.WriteAsync(new ProblemDetailsContext
            {
                HttpContext = context,
                ProblemDetails =
                {
                    Status = 403,
                    Title = "API key not allowed",
                    Detail = "This route acts on a person's own account or sessions; API keys cannot use it. Sign in as the user.",
                    Extensions = { ["code"] = CallerKindRules.ApiKeyNotAllowedCode },
                },
            });
            return;
        }

        await _default.HandleAsync(next, context, policy, authorizeResult);
    }
}
