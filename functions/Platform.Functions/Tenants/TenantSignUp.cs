using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Tenants;

/// <summary>
/// Creates a tenant with its first admin (built-in role <c>admin</c>), audits both and mails the admin a
/// verification link. Used by the sign-up route and by the development demo seed.
/// </summary>
public sealed class TenantSignUp(
    TenantDirectory tenants,
    UserDirectory users,
    PasswordHasher hasher,
    AccountMail accountMail,
    EventPublisher events,
    TimeProvider time)
{
    /// <summary>The new tenant and admin; null when the slug is taken. Inputs must already be validated.</summary>
    public async Task<(TenantEntity Tenant, UserEntity Admin)?> CreateAsync(
        string name, string slug, string email, string password, string displayName, string? ip, CancellationToken cancellationToken)
    {
        // Hashed before the slug is claimed: a busy refusal from the hashing gate must not leave a tenant without its admin.
        var passwordHash = await hasher.HashAsync(password, cancellationToken);
        var now = time.GetUtcNow();
        var tenant = new TenantEntity { Id = Ids.New(time), Slug = slug, Name = name, CreatedAt = now };
        if (!await tenants.TryCreateAsync(tenant, cancellationToken))
        {
            return null;
        }

        var tenantId = new TenantId(tenant.Id);
        var admin = new UserEntity
        {
            RowKey = UserEntity.KeyFor(Ids.New(time)),
            Email = email,
            DisplayName = displayName,
            PasswordHash = passwordHash,
            RoleList = ["admin"],
            CreatedAt = now,
            UpdatedAt = now,
        };
        // The tenant's first events commit with its admin: a crash after this write loses neither.
        var actor = Actor.User(admin.Id, ip);
        PlatformEvent[] signedUp =
        [
            new("tenant.created", actor, "tenant", tenant.Id, new Dictionary<string, object?> { ["slug"] = slug, ["name"] = name }),
            new("user.created", actor, "user", admin.Id, new Dictionary<string, object?> { ["email"] = admin.Email, ["roles"] = admin.RoleList }),
        ];
        UserDirectory.CreateResult created;
        try
        {
            created = await events.CommitWithAsync(users.Users(tenantId), signedUp, (outbox, token) => users.TryCreateAsync(tenantId, admin, outbox, token), cancellationToken);
        }
        catch
        {
            // Free the slug again: a tenant without its admin would be unusable and unclaimable.
            await tenants.DeleteAsync(tenant, CancellationToken.None);
            throw;
        }

        if (created != UserDirectory.CreateResult.Created)
        {
            await tenants.DeleteAsync(tenant, CancellationToken.None);
            throw new InvalidOperationException($"The first user of a new tenant was not created ({created}).");
        }

        await accountMail.SendVerificationAsync(tenantId, tenant.Name, admin, cancellationToken);
        return (tenant, admin);
    }
}
