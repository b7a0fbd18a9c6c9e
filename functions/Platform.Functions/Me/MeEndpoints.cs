using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Platform.Functions.Auth;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Mail;
using Platform.Functions.Roles;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Users;

namespace Platform.Functions.Me;

/// <summary>The caller's own account: <c>/api/v1/me</c>, its password and avatar.</summary>
public static class MeEndpoints
{
    public const long MaxAvatarBytes = 2 * 1024 * 1024;
    public const string AvatarContainer = "avatars";

    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/me").WithTags("Me").RequireAuthorization();
        // Reads are open to an API key scoped to users.read; writes change the person's own account, so no key may.
        group.MapGet("/", GetMe).RequireKeyScope(Permissions.UsersRead).WithName("GetMe").WithSummary("The signed-in user.");
        group.MapPatch("/", UpdateMe).RequireUserSession().WithName("UpdateMe").WithSummary("Changes the caller's display name and settings.");
        group.MapPost("/password", ChangePassword).RequireUserSession().WithName("ChangePassword").WithSummary("Changes the caller's password; needs the current one.");
        group.MapPut("/avatar", PutAvatar).RequireUserSession().WithName("PutAvatar").WithSummary("Sets the caller's avatar (PNG or JPEG, at most 2 MB).").Accepts<byte[]>("image/png", "image/jpeg")
            .WithMetadata(new RequestSizeLimitAttribute(MaxAvatarBytes));

        app.MapGet("/api/v1/users/{id}/avatar", GetAvatar).WithTags("Users").RequireAuthorization().RequireKeyScope(Permissions.UsersRead).WithName("GetUserAvatar").WithSummary("A user's avatar image.");
        return group;
    }

    public sealed record UpdateMeRequest(string? DisplayName, JsonElement? Settings);

    public sealed record ChangePasswordRequest(string? CurrentPassword, string? NewPassword);

    internal static async Task<Results<Ok<UserView>, ProblemHttpResult>> GetMe(
        Caller caller, HttpContext http, UserDirectory users, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken);
        if (user is null)
        {
            return Problems.NotFound();
        }

        http.Response.Headers.ETag = ETags.For(user.ETag);
        return TypedResults.Ok(UserView.From(user));
    }

    internal static async Task<Results<Ok<UserView>, ProblemHttpResult>> UpdateMe(
        UpdateMeRequest request, Caller caller, HttpContext http, MeCommands commands, CancellationToken cancellationToken) =>
        (await commands.UpdateAsync(caller, request.DisplayName, request.Settings, etag => ETags.IfMatchAllows(http.Request, etag), cancellationToken))
            .ToResult(user => TypedResults.Ok(http.Tagged(user.ETag, UserView.From(user))));

    internal static async Task<Results<NoContent, ProblemHttpResult>> ChangePassword(
        ChangePasswordRequest request, Caller caller, HttpContext http, UserDirectory users,
        AccountSecurity security, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (await security.CheckPasswordAsync(caller.Tenant, user, request.CurrentPassword, http, cancellationToken) is { } refused)
        {
            return refused;
        }

        var validation = security.CheckNewPassword("newPassword", request.NewPassword);
        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        await security.SetPasswordAsync(caller.Tenant, user, request.NewPassword!, "auth.password.changed", caller.SessionId, Caller.ClientIp(http), cancellationToken);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> PutAvatar(
        Caller caller, HttpContext http, MeCommands commands, CancellationToken cancellationToken) =>
        (await commands.SetAvatarAsync(caller, etag => ETags.IfMatchAllows(http.Request, etag), ct => ReadAvatarAsync(http.Request, ct), cancellationToken))
            .ToResult(_ => TypedResults.NoContent());

    /// <summary>The body as an avatar: a PNG or JPEG of the declared type, at most <see cref="MaxAvatarBytes"/>.</summary>
    private static async Task<Outcome<AvatarImage>> ReadAvatarAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var declared = request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
        if (declared is not ("image/png" or "image/jpeg"))
        {
            return new CommandError(415, "unsupported_media_type", "Send the avatar as image/png or image/jpeg.") { Title = "Unsupported media type" };
        }

        // Read at most one byte past the limit: a body without Content-Length cannot make this buffer grow unbounded.
        var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while (buffer.Length <= MaxAvatarBytes && (read = await request.Body.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, MaxAvatarBytes + 1 - buffer.Length)), cancellationToken)) > 0)
        {
            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length > MaxAvatarBytes)
        {
            return new CommandError(413, "payload_too_large", $"An avatar is at most {MaxAvatarBytes} bytes.") { Title = "Avatar too large" };
        }

        var actual = Sniff(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        if (actual is null || actual != declared)
        {
            return new CommandError(400, "invalid_image", "The body is not a PNG or JPEG image of the declared type.") { Title = "Not an image" };
        }

        buffer.Position = 0;
        return new AvatarImage(buffer, actual);
    }

    internal static async Task<Results<FileStreamHttpResult, ProblemHttpResult>> GetAvatar(
        string id, Caller caller, UserDirectory users, StorageAccount storage, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(caller.Tenant, id, cancellationToken);
        if (user?.AvatarContentType is null)
        {
            return Problems.NotFound("This user has no avatar.");
        }

        var blob = await storage.Container(AvatarContainer).GetBlobClient($"{caller.Tenant.Value}/{user.Id}").DownloadStreamingAsync(cancellationToken: cancellationToken);
        return TypedResults.Stream(blob.Value.Content, user.AvatarContentType);
    }

    /// <summary>The image type by its magic bytes, not by what the client claims.</summary>
    private static string? Sniff(ReadOnlySpan<byte> data) =>
        data.StartsWith((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) ? "image/png"
        : data.Length > 3 && data.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]) ? "image/jpeg"
        : null;
}
