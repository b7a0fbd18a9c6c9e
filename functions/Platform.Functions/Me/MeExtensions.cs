using System.Security.Claims;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs.Models;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Mail;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Me;

public static class MeExtensions
{
    public static IHostApplicationBuilder AddMe(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageContainer(MeEndpoints.AvatarContainer);
        return builder;
    }

    /// <summary><c>/api/v1/me</c>, and the avatar of any user of the caller's tenant.</summary>
    public static RouteGroupBuilder MapMe(this IEndpointRouteBuilder app) => MeEndpoints.MapRoutes(app);
}
