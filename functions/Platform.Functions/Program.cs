using Platform.Functions.Docs;
using Platform.Functions.Health;
using Platform.Functions.Hosting;
using Platform.Functions.Housekeeping;
using Platform.Functions.Http;
using Platform.Functions.Jobs;
using Platform.Functions.Storage;
using Platform.Functions.Triggers;

var builder = WebApplication.CreateBuilder(args);

builder.AddPlatformHosting();
builder.AddPlatformStorage();
builder.AddPlatformHttp();
builder.AddPlatformTriggers();
builder.AddApiDocs();
builder.AddHealth();
builder.AddHousekeeping();
builder.AddJobs();

var app = builder.Build();

if (FunctionMetadata.TryEmit(app.Services, args))
{
    return;
}

app.UsePlatformHttp();

// The Functions host polls GET / until the handler is up; it must answer at once, storage or not.
app.MapGet("/", () => TypedResults.Ok(new { name = "Platform", status = "running" })).ExcludeFromDescription();
app.MapHealth();
app.MapApiDocs();
app.MapFunctionInvocations();

app.Run();

/// <summary>The entry point, visible to the integration tests' WebApplicationFactory.</summary>
public partial class Program;
