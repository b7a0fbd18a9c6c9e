using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;

namespace Platform.Functions.Http;

/// <summary>
/// <c>Idempotency-Key</c> for POST routes that create things: the first request with a key runs and its answer is
/// kept for 24 hours; the same key with the same request gets that answer again without running twice; the same
/// key with a different request is 422 <c>idempotency_key_reused</c>; a repeat while the first is still running is
/// 409 <c>idempotency_in_progress</c>. Keys are scoped to the caller's tenant and user (anonymous routes share one
/// scope, where only an identical request - passwords included - can fetch the kept answer).
/// </summary>
public static class Idempotency
{
    public const string Header = "Idempotency-Key";
    public const string TableName = "idempotency";
    public const int MaxKeyLength = 255;
    public const int MaxKeptBody = 60 * 1024;
    public static readonly TimeSpan KeptFor = TimeSpan.FromHours(24);

    public static TBuilder WithIdempotency<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter<TBuilder, IdempotencyFilter>().WithMetadata(IdempotencyMetadata.Instance);

    public static IHostApplicationBuilder AddIdempotency(this IHostApplicationBuilder builder)
    {
        builder.Services.AddStorageTable(TableName);
        return builder;
    }
}

/// <summary>Marks an endpoint that honours <c>Idempotency-Key</c>, so its documentation can say so.</summary>
public sealed class IdempotencyMetadata
{
    public static IdempotencyMetadata Instance { get; } = new();
}

internal sealed class IdempotencyFilter(StorageAccount storage, Expirations expirations, TimeProvider time) : IEndpointFilter
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var key = http.Request.Headers[Idempotency.Header].ToString();
        if (key.Length == 0)
        {
            return await next(context);
        }

        if (key.Length > Idempotency.MaxKeyLength || key.Any(c => c < 0x21 || c > 0x7E))
        {
            return Problems.Create(400, "invalid_idempotency_key", "Invalid Idempotency-Key", $"Use 1-{Idempotency.MaxKeyLength} visible ASCII characters, e.g. a UUID.");
        }

        var caller = Caller.From(http.User);
        var scope = caller is null ? "anonymous" : caller.Tenant.Value;
        var table = storage.TenantTable(Idempotency.TableName).For(new TenantId(scope));
        var rowKey = Hash($"{caller?.UserId}\n{http.Request.Method}\n{http.Request.Path}\n{key}");
        var fingerprint = Hash(http.Request.QueryString + "\n" + JsonSerializer.Serialize(
            context.Arguments.Where(a => a is not null && a.GetType().GetMethod("<Clone>$") is not null && a.GetType().Namespace?.StartsWith("Platform.Functions", StringComparison.Ordinal) == true),
            Json));

        var row = new IdempotencyEntity { RowKey = rowKey, Fingerprint = fingerprint, State = "running", CreatedAt = time.GetUtcNow() };
        try
        {
            await table.AddAsync(row, http.RequestAborted);
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
            var kept = await table.GetAsync<IdempotencyEntity>(rowKey, http.RequestAborted);
            if (kept is null || kept.CreatedAt + Idempotency.KeptFor < time.GetUtcNow())
            {
                return Problems.Create(409, "idempotency_in_progress", "Request in progress", "Retry in a moment.");
            }

            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(kept.Fingerprint), Encoding.ASCII.GetBytes(fingerprint)))
            {
                return Problems.Create(422, "idempotency_key_reused", "Idempotency-Key reused", "This key was used with a different request.");
            }

            if (kept.State != "done")
            {
                return Problems.Create(409, "idempotency_in_progress", "Request in progress", "The first request with this key is still running; retry in a moment.");
            }

            http.Response.Headers["Idempotent-Replayed"] = "true";
            if (kept.Location is not null)
            {
                http.Response.Headers.Location = kept.Location;
            }

            return Results.Text(kept.Body ?? "", kept.ContentType, Encoding.UTF8, kept.Status);
        }

        await expirations.ScheduleAsync(Idempotency.TableName, new TenantId(scope), rowKey, row.CreatedAt + Idempotency.KeptFor, http.RequestAborted);
        object? result;
        try
        {
            result = await next(context);
        }
        catch
        {
            await table.DeleteAsync(rowKey, cancellationToken: CancellationToken.None);
            throw;
        }

        if (result is not IResult response)
        {
            return result;
        }

        // Run the result into a buffer to keep a copy of exactly what the client got.
        var original = http.Response.Body;
        using var buffer = new MemoryStream();
        http.Response.Body = buffer;
        try
        {
            await response.ExecuteAsync(http);
        }
        finally
        {
            http.Response.Body = original;
        }

        var status = http.Response.StatusCode;
        if (status >= 500 || buffer.Length > Idempotency.MaxKeptBody)
        {
            // Not kept: a retry may run again.
            await table.DeleteAsync(rowKey, cancellationToken: CancellationToken.None);
        }
        else
        {
            row.State = "done";
            row.Status = status;
            row.ContentType = http.Response.ContentType;
            row.Location = http.Response.Headers.Location.ToString() is { Length: > 0 } location ? location : null;
            row.Body = Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            await table.UpdateAsync(row, row.ETag, CancellationToken.None);
        }

        buffer.Position = 0;
        await buffer.CopyToAsync(original, http.RequestAborted);
        return Results.Empty;
    }

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private sealed class IdempotencyEntity : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public string Fingerprint { get; set; } = "";
        public string State { get; set; } = "";
        public int Status { get; set; }
        public string? ContentType { get; set; }
        public string? Location { get; set; }
        public string? Body { get; set; }
        public DateTimeOffset CreatedAt { get; set; }
    }
}
