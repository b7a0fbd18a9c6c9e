using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Roles;
using Platform.Functions.Users;

namespace Platform.Functions.Auth;

/// <summary>
/// Changes to a tenant's Entra ID sign-in: the trust in an Entra tenant and the link of a user to an Entra account.
/// A command does the write (through <see cref="EntraDirectory"/>) and publishes the event; handlers translate HTTP.
/// </summary>
public sealed class EntraCommands(
    EntraDirectory entra,
    UserDirectory users,
    UserCommands userCommands,
    CallerPermissions permissions,
    EventPublisher events)
{
    public async Task<Outcome<Entra.TrustView>> TrustAsync(
        Caller caller, string? entraTenantId, bool allowEmailLinking, string? entraToken, CancellationToken cancellationToken)
    {
        if (!Guid.TryParse(entraTenantId, out var entraTenant))
        {
            return CommandError.Invalid(new Validation().Add("entraTenantId", "must be the Entra ID tenant's GUID"));
        }

        if (await entra.CheckProofAsync(entraToken, entraTenant, cancellationToken) is { } refused)
        {
            return refused;
        }

        if (!await entra.TrySetTrustAsync(caller.Tenant, entraTenant.ToString(), allowEmailLinking, cancellationToken))
        {
            return new CommandError(409, "entra_tenant_taken", "Another Platform tenant trusts this Entra ID tenant.") { Title = "Entra tenant already trusted" };
        }

        // Trusts and links are rows of the platform's entra table (one partition shared by all tenants, keyed by the
        // Entra tenant), which carries no tenant outbox: these events are published after the write, not with it.
        await events.PublishAsync(caller.Tenant, new PlatformEvent("tenant.entra.trusted", caller.Actor, "tenant", caller.Tenant.Value,
            new Dictionary<string, object?> { ["entraTenantId"] = entraTenant.ToString(), ["allowEmailLinking"] = allowEmailLinking }), cancellationToken);
        return new Entra.TrustView(entraTenant.ToString(), allowEmailLinking);
    }

    public async Task<Outcome<bool>> UntrustAsync(Caller caller, CancellationToken cancellationToken)
    {
        if (!await entra.RemoveTrustAsync(caller.Tenant, cancellationToken))
        {
            return NoTrust;
        }

        // Written in the platform's entra table (no tenant outbox), as for a trust.
        await events.PublishAsync(caller.Tenant, new PlatformEvent("tenant.entra.untrusted", caller.Actor, "tenant", caller.Tenant.Value), cancellationToken);
        return true;
    }

    /// <summary>Links user <paramref name="userId"/> to the Entra account <paramref name="objectId"/> of the trusted Entra tenant.</summary>
    public async Task<Outcome<bool>> LinkAsync(Caller caller, string userId, string? objectId, CancellationToken cancellationToken)
    {
        if (await users.GetAsync(caller.Tenant, userId, cancellationToken) is not { } user)
        {
            return UserCommands.UserNotFound;
        }

        // A link signs in as the user, so it hands over the account like an email change: only for a caller who
        // holds everything the user holds.
        if (await userCommands.OutranksAsync(caller.Tenant, await permissions.ForAsync(caller, cancellationToken), user, cancellationToken) is { } outranked)
        {
            return outranked;
        }

        if (!Guid.TryParse(objectId, out var entraObjectId))
        {
            return CommandError.Invalid(new Validation().Add("objectId", "must be the user's Entra ID object id (a GUID)"));
        }

        if (await entra.GetTrustAsync(caller.Tenant, cancellationToken) is not { } trust)
        {
            return new CommandError(409, "entra_not_trusted", "Set PUT /api/v1/tenant/entra first.") { Title = "No Entra tenant trusted" };
        }

        await entra.LinkAsync(trust, entraObjectId.ToString(), userId, cancellationToken);

        // Written in the platform's entra table (no tenant outbox), as for a trust.
        await events.PublishAsync(caller.Tenant, new PlatformEvent("user.entra.linked", caller.Actor, "user", userId,
            new Dictionary<string, object?> { ["objectId"] = entraObjectId.ToString() }), cancellationToken);
        return true;
    }

    public static CommandError NoTrust { get; } = CommandError.NotFound("Entra ID trust") with { Message = "This tenant trusts no Entra ID tenant." };
}
