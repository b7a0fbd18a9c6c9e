using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc.ModelBinding;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.OpenApi;
using Platform.Functions.Http;

namespace Platform.Functions.Docs;

/// <summary>
/// Documents the problem responses of every operation from what its endpoint declares, so generated SDKs get typed
/// errors without a line per route: 401/403 where authorization applies, 404 where the route names a resource,
/// 409/422 and the <c>Idempotency-Key</c> header where <see cref="Idempotency.WithIdempotency{TBuilder}"/> applies,
/// 429 where a rate limit applies, 400 (with <c>errors</c>) where a body or query is read, 413/415 where a body is
/// read. <see cref="HandlerProblems"/> adds what only the handler knows (a 409 <c>sku_taken</c>, If-Match's 412).
/// </summary>
internal static class ProblemResponses
{
    public const string ProblemSchema = "Problem";
    public const string ValidationProblemSchema = "ValidationProblem";
    public const string BearerScheme = "bearer";
    public const string ApiKeyScheme = "apiKey";
    private const string ProblemMediaType = "application/problem+json";

    /// <summary>Statuses a handler answers beyond what its endpoint metadata shows, by operation id.</summary>
    private static readonly Dictionary<string, int[]> HandlerProblems = new(StringComparer.Ordinal)
    {
        ["Login"] = [401],
        ["RefreshTokens"] = [401],
        ["ChangePassword"] = [429],
        ["DisableTotp"] = [429],
        ["SetUpTotp"] = [409],
        ["EnableTotp"] = [409],
        ["RegenerateBackupCodes"] = [409],
        ["UpdateMe"] = [412],
        ["PutAvatar"] = [412],
        ["RotateApiKey"] = [409, 412],
        ["RevokeApiKey"] = [412],
        ["PutRole"] = [409, 412],
        ["DeleteRole"] = [409, 412],
        ["UpdateUser"] = [409, 412],
        ["DeleteUser"] = [409, 412],
        ["RestoreUser"] = [409, 412],
        ["SetUserRoles"] = [409, 412],
        ["GetEntraTrust"] = [404],
        ["PutEntraTrust"] = [409],
        ["DeleteEntraTrust"] = [404],
        ["LinkEntraUser"] = [409],
        ["UpdateItem"] = [409, 412],
        ["ArchiveItem"] = [412],
        ["UpdateLocation"] = [409, 412],
        ["DeleteLocation"] = [409, 412],
        ["AcknowledgeAlert"] = [409, 412],
        ["CreateWebhookEndpoint"] = [409],
        ["UpdateWebhookEndpoint"] = [412],
        ["DeleteWebhookEndpoint"] = [412],
        ["RotateWebhookSecret"] = [412],
        ["TestWebhookEndpoint"] = [409],
        ["RecoverWebhookEndpoint"] = [409],
        ["ReplayWebhookDelivery"] = [409],
        ["ReceiveWebhook"] = [401],
        ["CreateWebhookReceiver"] = [409],
        ["DeleteWebhookReceiver"] = [412],
    };

    private static readonly Dictionary<int, string> Descriptions = new()
    {
        [400] = "The request is invalid: `validation_failed` (with `errors` per field), `invalid_json`, `invalid_body`, or a route-specific code.",
        [401] = "No valid credential (`unauthorized`), or the credentials given are wrong.",
        [403] = "The caller is authenticated but not permitted (`forbidden`, or a route-specific code).",
        [404] = "No such resource in the caller's tenant (`not_found`).",
        [409] = "The request conflicts with the resource's state, or a request with the same Idempotency-Key is still running.",
        [412] = "If-Match names an old version (`precondition_failed`): read the resource again.",
        [413] = "The body is larger than this route accepts (`payload_too_large`).",
        [415] = "The body's content type is not accepted (`unsupported_media_type`).",
        [422] = "The Idempotency-Key was used with a different request (`idempotency_key_reused`).",
        [429] = "Too many requests (`rate_limited` or `account_locked`); retry after the seconds in Retry-After.",
    };

    public static void Configure(Microsoft.AspNetCore.OpenApi.OpenApiOptions options)
    {
        // Component names must match ^[a-zA-Z0-9._-]+$: anonymous types have no name worth keeping, so they stay
        // inline; any other character a generic or array type brings in is replaced.
        options.CreateSchemaReferenceId = type =>
            type.Type.Name.Contains("AnonymousType", StringComparison.Ordinal)
                ? null
                : Microsoft.AspNetCore.OpenApi.OpenApiOptions.CreateDefaultSchemaReferenceId(type) is { } id ? SafeId(id) : null;
        options.AddDocumentTransformer((document, _, _) =>
        {
            AddComponents(document);
            return Task.CompletedTask;
        });
        options.AddOperationTransformer((operation, context, _) =>
        {
            Describe(operation, context);
            return Task.CompletedTask;
        });
    }

