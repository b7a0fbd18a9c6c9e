using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Platform.Functions.Events;
using Platform.Functions.Storage;

namespace Platform.Functions.Roles;

public static class RolesExtensions
{
    /// <summary>The roles table, the caller's permissions and one authorization policy per permission.</summary>
    public static IHostApplicationBuilder AddRoles(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(RoleDirectory.TableName);
        builder.Services.AddEventOutbox(RoleDirectory.TableName);
        builder.Services.AddTenantData(RoleDirectory.TableName);
        builder.Services.AddSingleton<RoleDirectory>();
        builder.Services.AddSingleton<RoleCommands>();
        builder.Services.AddSingleton<CallerPermissions>();
        builder.Services.AddSingleton<IAuthorizationHandler, PermissionHandler>();
        builder.Services.AddSingleton<IAuthorizationHandler, UserSessionHandler>();
        builder.Services.AddSingleton<IAuthorizationHandler, KeyScopeHandler>();
        builder.Services.AddSingleton<IAuthorizationMiddlewareResultHandler, CallerKindResultHandler>();
        builder.Services.AddAuthorizationBuilder().Services.Configure<AuthorizationOptions>(options =>
        {
            foreach (var permission in Permissions.All)
            {
                options.AddPolicy(PermissionExtensions.PolicyPrefix + permission, policy => policy.RequireAuthenticatedUser().AddRequirements(new PermissionRequirement(permission)));
            }

            CallerKindRules.AddPolicies(options);
        });
        return builder;
    }

    /// <summary><c>/api/v1/roles</c> and <c>/api/v1/permissions</c>.</summary>
    public static RouteGroupBuilder MapRoles(this IEndpointRouteBuilder app) => RolesEndpoints.MapRoutes(app);
}
