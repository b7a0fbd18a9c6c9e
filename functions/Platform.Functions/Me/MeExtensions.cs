using Platform.Functions.Storage;

namespace Platform.Functions.Me;

public static class MeExtensions
{
    public static IHostApplicationBuilder AddMe(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageContainer(MeEndpoints.AvatarContainer);
        builder.Services.AddTenantBlobs(MeEndpoints.AvatarContainer);
        builder.Services.AddSingleton<MeCommands>();
        builder.Services.AddSingleton<Users.IUserPurgeHook, EraseAvatarOfPurgedUser>();
        return builder;
    }

    /// <summary><c>/api/v1/me</c>, and the avatar of any user of the caller's tenant.</summary>
    public static RouteGroupBuilder MapMe(this IEndpointRouteBuilder app) => MeEndpoints.MapRoutes(app);
}

/// <summary>A purged user's avatar goes with their other personal data.</summary>
internal sealed class EraseAvatarOfPurgedUser(StorageAccount storage) : Users.IUserPurgeHook
{
    public Task OnUserPurgedAsync(TenantId tenant, string userId, CancellationToken cancellationToken) =>
        storage.Container(MeEndpoints.AvatarContainer).GetBlobClient($"{tenant.Value}/{userId}").DeleteIfExistsAsync(cancellationToken: cancellationToken);
}
