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

    /// <summary>
    /// Creates per entity-group transaction: each takes two actions (user + email index) of the 100 allowed; the
    /// tenant's user count takes one, and the change-log entry and its sequence row two.
    /// </summary>
    private const int CreatesPerTransaction = 48;

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
        BulkRequest request, Caller caller, CallerPermissions permissions, UserCommands commands,
        UserDirectory users, UserProjections projections, EventPublisher events, CancellationToken cancellationToken)
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

        // Two creates with one email in the same request: the first one wins, as if they had come one by one.
        foreach (var duplicate in prepared.OrderBy(p => p.Key).GroupBy(p => UserDirectory.NormalizeEmail(p.Value.Email)).SelectMany(g => g.Skip(1)))
        {
            prepared.TryRemove(duplicate.Key, out _);
            results[duplicate.Key] = Failed(duplicate.Key, UserCommands.EmailTaken(duplicate.Value.Email));
        }

        foreach (var chunk in prepared.OrderBy(p => p.Key).Chunk(CreatesPerTransaction))
        {
            var pending = chunk.ToList();
            while (pending.Count > 0)
            {
                // As many as the cap leaves room for, in request order; decided against the count the write is
                // conditioned on, so concurrent requests cannot both take the last slots.
                var room = 0;
                Response<IReadOnlyList<Response>>? written;
                try
                {
                    written = await users.Count.SubmitAsync(caller.Tenant, count =>
                    {
                        room = (int)Math.Clamp(users.MaxUsersPerTenant - count, 0, pending.Count);
                        return room == 0 ? null : new(
                            [.. pending.Take(room).SelectMany(p => new[]
                            {
                                new TableTransactionAction(TableTransactionActionType.Add, p.Value),
                                new TableTransactionAction(TableTransactionActionType.Add,
                                    new EmailIndexEntity { RowKey = EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(p.Value.Email)!), UserId = p.Value.Id }),
                            })],
                            room);
                    }, cancellationToken);
                }
                catch (TableTransactionFailedException ex) when (ex.FailedTransactionActionIndex is { } failedAction && failedAction / 2 < room)
                {
                    var (index, user) = pending[failedAction / 2];
                    results[index] = Failed(index, ex.Status == 409 ? UserCommands.EmailTaken(user.Email) : new CommandError(ex.Status, "write_failed", "The user could not be written."));
                    pending.RemoveAt(failedAction / 2);
                    continue;
                }
                catch (RequestFailedException)
                {
                    // The chunk as a whole could not be written (the count or the change log kept losing races):
                    // its creates fail on their own, and the chunks already written stay written and recorded.
                    foreach (var (index, _) in pending)
                    {
                        results[index] = Failed(index, new CommandError(503, "busy", "The user could not be written right now; retry this operation."));
                    }

                    pending.Clear();
                    continue;
                }

                foreach (var (index, _) in pending.Skip(room))
                {
                    results[index] = Failed(index, UserCommands.UserLimitReached(users.MaxUsersPerTenant));
                }

                var created = pending.Take(written is null ? 0 : room).ToList();
                foreach (var (index, user) in created)
                {
                    results[index] = new BulkResult(index, 201, user.Id);
                    projections.Apply(caller.Tenant, user);
                }

                // Recorded with its chunk: a failure in a later chunk cannot lose the events of this one.
                await events.PublishManyAsync(caller.Tenant, [.. created.Select(p => UserCommands.Created(caller, p.Value))], cancellationToken);
                pending.Clear();
            }
        }

        // The other operations run one by one, each recorded as soon as it is applied, so a failure midway loses no
        // event of an applied change.
        var published = new List<PlatformEvent>();
        for (var i = 0; i < operations.Count; i++)
        {
            if (results[i] is null)
            {
                results[i] = await RunOneAsync(i, operations[i], caller, granted, commands, published, cancellationToken);
            }

            if (published.Count > 0)
            {
                await events.PublishManyAsync(caller.Tenant, [.. published], cancellationToken);
                published.Clear();
            }
        }

        return TypedResults.Ok(new BulkResponse([.. results.Select(r => r!)]));
    }

    private static async Task<BulkResult> RunOneAsync(int index, BulkOperation? operation, Caller caller, IReadOnlySet<string> granted,
        UserCommands commands, List<PlatformEvent> published, CancellationToken cancellationToken)
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

        var outcome = await commands.RunBulkAsync(caller, granted, operation.Op, id, input, published, cancellationToken);
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
