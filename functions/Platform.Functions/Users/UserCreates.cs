using Azure;
using Azure.Data.Tables;
using Platform.Functions.Auth;
using Platform.Functions.Events;
using Platform.Functions.Http;

namespace Platform.Functions.Users;

/// <summary>A create checked by <see cref="UserCommands.PrepareCreateAsync"/>, at its place in a request or file.</summary>
public sealed record PreparedCreate(int Index, UserEntity User);

/// <summary>What became of one of many creates.</summary>
/// <param name="Error">Null when the user is stored.</param>
/// <param name="Existed">The user row was there already with this very id: written by an earlier run of the same
/// import rows (ids made with <see cref="Storage.Ids.Derived"/>), so nothing was written now.</param>
public sealed record CreateOutcome(int Index, CommandError? Error, bool Existed = false);

public sealed partial class UserCommands
{
    /// <summary>
    /// Creates per entity-group transaction: each takes two actions (user + email index) of the 100 allowed; the
    /// tenant's user count takes one, their events' outbox row one, and the change-log entry and its lane row two.
    /// </summary>
    public const int CreatesPerTransaction = 48;

    /// <summary>
    /// Writes many prepared creates, <see cref="CreatesPerTransaction"/> to an entity-group transaction with the
    /// tenant's user count, in <see cref="PreparedCreate.Index"/> order, and publishes their events with each
    /// transaction. The rules of one create hold for each: a taken email fails only its create (two creates with one
    /// email: the first wins, as if they had come one by one), and creates beyond the tenant's cap fail on their own
    /// with <c>user_limit_reached</c>, decided against the count the write is conditioned on.
    /// A create whose id is already stored is reported <see cref="CreateOutcome.Existed"/> and counts nothing again:
    /// with ids derived from an import's job and row, a chunk run twice finds its own users.
    /// </summary>
    /// <param name="storageFailuresThrow">A transaction that storage refuses as a whole (the count or the change log
    /// kept losing races, a timeout) throws, after the events of the transactions already written are recorded; when
    /// false, its creates fail on their own with 503 <c>busy</c> instead (the bulk route's answer).</param>
    public async Task<IReadOnlyList<CreateOutcome>> CreateManyAsync(
        Caller caller, IReadOnlyList<PreparedCreate> creates, bool storageFailuresThrow, CancellationToken cancellationToken)
    {
        var tenant = caller.Tenant;
        var outcomes = new Dictionary<int, CreateOutcome>();
        var ordered = creates.OrderBy(c => c.Index).ToList();
        var firsts = new List<PreparedCreate>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var create in ordered)
        {
            if (seen.Add(UserDirectory.NormalizeEmail(create.User.Email)!))
            {
                firsts.Add(create);
            }
            else
            {
                outcomes[create.Index] = new CreateOutcome(create.Index, EmailTaken(create.User.Email));
            }
        }

