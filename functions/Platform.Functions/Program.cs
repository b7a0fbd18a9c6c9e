using Platform.Functions.ApiKeys;
using Platform.Functions.Audit;
using Platform.Functions.Auth;
using Platform.Functions.Backups;
using Platform.Functions.Docs;
using Platform.Functions.Events;
using Platform.Functions.Health;
using Platform.Functions.Hosting;
using Platform.Functions.Housekeeping;
using Platform.Functions.Http;
using Platform.Functions.Inventory;
using Platform.Functions.Jobs;
using Platform.Functions.Mail;
using Platform.Functions.Roles;
using Platform.Functions.Schedules;
using Platform.Functions.Me;
using Platform.Functions.Reports;
using Platform.Functions.Storage;
using Platform.Functions.Tenants;
using Platform.Functions.Triggers;
using Platform.Functions.Usage;
using Platform.Functions.Users;
using Platform.Functions.Webhooks;
using Platform.Functions.Webhooks.Receivers;
using Platform.Functions.Workflows;

var builder = WebApplication.CreateBuilder(args);

builder.AddPlatformHosting();
builder.AddPlatformStorage();
builder.AddPlatformHttp();
builder.AddPlatformTriggers();
builder.AddApiDocs();
builder.AddHealth();
builder.AddEvents();
builder.AddMail();
builder.AddPlatformAuth();
builder.AddEntra();
builder.AddApiKeys();
builder.AddTenants();
builder.AddUsers();
builder.AddRoles();
builder.AddAudit();
builder.AddMe();
builder.AddHousekeeping();
builder.AddIdempotency();
builder.AddJobs();
builder.AddReports();
builder.AddBackups();
builder.AddInventory();
builder.AddWebhooks();
builder.AddWebhookReceivers();
builder.AddUsage();
builder.AddSchedules();
builder.AddWorkflows();

var app = builder.Build();

if (FunctionMetadata.TryEmit(app.Services, args))
{
    return;
}

app.UseForwardedHeaders();
app.UsePlatformHttp();
app.UsePlatformAuth();

// The Functions host polls GET / until the handler is up; it must answer at once, storage or not.
app.MapGet("/", () => TypedResults.Ok(new { name = "Platform", status = "running" })).ExcludeFromDescription();
app.MapHealth();
app.MapApiDocs();
app.MapTenants();
app.MapAuth();
app.MapMe();
app.MapUsers();
app.MapRoles();
app.MapAudit();
app.MapEntra();
app.MapApiKeys();
app.MapInventory();
app.MapJobs();
app.MapReports();
app.MapBackups();
app.MapWebhooks();
app.MapWebhookReceivers();
app.MapUsage();
app.MapSchedules();
app.MapWorkflows();
app.MapFunctionInvocations();

app.Run();

/// <summary>The entry point, visible to the integration tests' WebApplicationFactory.</summary>
public partial class Program;
