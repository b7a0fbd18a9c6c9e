using System.Security.Cryptography;
using System.Text;
using Microsoft.Net.Http.Headers;

namespace Platform.Functions.Http;

/// <summary>
/// HTTP entity tags for table rows. The storage ETag is weak and reveals a timestamp, so clients see a strong,
/// opaque tag derived from it; <c>If-Match</c> is compared against the same derivation.
/// </summary>
public static class ETags
{
    public static string For(Azure.ETag storageETag) =>
        "\"" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(storageETag.ToString()))).AsSpan(0, 24).ToString() + "\"";

    /// <summary>True when the request has no If-Match, has <c>*</c>, or names the row's current tag.</summary>
    public static bool IfMatchAllows(HttpRequest request, Azure.ETag storageETag)
    {
        var header = request.Headers.IfMatch;
        if (header.Count == 0)
        {
            return true;
        }

        if (!EntityTagHeaderValue.TryParseList(header, out var tags))
        {
            return false;
        }

        var current = For(storageETag);
        return tags.Any(t => t.Equals(EntityTagHeaderValue.Any) || (!t.IsWeak && t.Tag.Equals(current, StringComparison.Ordinal)));
    }

    /// <summary>Puts the row's tag on the response and hands back the view, so a handler answers in one expression.</summary>
    public static TView Tagged<TView>(this HttpContext http, Azure.ETag storageETag, TView view)
    {
        http.Response.Headers.ETag = For(storageETag);
        return view;
    }
}
