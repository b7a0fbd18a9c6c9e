using System.Text.Json;
using Azure;
using Azure.Storage.Blobs.Models;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Me;

/// <summary>A checked avatar image: its bytes and the type its magic bytes prove.</summary>
public sealed record AvatarImage(Stream Content, string ContentType);

/// <summary>
/// Changes a signed-in user makes to their own account: profile and avatar. A command does the whole change (the
/// write, this instance's users list projection and the event), so handlers only translate HTTP.
/// </summary>
public sealed class MeCommands(
    UserDirectory users,
    UserProjections projections,
    StorageAccount storage,
    EventPublisher events,
    TimeProvider time)
{
    public const int MaxSettingsLength = 4096;
    public const int MaxSettingsDepth = 5;

    /// <summary>Changes what is set; an update that changes nothing writes and publishes nothing.</summary>
    public async Task<Outcome<UserEntity>> UpdateAsync(
        Caller caller, string? displayName, JsonElement? settings, Func<ETag, bool> ifMatch, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (!ifMatch(user.ETag))
        {
            return AccountStale;
        }

        var validation = new Validation();
        var changes = new Dictionary<string, object?>();
        if (displayName is not null)
        {
            var checkedName = validation.Text("displayName", displayName, UserDirectory.MaxDisplayNameLength);
            if (checkedName != user.DisplayName)
            {
                changes["displayName"] = new { from = user.DisplayName, to = checkedName };
                user.DisplayName = checkedName;
            }
        }

        if (settings is { } value)
        {
            var text = value.GetRawText();
            if (value.ValueKind != JsonValueKind.Object)
            {
                validation.Add("settings", "must be a JSON object");
            }
            else if (text.Length > MaxSettingsLength)
            {
                validation.Add("settings", $"must be at most {MaxSettingsLength} characters of JSON");
            }
            else if (Depth(value) > MaxSettingsDepth)
            {
                validation.Add("settings", $"must nest at most {MaxSettingsDepth} levels");
            }
            else if (text != user.Settings)
            {
                changes["settings"] = true;
                user.Settings = text;
            }
        }

        if (!validation.IsValid)
        {
            return CommandError.Invalid(validation);
        }

        if (changes.Count == 0)
        {
            return user;
        }

        user.UpdatedAt = time.GetUtcNow();
        try
        {
            await users.UpdateAsync(caller.Tenant, user, events, [new PlatformEvent("user.updated", caller.Actor, "user", user.Id, changes)], cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            return new CommandError(412, "precondition_failed", "The account changed while you updated it; read it again.");
        }

        projections.Apply(caller.Tenant, user);
        return user;
    }

    /// <summary>
    /// Stores the caller's avatar. The precondition is checked before <paramref name="readImage"/> reads the body, so
    /// a stale If-Match is refused without reading (or judging) the upload.
    /// </summary>
    public async Task<Outcome<UserEntity>> SetAvatarAsync(
        Caller caller, Func<ETag, bool> ifMatch, Func<CancellationToken, Task<Outcome<AvatarImage>>> readImage, CancellationToken cancellationToken)
    {
        var user = (await users.GetAsync(caller.Tenant, caller.UserId, cancellationToken))!;
        if (!ifMatch(user.ETag))
        {
            return AccountStale;
        }

        if ((await readImage(cancellationToken)).Failed(out var refused, out var image))
        {
            return refused;
        }

        await using var content = image.Content;
        await storage.Container(MeEndpoints.AvatarContainer).GetBlobClient($"{caller.Tenant.Value}/{caller.UserId}")
            .UploadAsync(content, new BlobUploadOptions { HttpHeaders = new BlobHttpHeaders { ContentType = image.ContentType } }, cancellationToken);
        user.AvatarContentType = image.ContentType;
        user.UpdatedAt = time.GetUtcNow();
        // The blob cannot carry an outbox: the event commits with the user row written after it, the write that records
        // the avatar (a first avatar is served only once the row names its type).
        await users.UpdateAsync(caller.Tenant, user, events, [new PlatformEvent("user.avatar.updated", caller.Actor, "user", user.Id)], cancellationToken);
        projections.Apply(caller.Tenant, user);
        return user;
    }

    public static CommandError AccountStale { get; } = CommandError.Stale("account");

    private static int Depth(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => 1 + element.EnumerateObject().Select(p => Depth(p.Value)).DefaultIfEmpty(0).Max(),
        JsonValueKind.Array => 1 + element.EnumerateArray().Select(Depth).DefaultIfEmpty(0).Max(),
        _ => 0,
    };
}
