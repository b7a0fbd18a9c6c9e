using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Users;

public sealed class UsersOptions
{
    public const string Section = "Platform:Users";

    /// <summary>
    /// Users (active or locked) one tenant may hold; a create or restore beyond it is refused with 409
    /// <c>user_limit_reached</c>. Soft-deleted users do not count. Bounds what one tenant can put into storage and
    /// into every instance's in-memory list.
    /// </summary>
    [Range(1, 10_000_000)]
    public int MaxUsersPerTenant { get; set; } = 100_000;
}
