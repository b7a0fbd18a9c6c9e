using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Functions.Tenants;

/// <summary><c>POST /api/v1/tenants</c>: anonymous sign-up of an organisation and its first admin.</summary>
public static class TenantsEndpoints
{
    public const int MaxNameLength = 100;

    internal static RouteGroupBuilder MapRoutes(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/tenants").WithTags("Tenants");
        group.MapPost("/", SignUp)
            .AllowAnonymous()
            .RequireRateLimiting(AuthExtensions.SignUpRateLimit)
            .WithIdempotency()
            .WithName("SignUp")
            .WithSummary("Creates a tenant and its first admin user.");
        return group;
    }

    public sealed record SignUpRequest(string? Name, string? Slug, SignUpAdmin? Admin);

    public sealed record SignUpAdmin(string? Email, string? Password, string? DisplayName);

    public sealed record TenantView(string Id, string Slug, string Name, string Plan);

    public sealed record SignUpResponse(TenantView Tenant, UserView User);

    internal static async Task<Results<Created<SignUpResponse>, ProblemHttpResult>> SignUp(
        SignUpRequest request,
        HttpContext http,
        TenantSignUp signUp,
        PasswordPolicy policy,
        CancellationToken cancellationToken)
    {
        var validation = new Validation();
        var name = validation.Text("name", request.Name, MaxNameLength);
        var slug = request.Slug?.Trim() ?? "";
        if (!TenantDirectory.IsValidSlug(slug))
        {
            validation.Add("slug", "must be 3-40 characters of a-z, 0-9 and -");
        }

        var email = UserDirectory.NormalizeEmail(request.Admin?.Email);
        if (email is null)
        {
            validation.Add("admin.email", "must be a valid email address");
        }

        var displayName = validation.Text("admin.displayName", request.Admin?.DisplayName, UserDirectory.MaxDisplayNameLength);
        foreach (var problem in policy.Check(request.Admin?.Password))
        {
            validation.Add("admin.password", problem);
        }

        if (!validation.IsValid)
        {
            return validation.ToProblem();
        }

        var created = await signUp.CreateAsync(name, slug, request.Admin!.Email!.Trim(), request.Admin.Password!, displayName,
            Caller.ClientIp(http), cancellationToken);
        if (created is not var (tenant, admin))
        {
            return Problems.Create(StatusCodes.Status409Conflict, "slug_taken", "Slug taken", $"The slug '{slug}' belongs to another tenant.");
        }

        return TypedResults.Created($"/api/v1/users/{admin.Id}",
            new SignUpResponse(new TenantView(tenant.Id, tenant.Slug, tenant.Name, tenant.Plan), UserView.From(admin)));
    }
}
