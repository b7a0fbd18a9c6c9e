using Platform.Functions.Events;
using Platform.Functions.Hosting;
using Platform.Functions.Jobs.Exports;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Query;
using Platform.Functions.Reports;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

public static class UsersExtensions
{
    public static IHostApplicationBuilder AddUsers(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(UserDirectory.TableName, changeLogged: UserEntity.KeyPrefix);
        builder.Services.AddEventOutbox(UserDirectory.TableName);
        builder.Services.AddTenantData(UserDirectory.TableName);
        builder.Services.AddSingleton<UserDirectory>();
        builder.Services.AddSingleton<ISandboxResealer, TotpResealer>();
        builder.Services.AddValidatedOptions<UsersOptions>(UsersOptions.Section);
        builder.Services.AddSingleton<UserSchemas>();
        builder.Services.AddSingleton<UserCommands>();
        builder.Services.AddSingleton<UserPurge>();
        builder.Services.AddProjectionMemory();
        builder.Services.AddSingleton<UserProjections>();
        builder.Services.AddImportKind<UserImport>(UserImport.Kind, Permissions.UsersWrite);
        builder.Services.AddExportKind<UserExport>(UserExport.Kind, Permissions.UsersRead);
        builder.Services.AddOptions<ReportTypeCatalog>();
        builder.Services.AddReportType<UserInsightsReport>(UserInsightsReport.Type);
        return builder;
    }

    /// <summary><c>/api/v1/users</c> and <c>/api/v1/schema/users</c>.</summary>
    public static RouteGroupBuilder MapUsers(this IEndpointRouteBuilder app) => UsersEndpoints.MapRoutes(app);
}