        // The events of each transaction are in it (their outbox row): a crash loses no event of a written create.
        var partition = users.Users(tenant);
        foreach (var chunk in firsts.Chunk(CreatesPerTransaction))
        {
            var pending = chunk.ToList();
            while (pending.Count > 0)
            {
                var room = 0;
                EventRelay.Committed? planned = null;
                Response<IReadOnlyList<Response>>? written;
                try
                {
                    // The plan that ran last is the one that committed: its outbox row is relayed from memory.
                    written = await events.CoveredAsync(partition, token => users.Count.SubmitAsync(tenant, count =>
                    {
                        room = (int)Math.Clamp(users.MaxUsersPerTenant - count, 0, pending.Count);
                        planned = null;
                        if (room == 0)
                        {
                            return null;
                        }

                        var (outbox, row) = events.Outbox([.. pending.Take(room).Select(p => Created(caller, p.User))]);
                        planned = row;
                        return new(
                            [
                                .. pending.Take(room).SelectMany(p => new[]
                                {
                                    new TableTransactionAction(TableTransactionActionType.Add, p.User),
                                    new TableTransactionAction(TableTransactionActionType.Add,
                                        new EmailIndexEntity { RowKey = EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(p.User.Email)!), UserId = p.User.Id }),
                                }),
                                outbox,
                            ],
                            room);
                    }, token), () => planned, cancellationToken);
                }
                catch (TableTransactionFailedException ex) when (ex.Status == 409 && ex.FailedTransactionActionIndex is { } failedAction && failedAction / 2 < room)
                {
                    // One conflict often comes with others (a chunk run again, a file of existing users): they are
                    // all looked up at once rather than found one failed transaction at a time.
                    var failed = pending[failedAction / 2];
                    foreach (var conflict in await ConflictsAsync(tenant, pending, cancellationToken))
                    {
                        outcomes[conflict.Index] = conflict;
                    }

                    outcomes.TryAdd(failed.Index, failedAction % 2 == 0
                        ? new CreateOutcome(failed.Index, null, Existed: true)
                        : new CreateOutcome(failed.Index, EmailTaken(failed.User.Email)));
                    pending.RemoveAll(p => outcomes.ContainsKey(p.Index));
                    continue;
                }
                catch (TableTransactionFailedException ex) when (ex.FailedTransactionActionIndex is { } failedAction && failedAction / 2 < room &&
                    (!storageFailuresThrow || ex.Status is >= 400 and < 500))
                {
                    // A row storage refuses (not a failure of storage itself): only its create fails, also for an
                    // import, which would otherwise retry a chunk that can never pass.
                    var failed = pending[failedAction / 2];
                    outcomes[failed.Index] = new CreateOutcome(failed.Index, new CommandError(ex.Status, "write_failed", "The user could not be written."));
                    pending.RemoveAt(failedAction / 2);
                    continue;
                }
                catch (RequestFailedException) when (!storageFailuresThrow)
                {
                    // The chunk as a whole could not be written: its creates fail on their own, and the chunks
                    // already written stay written and recorded.
                    foreach (var failed in pending)
                    {
                        outcomes[failed.Index] = new CreateOutcome(failed.Index, new CommandError(503, "busy", "The user could not be written right now; retry this operation."));
                    }

                    pending.Clear();
                    continue;
                }

                if (written is null)
                {
                    // At the cap, a create this import wrote before is still reported as written, not as refused.
                    var existing = await ExistingAsync(tenant, pending, cancellationToken);
                    foreach (var over in pending)
                    {
                        outcomes[over.Index] = existing.Contains(over.User.Id)
                            ? new CreateOutcome(over.Index, null, Existed: true)
                            : new CreateOutcome(over.Index, UserLimitReached(users.MaxUsersPerTenant));
                    }

                    pending.Clear();
                    continue;
                }

                // The count's shard may have had room for only some; the rest go round again (and find room on
                // another shard, or the cap).
                foreach (var create in pending.Take(room))
                {
                    outcomes[create.Index] = new CreateOutcome(create.Index, null);
                    projections.Apply(tenant, create.User);
                }

                pending.RemoveRange(0, room);
            }
        }

        return [.. ordered.Select(c => outcomes[c.Index])];
    }

    /// <summary>The creates of <paramref name="pending"/> whose id or email is stored already, read in parallel.</summary>
    private async Task<IReadOnlyList<CreateOutcome>> ConflictsAsync(Storage.TenantId tenant, IReadOnlyList<PreparedCreate> pending, CancellationToken cancellationToken)
    {
        var partition = users.Users(tenant);
        var found = new CreateOutcome?[pending.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, pending.Count), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            var create = pending[i];
            if (await partition.GetAsync<TableEntity>(create.User.RowKey, ct) is not null)
            {
                found[i] = new CreateOutcome(create.Index, null, Existed: true);
            }
            else if (await partition.GetAsync<EmailIndexEntity>(EmailIndexEntity.KeyFor(UserDirectory.NormalizeEmail(create.User.Email)!), ct) is not null)
            {
                found[i] = new CreateOutcome(create.Index, EmailTaken(create.User.Email));
            }
        });
        return [.. found.OfType<CreateOutcome>()];
    }

    private async Task<HashSet<string>> ExistingAsync(Storage.TenantId tenant, IReadOnlyList<PreparedCreate> creates, CancellationToken cancellationToken)
    {
        var conflicts = await ConflictsAsync(tenant, creates, cancellationToken);
        return [.. conflicts.Where(c => c.Existed).Select(c => creates.First(p => p.Index == c.Index).User.Id)];
    }
}
