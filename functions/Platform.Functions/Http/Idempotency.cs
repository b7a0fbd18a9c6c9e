using System.Buffers;
using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;
using Platform.Functions.Auth;
using Platform.Functions.Housekeeping;
using Platform.Functions.Storage;

namespace Platform.Functions.Http;

/// <summary>
/// <c>Idempotency-Key</c> for POST routes that create things: the first request with a key runs and its answer is
/// kept for 24 hours; the same key with the same request gets that answer again without running twice; the same
/// key with a different request is 422 <c>idempotency_key_reused</c>; a repeat while the first is still running is
/// 409 <c>idempotency_in_progress</c>. Keys are scoped to the caller's tenant and principal - the user, or one of
/// the user's API keys - (anonymous routes share one scope, where only an identical request - passwords included -
/// can fetch the kept answer).
/// </summary>
public static class Idempotency
{
    public const string Header = "Idempotency-Key";
    public const string TableName = "idempotency";
    public const int MaxKeyLength = 255;
    public const int MaxKeptBody = 60 * 1024;
    public static readonly TimeSpan KeptFor = TimeSpan.FromHours(24);

    public static TBuilder WithIdempotency<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder
    {
        // Wraps the endpoint's own delegate rather than adding an endpoint filter: that delegate runs after the
        // authentication and authorization middleware (only a caller allowed on the route now ever reaches a kept
        // answer) and before parameter binding (the body can be fingerprinted byte for byte, whatever the handler
        // binds, and rewound for it).
        builder.Add(endpoint =>
        {
            var inner = endpoint.RequestDelegate ?? throw new InvalidOperationException($"{endpoint.DisplayName} has no request delegate to make idempotent.");
            endpoint.RequestDelegate = http => http.RequestServices.GetRequiredService<IdempotentRequests>().InvokeAsync(http, inner);
        });
        return builder.WithMetadata(IdempotencyMetadata.Instance);
    }

    public static IHostApplicationBuilder AddIdempotency(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<IdempotencyOptions>().BindConfiguration(IdempotencyOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddStorageTable(TableName);
        builder.Services.AddSingleton<IdempotentRequests>();
        return builder;
    }
}

/// <summary>Marks an endpoint that honours <c>Idempotency-Key</c>, so its documentation can say so.</summary>
public sealed class IdempotencyMetadata
{
    public static IdempotencyMetadata Instance { get; } = new();
}

/// <summary>Settings under <c>Platform:Idempotency</c>.</summary>
public sealed class IdempotencyOptions
{
    public const string Section = "Platform:Idempotency";

    /// <summary>
    /// How long a record stays <c>running</c> before a retry may take it over: a request that crashed (or whose
    /// instance died) must not block its key for 24 h. Longer than any request runs.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:10", "01:00:00")]
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(2);
}

internal sealed class IdempotentRequests(
    StorageAccount storage, Expirations expirations, SecretBox secrets, KeyMaterial keys, IOptions<IdempotencyOptions> options,
    IOptions<HttpLimitsOptions> limits, TimeProvider time)
{
    private const string Running = "running";
    private const string Done = "done";
    private static readonly TenantId Anonymous = new("anonymous");

    // Fingerprints of anonymous requests cover passwords: keyed, a stored fingerprint cannot be used to test guesses.
    private readonly byte[] _fingerprintKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, keys.EncryptionKey, 32, info: Encoding.UTF8.GetBytes("platform/idempotency-fingerprint/v1"));

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        var key = http.Request.Headers[Idempotency.Header].ToString();
        if (key.Length == 0)
        {
            await next(http);
            return;
        }

        if (key.Length > Idempotency.MaxKeyLength || key.Any(c => c < 0x21 || c > 0x7E))
        {
            await Problems.Create(400, "invalid_idempotency_key", "Invalid Idempotency-Key", $"Use 1-{Idempotency.MaxKeyLength} visible ASCII characters, e.g. a UUID.").ExecuteAsync(http);
            return;
        }

        var caller = Caller.From(http.User);
        var tenant = caller?.Tenant ?? Anonymous;
        var table = storage.TenantTable(Idempotency.TableName).For(tenant);
        var rowKey = Hash($"{Principal(caller)}\n{http.Request.Method}\n{http.Request.Path}\n{key}");
        var fingerprint = await FingerprintAsync(http);

