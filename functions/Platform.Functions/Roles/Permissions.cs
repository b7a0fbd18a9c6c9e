using System.Collections.Frozen;

namespace Platform.Functions.Roles;

/// <summary>
/// Every permission of the product, named <c>area.action</c>. Endpoints declare the one they need with
/// <see cref="PermissionExtensions.RequirePermission{TBuilder}"/>, next to their route, so the whole access model
/// can be read off the route table.
/// </summary>
public static class Permissions
{
    public const string UsersRead = "users.read";
    public const string UsersWrite = "users.write";
    public const string UsersDelete = "users.delete";
    public const string RolesManage = "roles.manage";
    public const string ApiKeysManage = "apikeys.manage";
    public const string InventoryRead = "inventory.read";
    public const string InventoryWrite = "inventory.write";
    public const string JobsRead = "jobs.read";
    public const string JobsWrite = "jobs.write";
    public const string WebhooksRead = "webhooks.read";
    public const string WebhooksManage = "webhooks.manage";
    public const string ReportsRead = "reports.read";
    public const string WorkflowsRead = "workflows.read";
    public const string WorkflowsManage = "workflows.manage";
    public const string UsageRead = "usage.read";
    public const string AuditRead = "audit.read";
    public const string BackupsManage = "backups.manage";
    public const string TenantManage = "tenant.manage";

    public static IReadOnlyDictionary<string, string> Descriptions { get; } = new Dictionary<string, string>
    {
        [UsersRead] = "List and read users, their roles and the custom-field schema.",
        [UsersWrite] = "Create and update users, run bulk operations.",
        [UsersDelete] = "Delete, restore and purge users.",
        [RolesManage] = "Create, change and delete roles; assign roles to users.",
        [ApiKeysManage] = "Create, rotate and revoke API keys.",
        [InventoryRead] = "Read items, locations, stock, movements and alerts.",
        [InventoryWrite] = "Change items and locations, record movements, acknowledge alerts.",
        [JobsRead] = "Read jobs and schedules.",
        [JobsWrite] = "Start, cancel and retry jobs; manage schedules.",
        [WebhooksRead] = "Read webhook endpoints, receivers, the event catalogue and delivery and message logs.",
        [WebhooksManage] = "Manage webhook endpoints and receivers; test, replay and recover deliveries.",
        [ReportsRead] = "Run and download reports.",
        [WorkflowsRead] = "Read workflows and their runs.",
        [WorkflowsManage] = "Define, run and cancel workflows; send events (approvals) to their runs.",
        [UsageRead] = "Read the tenant's API usage.",
        [AuditRead] = "Read the audit log.",
        [BackupsManage] = "Create and restore backups.",
        [TenantManage] = "Change tenant settings: custom-field schema, Entra ID trust.",
    }.ToFrozenDictionary();

    public static FrozenSet<string> All { get; } = Descriptions.Keys.ToFrozenSet();
}

/// <summary>The roles every tenant has; they cannot be changed or deleted.</summary>
public static class BuiltInRoles
{
    public const string Admin = "admin";
    public const string Manager = "manager";
    public const string User = "user";

    public static IReadOnlyDictionary<string, FrozenSet<string>> Grants { get; } = new Dictionary<string, FrozenSet<string>>
    {
        [Admin] = Permissions.All,
        [Manager] = new[]
        {
            Permissions.UsersRead, Permissions.UsersWrite, Permissions.InventoryRead, Permissions.InventoryWrite,
            Permissions.JobsRead, Permissions.JobsWrite, Permissions.ReportsRead, Permissions.AuditRead,
            Permissions.WorkflowsRead, Permissions.WorkflowsManage,
        }.ToFrozenSet(),
        [User] = new[] { Permissions.InventoryRead, Permissions.JobsRead, Permissions.ReportsRead }.ToFrozenSet(),
    }.ToFrozenDictionary();

    public static bool IsBuiltIn(string name) => Grants.ContainsKey(name);
}
