using System.Text.Json;

namespace Platform.Functions.Users;

/// <summary>A user as the API shows it: never the password hash, TOTP seed or backup codes.</summary>
public sealed record UserView(
    string Id,
    string Email,
    string DisplayName,
    string Status,
    IReadOnlyList<string> Roles,
    bool EmailVerified,
    bool MfaEnabled,
    JsonElement Settings,
    JsonElement Fields,
    bool HasAvatar,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LastLoginAt,
    DateTimeOffset? DeletedAt)
{
    public static UserView From(UserEntity user) => new(
        user.Id,
        user.Email,
        user.DisplayName,
        user.Status,
        user.RoleList,
        user.EmailVerified,
        user.MfaEnabled,
        JsonSerializer.Deserialize<JsonElement>(user.Settings),
        JsonSerializer.Deserialize<JsonElement>(user.Fields),
        user.AvatarContentType is not null,
        user.CreatedAt,
        user.UpdatedAt,
        user.LastLoginAt,
        user.DeletedAt);
}