        var row = new IdempotencyEntity { RowKey = rowKey, Fingerprint = fingerprint, State = Running, CreatedAt = time.GetUtcNow() };
        if (await ClaimAsync(table, row, http.RequestAborted) is { } answer)
        {
            await answer(http, tenant);
            return;
        }

        await expirations.ScheduleAsync(Idempotency.TableName, tenant, rowKey, row.CreatedAt + Idempotency.KeptFor, http.RequestAborted);
        await RunAndKeepAsync(http, next, table, tenant, row);
    }

    /// <summary>
    /// Who a kept answer belongs to. A user's own sessions share it (a retry may come after signing in again); each
    /// API key is a principal of its own, since a key may hold fewer permissions than its user.
    /// </summary>
    private static string Principal(Caller? caller) => caller switch
    {
        null => "anonymous",
        _ when caller.SessionId.StartsWith(SessionGuard.SessionlessPrefix, StringComparison.Ordinal) => $"{caller.UserId}\n{caller.SessionId}",
        _ => $"{caller.UserId}\nuser",
    };

    /// <summary>
    /// Keyed SHA-256 of method, path, query, content type and the body bytes as sent. The body is buffered (to disk
    /// past 30 KB) and rewound for the handler; the route's body limit is enforced here too, since this reads it first.
    /// </summary>
    private async Task<string> FingerprintAsync(HttpContext http)
    {
        var request = http.Request;
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _fingerprintKey);
        foreach (var part in new[] { request.Method, request.Path.Value ?? "", request.QueryString.Value ?? "", request.ContentType ?? "" })
        {
            var bytes = Encoding.UTF8.GetBytes(part);
            hmac.AppendData(BitConverter.GetBytes(bytes.Length));
            hmac.AppendData(bytes);
        }

        var limit = http.GetEndpoint()?.Metadata.GetMetadata<IRequestSizeLimitMetadata>()?.MaxRequestBodySize ?? limits.Value.MaxRequestBodyBytes;
        request.EnableBuffering();
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            long total = 0;
            int read;
            while ((read = await request.Body.ReadAsync(buffer, http.RequestAborted)) > 0)
            {
                total += read;
                if (total > limit)
                {
                    throw new BadHttpRequestException($"The request body is larger than {limit} bytes.", StatusCodes.Status413PayloadTooLarge);
                }

                hmac.AppendData(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        request.Body.Position = 0;
        return Convert.ToHexString(hmac.GetHashAndReset());
    }

    /// <summary>
    /// Makes <paramref name="row"/> the running record of its key (null: go ahead and run), or returns the answer for
    /// a request that must not run: the kept answer, or a problem.
    /// </summary>
    private async Task<Func<HttpContext, TenantId, Task>?> ClaimAsync(TenantPartition table, IdempotencyEntity row, CancellationToken cancellationToken)
    {
        try
        {
            await table.AddAsync(row, cancellationToken);
            return null;
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
        }

        var kept = await table.GetAsync<IdempotencyEntity>(row.RowKey, cancellationToken);
        var now = time.GetUtcNow();
        if (kept is null || kept.CreatedAt + Idempotency.KeptFor < now)
        {
            // Gone since the insert failed, or expired and not yet deleted by housekeeping: never compared or replayed.
            return Refuse(409, "idempotency_in_progress", "Request in progress", "Retry in a moment.");
        }

        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(kept.Fingerprint), Encoding.ASCII.GetBytes(row.Fingerprint)))
        {
            return Refuse(422, "idempotency_key_reused", "Idempotency-Key reused", "This key was used with a different request.");
        }

        if (kept.State == Done)
        {
            return (http, tenant) => ReplayAsync(http, tenant, kept);
        }

        if (kept.CreatedAt + options.Value.Lease <= now)
        {
            // The first request ran out of its lease (it crashed, or its instance died): this retry takes over. The
            // write is conditioned on the ETag read, so of several retries arriving together exactly one wins.
            row.CreatedAt = now;
            try
            {
                await table.UpdateAsync(row, kept.ETag, cancellationToken);
                return null;
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
            }
        }

        return Refuse(409, "idempotency_in_progress", "Request in progress", "The first request with this key is still running; retry in a moment.");
    }

    private static Func<HttpContext, TenantId, Task> Refuse(int status, string code, string title, string detail) =>
        (http, _) => Problems.Create(status, code, title, detail).ExecuteAsync(http);

    private async Task ReplayAsync(HttpContext http, TenantId tenant, IdempotencyEntity kept)
    {
        var body = kept.Body is null ? [] : secrets.Open(kept.Body, Binding(tenant, kept.RowKey));
        http.Response.StatusCode = kept.Status;
        http.Response.ContentType = kept.ContentType;
        http.Response.ContentLength = body.Length;
        http.Response.Headers["Idempotent-Replayed"] = "true";
        if (kept.Location is not null)
        {
            http.Response.Headers.Location = kept.Location;
        }

        await http.Response.Body.WriteAsync(body, http.RequestAborted);
    }

    private async Task RunAndKeepAsync(HttpContext http, RequestDelegate next, TenantPartition table, TenantId tenant, IdempotencyEntity row)
    {
        // The whole response goes into a buffer, to keep a copy of exactly what the client got.
        var original = http.Response.Body;
        using var buffer = new MemoryStream();
        http.Response.Body = buffer;

        // While it runs, the request keeps renewing its lease: only a request that died stops renewing, so only then
        // can a retry take over - a slow one (a large bulk) is never run a second time beside itself.
        using var running = new CancellationTokenSource();
        var renewing = RenewLeaseAsync(table, row, running.Token);
        try
        {
            await next(http);
        }
        catch
        {
            await StopAsync(running, renewing);
            await ForgetAsync(table, row);
            throw;
        }
        finally
        {
            http.Response.Body = original;
        }

        await StopAsync(running, renewing);

        var status = http.Response.StatusCode;
        if (status >= 500 || buffer.Length > Idempotency.MaxKeptBody)
        {
            // Not kept: a retry may run again.
            await ForgetAsync(table, row);
        }
        else
        {
            row.State = Done;
            row.Status = status;
            row.ContentType = http.Response.ContentType;
            row.Location = http.Response.Headers.Location.ToString() is { Length: > 0 } location ? location : null;

            // Sealed: an answer may hold a secret shown once (an API key's text). Raw bytes in a binary property:
            // the largest kept body plus the seal's overhead stays under Table storage's 64 KiB per property.
            row.Body = secrets.SealBytes(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), Binding(tenant, row.RowKey));
            try
            {
                await table.UpdateAsync(row, row.ETag, CancellationToken.None);
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                // This request outlived its lease and a retry took the record over: the retry's answer is the one kept.
            }
        }

        buffer.Position = 0;
        await buffer.CopyToAsync(original, http.RequestAborted);
    }

    /// <summary>Moves the record's lease on every third of it, until stopped or until a retry took the record over.</summary>
    private async Task RenewLeaseAsync(TenantPartition table, IdempotencyEntity row, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                await Task.Delay(options.Value.Lease / 3, time, stop);
                row.CreatedAt = time.GetUtcNow();
                // Not cancelled midway: a renewal that reached storage must leave its new ETag on the row for the final write.
                await table.UpdateAsync(row, row.ETag, CancellationToken.None);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
            // Taken over (the renewal came too late): the final write will find that out too and keep the retry's answer.
        }
    }

    private static async Task StopAsync(CancellationTokenSource running, Task renewing)
    {
        await running.CancelAsync();
        await renewing;
    }

    /// <summary>Deletes the record this request claimed - unless a retry has taken it over since.</summary>
    private static async Task ForgetAsync(TenantPartition table, IdempotencyEntity row)
    {
        try
        {
            await table.DeleteAsync(row.RowKey, row.ETag, CancellationToken.None);
        }
        catch (RequestFailedException ex) when (ex.Status is 404 or 412)
        {
        }
    }

    /// <summary>Associated data of a sealed answer: it opens only in the row it was written to.</summary>
    private static string Binding(TenantId tenant, string rowKey) => $"idempotency:{tenant.Value}:{rowKey}";

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
        public byte[]? Body { get; set; }

        /// <summary>When the current run started: the lease and the 24 h count from here.</summary>
        public DateTimeOffset CreatedAt { get; set; }
    }
}
