using System.Collections.Concurrent;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

public static partial class UsersEndpoints
{
    public const int MaxBulkOperations = 1000;

    public sealed record BulkRequest(IReadOnlyList<BulkOperation>? Operations);

    public sealed record BulkOperation(string? Op, string? Id, JsonElement? Data);

    public sealed record BulkData(string? Email, string? DisplayName, string? Password, IReadOnlyList<string>? Roles, JsonElement? Fields, string? Status);

    public sealed record BulkError(string Code, string Message, IReadOnlyDictionary<string, string[]>? Errors = null);

    public sealed record BulkResult(int Index, int Status, string? Id = null, BulkError? Error = null);

    public sealed record BulkResponse(IReadOnlyList<BulkResult> Results);

    /// <summary>
    /// Up to 1000 operations; each succeeds or fails on its own. Creates are validated first (passwords hashed in
    /// parallel), then written 48 to an entity-group transaction with the tenant's user count; a transaction refused
    /// because one email is taken is retried without that one, so 1000 creates take about 21 round trips and one bad
    /// row fails only itself. Creates beyond the tenant's user cap fail on their own with <c>user_limit_reached</c>.
    /// </summary>
    internal static async Task<Results<Ok<BulkResponse>, ProblemHttpResult>> Bulk(
        BulkRequest request, Caller caller, CallerPermissions permissions, UserCommands commands, CancellationToken cancellationToken)
    {
        if (request.Operations is not { Count: > 0 } operations || operations.Count > MaxBulkOperations)
        {
            return new Validation().Add("operations", $"must hold 1 to {MaxBulkOperations} operations").ToProblem();
        }

        var granted = await permissions.ForAsync(caller, cancellationToken);
        var results = new BulkResult?[operations.Count];
        var prepared = new ConcurrentDictionary<int, UserEntity>();

        await Parallel.ForEachAsync(
            Enumerable.Range(0, operations.Count).Where(i => operations[i]?.Op == "create"),
            new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                if (Read(operations[i].Data, out var data) is { } unreadable)
                {
                    results[i] = new BulkResult(i, 400, Error: unreadable);
                    return;
                }

                var outcome = await commands.PrepareCreateAsync(caller.Tenant, granted,
                    new UserInput(data!.Email, data.DisplayName, data.Password, data.Roles, data.Fields, null), ct, Identity.Passwords.HashingLane.Bulk);
                if (outcome.Failed(out var error, out var user))
                {
                    results[i] = Failed(i, error);
                }
                else
                {
                    prepared[i] = user;
                }
            });

        foreach (var outcome in await commands.CreateManyAsync(caller, [.. prepared.Select(p => new PreparedCreate(p.Key, p.Value))], storageFailuresThrow: false, cancellationToken))
        {
            results[outcome.Index] = outcome.Error is { } error ? Failed(outcome.Index, error) : new BulkResult(outcome.Index, 201, prepared[outcome.Index].Id);
        }

        // The other operations run one by one; each one's event commits with its write.
        for (var i = 0; i < operations.Count; i++)
        {
            results[i] ??= await RunOneAsync(i, operations[i], caller, granted, commands, cancellationToken);
        }

        return TypedResults.Ok(new BulkResponse([.. results.Select(r => r!)]));
    }

    private static async Task<BulkResult> RunOneAsync(int index, BulkOperation? operation, Caller caller, IReadOnlySet<string> granted,
        UserCommands commands, CancellationToken cancellationToken)
    {
        if (operation?.Op is not ("update" or "delete" or "restore"))
        {
            return new BulkResult(index, 400, operation?.Id, new BulkError("invalid_operation", "op must be create, update, delete or restore."));
        }

        if (operation.Id is not { Length: > 0 and <= 64 } id)
        {
            return new BulkResult(index, 400, null, new BulkError("validation_failed", "id is required for " + operation.Op + "."));
        }

        if (operation.Op is "delete" or "restore" && !granted.Contains(Permissions.UsersDelete))
        {
            return new BulkResult(index, 403, id, new BulkError("forbidden", "This operation needs the users.delete permission."));
        }

        UserInput? input = null;
        if (operation.Op == "update")
        {
            if (Read(operation.Data, out var data) is { } unreadable)
            {
                return new BulkResult(index, 400, id, unreadable);
            }

            input = new UserInput(data!.Email, data.DisplayName, null, data.Roles, data.Fields, data.Status);
        }

        var outcome = await commands.RunBulkAsync(caller, granted, operation.Op, id, input, cancellationToken);
        return outcome.Failed(out var error, out _) ? Failed(index, error) with { Id = id } : new BulkResult(index, 200, id);
    }

    private static BulkError? Read(JsonElement? data, out BulkData? parsed)
    {
        parsed = null;
        if (data is not { ValueKind: JsonValueKind.Object } json)
        {
            return new BulkError("validation_failed", "data must be a JSON object.");
        }

        try
        {
            parsed = json.Deserialize<BulkData>(JsonSerializerOptions.Web);
            return parsed is null ? new BulkError("validation_failed", "data must be a JSON object.") : null;
        }
        catch (JsonException)
        {
            return new BulkError("validation_failed", "data has a value of the wrong type.");
        }
    }

    private static BulkResult Failed(int index, CommandError error) =>
        new(index, error.Status, null, new BulkError(error.Code, error.Message, error.Fields is { IsValid: false } fields ? fields.Errors : null));
}
