// The baseline of the startup figure: a bare ASP.NET Core process answering the same probe as Platform.
var app = WebApplication.CreateBuilder(args).Build();

app.MapGet("/api/health/live", () => TypedResults.Ok(new { status = "healthy" }));

app.Run();
