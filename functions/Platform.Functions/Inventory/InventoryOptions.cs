using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Inventory;

public sealed class InventoryOptions
{
    public const string Section = "Platform:Inventory";

    /// <summary>An item whose <c>expiresAt</c> falls within this span from now raises an expiry alert.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "3650.00:00:00")]
    public TimeSpan ExpiryWindow { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long a closed alert stays as history before housekeeping deletes it.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan ClosedAlertRetention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>
    /// Items (not archived) one tenant may hold; a create beyond it is refused with 409 <c>item_limit_reached</c>.
    /// Bounds what one tenant can put into storage and into every instance's in-memory list.
    /// </summary>
    [Range(1, 100_000_000)]
    public int MaxItemsPerTenant { get; set; } = 1_000_000;
}