    internal static string SafeId(string id) =>
        string.Concat(id.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_')).Trim('_');

    private static void AddComponents(OpenApiDocument document)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        document.Components.Schemas[ProblemSchema] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "RFC 9457 problem details with the machine-readable `code` and the `traceId` of the request.",
            Required = new HashSet<string>(StringComparer.Ordinal) { "type", "title", "status", "code", "traceId" },
            Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
            {
                ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A URI reference that identifies the problem type." },
                ["title"] = new OpenApiSchema { Type = JsonSchemaType.String },
                ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32" },
                ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String },
                ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String },
                ["code"] = new OpenApiSchema { Type = JsonSchemaType.String, Pattern = "^[a-z0-9_]+$", Description = "Machine-readable, snake_case; stable across versions." },
                ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "Quote it when reporting a problem." },
            },
            AdditionalPropertiesAllowed = true,
        };
        document.Components.Schemas[ValidationProblemSchema] = new OpenApiSchema
        {
            Description = "A problem that names the invalid fields (`code`: `validation_failed`).",
            AllOf =
            [
                new OpenApiSchemaReference(ProblemSchema, document),
                new OpenApiSchema
                {
                    Type = JsonSchemaType.Object,
                    Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
                    {
                        ["errors"] = new OpenApiSchema
                        {
                            Type = JsonSchemaType.Object,
                            Description = "Messages per field name.",
                            AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.String } },
                        },
                    },
                },
            ],
        };

        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal);
        document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = "An access token from POST /api/v1/auth/login (or a Microsoft Entra ID token when Entra is on).",
        };
        document.Components.SecuritySchemes[ApiKeyScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = "X-Api-Key",
            Description = "An API key (also accepted as `Authorization: ApiKey <key>`).",
        };
    }

    private static OpenApiResponse Problem(string description, string schema, OpenApiDocument? document) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
        {
            [ProblemMediaType] = new OpenApiMediaType { Schema = new OpenApiSchemaReference(schema, document) },
        },
    };

    private static void Describe(OpenApiOperation operation, OpenApiOperationTransformerContext context)
    {
        var description = context.Description;
        var metadata = description.ActionDescriptor.EndpointMetadata;
        var authorized = metadata.OfType<IAuthorizeData>().Any() && !metadata.OfType<IAllowAnonymous>().Any();
        var idempotent = metadata.OfType<IdempotencyMetadata>().Any();
        var hasBody = description.ParameterDescriptions.Any(p => p.Source == BindingSource.Body) || operation.RequestBody is not null;
        var hasQuery = description.ParameterDescriptions.Any(p => p.Source == BindingSource.Query);
        var hasRouteId = description.ParameterDescriptions.Any(p => p.Source == BindingSource.Path);

        var statuses = new SortedSet<int>();
        if (hasBody || hasQuery || idempotent)
        {
            statuses.Add(400);
        }

        if (authorized)
        {
            statuses.UnionWith([401, 403]);
        }

        if (hasRouteId)
        {
            statuses.Add(404);
        }

        if (idempotent)
        {
            statuses.UnionWith([409, 422]);
        }

        if (hasBody)
        {
            statuses.UnionWith([413, 415]);
        }

        if (metadata.OfType<EnableRateLimitingAttribute>().Any())
        {
            statuses.Add(429);
        }

        if (operation.OperationId is { } id && HandlerProblems.TryGetValue(id, out var more))
        {
            statuses.UnionWith(more);
        }

        operation.Responses ??= [];
        foreach (var status in statuses)
        {
            var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (operation.Responses.ContainsKey(key))
            {
                continue;
            }

            var response = Problem(Descriptions[status], status == 400 ? ValidationProblemSchema : ProblemSchema, context.Document);
            if (status == 429)
            {
                response.Headers = new Dictionary<string, IOpenApiHeader>(StringComparer.Ordinal)
                {
                    ["Retry-After"] = new OpenApiHeader { Description = "Seconds to wait before retrying.", Schema = new OpenApiSchema { Type = JsonSchemaType.Integer } },
                };
            }

            operation.Responses[key] = response;
        }

        // What no route plans for but any can answer: 500 internal_error, 503 busy while storage or hashing is saturated.
        operation.Responses.TryAdd("default", Problem(
            "Any other error, e.g. 500 `internal_error` (without internals; quote the traceId) or 503 `busy`.", ProblemSchema, context.Document));

        operation.Parameters ??= [];
        if (statuses.Contains(412))
        {
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = "If-Match",
                In = ParameterLocation.Header,
                Description = "The ETag of the version read; the change is refused with 412 when the resource changed since.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            });
        }

        if (idempotent)
        {
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = Idempotency.Header,
                In = ParameterLocation.Header,
                Description = "1-255 visible ASCII characters (e.g. a UUID): a retry with the same key and request gets the first answer again.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = Idempotency.MaxKeyLength },
            });
        }

        if (authorized)
        {
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, context.Document)] = [] },
            ];
        }
    }
}
