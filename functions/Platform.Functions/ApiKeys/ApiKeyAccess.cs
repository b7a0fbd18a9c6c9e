using Platform.Functions.Auth;
using Platform.Functions.Http;

namespace Platform.Functions.ApiKeys;

/// <summary>
/// Who may rotate or revoke a key: its creator (signed in as themselves), or a caller who holds every permission the
/// key carries. <c>apikeys.manage</c> alone is not enough: rotating hands out the new key text, so a manager could
/// otherwise take over an admin's full-scope key. Admins hold every permission, so they may rotate and revoke any
/// key. A caller that is itself an API key counts only through its scoped permissions, never as the creator, so a
/// narrow key cannot rotate a wider sibling of the same creator.
/// </summary>
public static class ApiKeyAccess
{
    public static bool MayChange(ApiKeyEntity key, Caller caller, IReadOnlySet<string> held) =>
        (caller.Kind == CallerKind.User && string.Equals(key.CreatedBy, caller.UserId, StringComparison.Ordinal)) ||
        key.PermissionList.All(held.Contains);

    public static CommandError NotPermitted { get; } = new(403, "permission_not_held",
        "This key carries permissions you do not hold; only its creator or someone who holds all of them can rotate or revoke it.");
}
