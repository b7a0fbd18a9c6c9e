using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Platform.Functions.Http;

namespace Platform.Functions.Webhooks.Receivers;

/// <summary>What the hook answers for an accepted (202) or already received (200) message.</summary>
public sealed record HookReceipt(string Id, string Status, bool Duplicate);

/// <summary>
/// <c>POST /api/v1/hooks/{receiverId}</c>, the public URL senders post to. Anonymous: the receiver id in the URL
/// names the receiver (and through the platform index its tenant), and the signature is the credential. What does not
/// depend on the receiver is checked first (content type, size, emptiness), so those answers are the same for every
/// id. An unknown id and a wrong signature are both 401 <c>invalid_signature</c> after the same work (an HMAC over
/// the body), so the answer tells nobody whether a receiver exists. A correctly signed request that is too old is 401
/// <c>timestamp_out_of_range</c>. Accepted: 202 at once, the action runs off the request (<see cref="ReceiptProcessor"/>).
/// </summary>
public static class HookEndpoint
{
    public const string Path = "/api/v1/hooks";
    public const string RateLimitPolicy = "webhook-receiver";

    /// <summary>Marks the hook route for the limits that apply to it whatever the receiver id.</summary>
    public sealed class Marker;

    /// <summary>What a body without Content-Length starts with; it grows (doubling) up to the limit as it arrives.</summary>
    private const int ChunkedStartBytes = 16 * 1024;

    public static RouteHandlerBuilder Map(IEndpointRouteBuilder app) =>
        app.MapPost(Path + "/{receiverId}", ReceiveAsync).WithTags("Webhooks").AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicy).WithMetadata(new Marker())
            .WithMetadata(new RequestSizeLimitAttribute(ReceiverOptions.MaxBodyBytes))
            .Accepts<JsonElement>("application/json")
            .Produces<HookReceipt>(StatusCodes.Status202Accepted)
            .WithName("ReceiveWebhook")
            .WithSummary("A sender posts a signed JSON message to a receiver (Standard Webhooks, GitHub or Stripe signature); 202 once stored, 200 for a message id seen before.");

    internal static async Task<Results<Accepted<HookReceipt>, Ok<HookReceipt>, ProblemHttpResult>> ReceiveAsync(
        string receiverId, HttpContext http, ReceiverStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!IsJson(http.Request.ContentType))
        {
            return Problems.Create(415, "unsupported_media_type", "Unsupported media type", "Send the message as application/json.");
        }

        if (http.Request.ContentLength > ReceiverOptions.MaxBodyBytes)
        {
            return TooLarge();
        }

        var (buffer, length) = await ReadBoundedAsync(http.Request, cancellationToken);
        try
        {
            if (length > ReceiverOptions.MaxBodyBytes)
            {
                return TooLarge();
            }

            if (length == 0)
            {
                return Problems.Create(400, "invalid_body", "Empty message", "The message body is empty.");
            }

            var body = buffer.AsMemory(0, length);
            var target = await store.FindForHookAsync(receiverId, cancellationToken);
            if (target is null)
            {
                ReceiverSignatures.Decoy(body.Span);
                return InvalidSignature();
            }

            switch (ReceiverSignatures.Verify(target.Receiver.Scheme, target.Key, http.Request.Headers, body.Span, time.GetUtcNow()))
            {
                case SignatureVerdict.Invalid:
                    return InvalidSignature();
                case SignatureVerdict.Stale:
                    return Problems.Create(401, "timestamp_out_of_range", "Timestamp out of range",
                        $"The signed timestamp is more than {ReceiverOptions.Tolerance.TotalMinutes} minutes from the server's time; sign the message again.");
            }

            if (!IsWellFormedJson(body.Span, out var stripeId))
            {
                return Problems.Create(400, "invalid_json", "Malformed JSON", "The message is not a JSON document (at most 64 levels deep).");
            }

            var webhookId = target.Receiver.Scheme switch
            {
                ReceiverSchemes.GitHub => http.Request.Headers[ReceiverSignatures.GitHubDelivery].ToString(),
                ReceiverSchemes.Stripe => stripeId,
                _ => http.Request.Headers[ReceiverSignatures.StandardId].ToString(),
            };
            if (webhookId is not { Length: > 0 and <= ReceiverSignatures.MaxWebhookIdLength })
            {
                return Problems.Create(400, "invalid_message_id", "Missing message id",
                    $"The message needs an id of 1 to {ReceiverSignatures.MaxWebhookIdLength} characters (webhook-id, X-GitHub-Delivery, or the Stripe event's id).");
            }

            var receipt = await store.AcceptAsync(target, webhookId, body, cancellationToken);
            var view = new HookReceipt(receipt.Message.Id, receipt.Message.Status, receipt.Duplicate);
            return receipt.Duplicate ? TypedResults.Ok(view) : TypedResults.Accepted((string?)null, view);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static ProblemHttpResult InvalidSignature() =>
        Problems.Create(401, "invalid_signature", "Invalid signature", "The receiver does not exist or the message is not signed with its secret.");

    private static ProblemHttpResult TooLarge() =>
        Problems.Create(413, "payload_too_large", "Message too large", $"A message is at most {ReceiverOptions.MaxBodyBytes} bytes.");

    /// <summary>
    /// Reads the body into a pooled buffer (the caller returns it), at most one byte beyond the limit, so an oversized
    /// body is known without reading the rest. The buffer is as large as Content-Length says (checked against the limit
    /// before), or, for a chunked body, grows as bytes arrive: memory follows what a sender actually sends.
    /// </summary>
    private static async Task<(byte[] Buffer, int Length)> ReadBoundedAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        const int cap = ReceiverOptions.MaxBodyBytes + 1;
        var buffer = ArrayPool<byte>.Shared.Rent(request.ContentLength is { } declared ? (int)declared + 1 : ChunkedStartBytes);
        var total = 0;
        try
        {
            while (total < cap)
            {
                if (total == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, cap));
                    buffer.AsSpan(0, total).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await request.Body.ReadAsync(buffer.AsMemory(total, Math.Min(buffer.Length, cap) - total), cancellationToken);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // The server stopped a chunked body at the route's limit.
            total = cap;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        return (buffer, total);
    }

    private static bool IsJson(string? contentType) =>
        contentType is not null && Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media) &&
        media.MediaType.Value?.ToLowerInvariant() is { } type && (type == "application/json" || (type.StartsWith("application/", StringComparison.Ordinal) && type.EndsWith("+json", StringComparison.Ordinal)));

    /// <summary>True for one well-formed JSON document (UTF-8, at most 64 deep); also hands out a top-level string <c>id</c>.</summary>
    private static bool IsWellFormedJson(ReadOnlySpan<byte> body, out string? topLevelId)
    {
        topLevelId = null;
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
        try
        {
            while (reader.Read())
            {
                if (reader.CurrentDepth == 1 && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("id"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String && topLevelId is null)
                    {
                        topLevelId = reader.GetString();
                    }
                    else if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    {
                        reader.Skip();
                    }
                }
            }

            return reader.BytesConsumed == body.Length || body[(int)reader.BytesConsumed..].Trim(" \t\r\n"u8).IsEmpty;
        }
        catch (JsonException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            // GetString on invalid UTF-8 in a string.
            return false;
        }
    }
}
