using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Platform.Functions.Events;
using Platform.Functions.Http;
using Platform.Functions.Identity.Passwords;
using Platform.Functions.Jobs.Files;
using Platform.Functions.Jobs.Imports;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>
/// The <c>users</c> import: each row is a create (or, with <c>mode=upsert</c>, an update of the user with that email)
/// checked and written by <see cref="UserCommands"/>, the code the HTTP routes run, so a row passes or fails exactly as
/// the same user sent to <c>POST /api/v1/users</c> or <c>PATCH /api/v1/users/{id}</c> would. Cells are text: they are
/// turned into the JSON the HTTP body takes (roles split at <c>;</c>, custom fields read by the tenant's schema) and a
/// cell that does not read as its type is handed on as text, so the schema's own message names the problem.
/// <para>
/// Creates are written <see cref="UserCommands.CreatesPerTransaction"/> to a transaction with the tenant's user count,
/// as the bulk route writes them. A new user's id is derived from the job, the row and the email
/// (<see cref="Ids.Derived"/>): a chunk run again after a crash adds the same rows, finds them stored and reports them
/// created, so it creates nothing twice and counts nothing twice.
/// </para>
/// </summary>
public sealed class UserImport(UserCommands commands, UserDirectory users, UserSchemas schemas, CallerPermissions permissions) : IImportKind
{
    public const string Kind = "users";

    /// <summary>Updates checked at once in upsert mode; their events are recorded together.</summary>
    private const int UpdatesAtOnce = 48;

    /// <summary>Columns an export of users has that an import leaves alone, so an export can be imported again.</summary>
    private static readonly HashSet<string> ReadOnlyColumns = new(StringComparer.OrdinalIgnoreCase)
    {
        "id", "emailVerified", "mfaEnabled", "createdAt", "updatedAt", "lastLoginAt", "deletedAt",
    };

    /// <summary>The template's columns, and the read-only columns of a users export (left alone).</summary>
    public bool Accepts(string column) =>
        ReadOnlyColumns.Contains(column) || column.StartsWith("fields.", StringComparison.OrdinalIgnoreCase) ||
        Columns.Any(c => string.Equals(c.Name, column, StringComparison.OrdinalIgnoreCase));

    public IReadOnlyList<ImportColumn> Columns { get; } =
    [
        new("email", "ada@example.com", "The user's email address; with mode=upsert, the user a row updates.", Required: true),
        new("displayName", "Ada Lovelace", "At most 100 characters; required for a new user, for an existing one empty leaves it as it is.", Required: true),
        new("password", "", Sensitive: true, Description: "Optional: without one the user is created without a password and sets it through a reset link. Only for new users: an import never changes an existing user's password."),
        new("roles", "user", "Role names separated by ';'. Empty: the default role for a new user, unchanged for an existing one. Naming roles needs roles.manage."),
        new("status", "active", "active or locked. Empty: active for a new user, unchanged for an existing one."),
        new("fields", "{}",
            "Custom fields as a JSON object, as the API takes them. Instead (or as well, winning over this column), one column fields.<name> " +
            "per field of the tenant's user schema, e.g. fields.department: numbers, true/false and ISO dates are read as their type. An empty cell leaves a field as it is."),
    ];

    public async Task<IReadOnlyList<RowOutcome>> ApplyAsync(ImportBatch batch, CancellationToken cancellationToken)
    {
        var caller = batch.Caller;
        var granted = await permissions.ForAsync(caller, cancellationToken);
        if (!granted.Contains(Permissions.UsersWrite))
        {
            // The caller lost the permission (or the account) since the job started: nothing is written on their behalf.
            return [.. batch.Rows.Select(r => RowOutcome.Fail(r.Number, null, null, "Importing users needs the users.write permission."))];
        }

        var schema = await schemas.GetAsync(caller.Tenant, cancellationToken);
        var rows = batch.Rows.Select(r => ImportRow.Read(r, schema)).ToArray();
        var outcomes = rows.Select(r => r.Problem).ToArray();

        // A file names each user once: a later row with the same email fails, in both modes, rather than racing the first.
        var firstRowOf = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < rows.Length; i++)
        {
            if (outcomes[i] is null && UserDirectory.NormalizeEmail(rows[i].Email) is { } email && !firstRowOf.TryAdd(email, rows[i].Number))
            {
                outcomes[i] = rows[i].Fail("email", $"is in row {firstRowOf[email]} of the file too; a file names each user once");
            }
        }

        var existing = new string?[rows.Length];
        if (batch.Mode == ImportMode.Upsert)
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, rows.Length).Where(i => outcomes[i] is null && rows[i].Email is not null), Parallelism(16, cancellationToken),
                async (i, ct) => existing[i] = await users.IdByEmailAsync(caller.Tenant, rows[i].Email!, ct));
            await UpdateAsync(batch, granted, rows, existing, outcomes, cancellationToken);
        }

        await CreateAsync(batch, granted, rows, [.. Enumerable.Range(0, rows.Length).Where(i => outcomes[i] is null && existing[i] is null)], outcomes, cancellationToken);
        return [.. outcomes.Select((o, i) => o ?? RowOutcome.Ok(rows[i].Number))];
    }

    /// <summary>Rows of users that exist: each is a PATCH of what its cells set; one that changes nothing writes nothing.</summary>
    private async Task UpdateAsync(ImportBatch batch, IReadOnlySet<string> granted, ImportRow[] rows, string?[] existing, RowOutcome?[] outcomes, CancellationToken cancellationToken)
    {
        var updates = Enumerable.Range(0, rows.Length).Where(i => outcomes[i] is null && existing[i] is not null).ToList();
        foreach (var group in updates.Chunk(UpdatesAtOnce))
        {
            await Parallel.ForEachAsync(group, Parallelism(8, cancellationToken), async (i, ct) =>
            {
                var outcome = await commands.RunBulkAsync(batch.Caller, granted, "update", existing[i]!, rows[i].UpdateInput(), ct, checkOnly: batch.DryRun);
                if (outcome.Failed(out var error, out _))
                {
                    outcomes[i] = error == UserCommands.UserNotFound
                        // The email belongs to a deleted user: taken, as a create over HTTP would find it.
                        ? rows[i].Fail("email", UserCommands.EmailTaken(rows[i].Email!).Message)
                        : rows[i].Fail(error);
                }
            });
        }
    }

    private async Task CreateAsync(ImportBatch batch, IReadOnlySet<string> granted, ImportRow[] rows, int[] creates, RowOutcome?[] outcomes, CancellationToken cancellationToken)
    {
        var tenant = batch.Caller.Tenant;

        // The job's start (when its id tells it) keeps imported users in creation order among the others.
        var jobTime = Ids.TryReadTime(batch.JobId, out var at) ? at : DateTimeOffset.UnixEpoch;
        var prepared = new PreparedCreate?[rows.Length];
        await Parallel.ForEachAsync(creates, Parallelism(Environment.ProcessorCount, cancellationToken), async (i, ct) =>
        {
            var row = rows[i];
            var id = Ids.Derived(jobTime, $"{tenant.Value}\n{batch.JobId}\n{row.Number}\n{UserDirectory.NormalizeEmail(row.Email)}");
            var outcome = await commands.PrepareCreateAsync(tenant, granted, row.CreateInput(), ct, HashingLane.Bulk, id, checkOnly: batch.DryRun);
            if (outcome.Failed(out var error, out var user))
            {
                outcomes[i] = row.Fail(error);
            }
            else
            {
                prepared[i] = new PreparedCreate(i, user);
            }
        });

        var valid = prepared.OfType<PreparedCreate>().ToList();
        if (batch.DryRun)
        {
            await CheckCreatesAsync(tenant, rows, valid, outcomes, cancellationToken);
            return;
        }

        foreach (var created in await commands.CreateManyAsync(batch.Caller, valid, storageFailuresThrow: true, cancellationToken))
        {
            if (created.Error is { } error)
            {
                outcomes[created.Index] = rows[created.Index].Fail(error);
            }
        }
    }

    /// <summary>
    /// What writing would refuse, without writing: a taken email, and the creates beyond the tenant's cap counted from
    /// the count now plus this chunk's earlier creates (other chunks of the same dry run are not seen).
    /// </summary>
    private async Task CheckCreatesAsync(TenantId tenant, ImportRow[] rows, List<PreparedCreate> creates, RowOutcome?[] outcomes, CancellationToken cancellationToken)
    {
        await Parallel.ForEachAsync(creates, Parallelism(16, cancellationToken), async (create, ct) =>
        {
            if (await users.IdByEmailAsync(tenant, create.User.Email, ct) is not null)
            {
                outcomes[create.Index] = rows[create.Index].Fail("email", UserCommands.EmailTaken(create.User.Email).Message);
            }
        });

        var room = users.MaxUsersPerTenant - await users.Count.ReadAsync(tenant, cancellationToken);
        foreach (var create in creates.Where(c => outcomes[c.Index] is null))
        {
            if (room-- <= 0)
            {
                outcomes[create.Index] = rows[create.Index].Fail(UserCommands.UserLimitReached(users.MaxUsersPerTenant));
            }
        }
    }

    private static ParallelOptions Parallelism(int degree, CancellationToken cancellationToken) =>
        new() { MaxDegreeOfParallelism = degree, CancellationToken = cancellationToken };

    /// <summary>One row's cells, read as the HTTP body would carry them, and the headers they came from.</summary>
    private sealed class ImportRow
    {
        private readonly TabularRow _source;

        /// <summary>Custom field name (as the schema spells it) to the header of its <c>fields.&lt;name&gt;</c> column.</summary>
        private readonly Dictionary<string, string> _fieldHeaders = new(StringComparer.Ordinal);

        private readonly Dictionary<string, string> _headers = new(StringComparer.OrdinalIgnoreCase);
        private JsonObject? _fieldsColumn;

        private ImportRow(TabularRow source) => _source = source;

        public long Number => _source.Number;
        public string? Email { get; private set; }
        public string? DisplayName { get; private set; }
        public string? Password { get; private set; }
        public IReadOnlyList<string>? Roles { get; private set; }
        public string? Status { get; private set; }
        public JsonElement? Fields { get; private set; }

        /// <summary>The row's failure found while reading it (an unknown column, a fields cell that is not a JSON object).</summary>
        public RowOutcome? Problem { get; private set; }

        public UserInput CreateInput() => new(Email, DisplayName, Password, Roles, Fields, Status);

        /// <summary>What a PATCH of this row sets: the email is the key, and a password is never changed by an import.</summary>
        public UserInput UpdateInput() => new(null, DisplayName, null, Roles, Fields, Status);

        public static ImportRow Read(TabularRow source, SchemaDocument schema)
        {
            var row = new ImportRow(source);
            var fieldCells = new List<(string Header, FieldDefinition? Field, string Name, string Value)>();
            foreach (var (header, value) in source.Values)
            {
                var name = header.Trim();
                row._headers.TryAdd(name, header);

                // A password is taken as typed; anything else blank is an empty cell (spreadsheets leave spaces behind).
                var text = string.IsNullOrWhiteSpace(value) ? null : value;
                switch (name.ToLowerInvariant())
                {
                    case "email":
                        row.Email = text?.Trim();
                        break;
                    case "displayname":
                        row.DisplayName = text?.Trim();
                        break;
                    case "password":
                        row.Password = string.IsNullOrEmpty(value) ? null : value;
                        break;
                    case "roles":
                        row.Roles = text?.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                        break;
                    case "status":
                        row.Status = text?.Trim();
                        break;
                    case "fields":
                        if (text is not null)
                        {
                            try
                            {
                                row._fieldsColumn = JsonNode.Parse(text) as JsonObject;
                            }
                            catch (JsonException)
                            {
                                row._fieldsColumn = null;
                            }

                            if (row._fieldsColumn is null)
                            {
                                row.Problem ??= row.Fail("fields", "must be a JSON object");
                            }
                        }

                        break;
                    default:
                        if (name.StartsWith(Query.FilterSchema.CustomFieldPrefix, StringComparison.OrdinalIgnoreCase))
                        {
                            var fieldName = name[Query.FilterSchema.CustomFieldPrefix.Length..];
                            var field = schema.Fields.FirstOrDefault(f => string.Equals(f.Name, fieldName, StringComparison.OrdinalIgnoreCase));
                            if (text is not null)
                            {
                                fieldCells.Add((header, field, field?.Name ?? fieldName, text));
                            }
                        }
                        else if (!ReadOnlyColumns.Contains(name) && text is not null)
                        {
                            row.Problem ??= RowOutcome.Fail(source.Number, header, Shorten(text),
                                "is not a column of the users import (email, displayName, password, roles, status, fields, fields.<name>)");
                        }

                        break;
                }
            }

            if (row._fieldsColumn is not null || fieldCells.Count > 0)
            {
                var fields = row._fieldsColumn ?? [];
                foreach (var (header, field, name, value) in fieldCells)
                {
                    fields[name] = ValueOf(field, value);
                    row._fieldHeaders[name] = header;
                }

                row.Fields = JsonSerializer.SerializeToElement(fields);
            }

            return row;
        }

        /// <summary>
        /// A cell as the JSON value its field takes. Text that does not read as the type stays text, so the schema's
        /// check answers with its own message ("must be a number").
        /// </summary>
        private static JsonValue ValueOf(FieldDefinition? field, string text) => field?.Type switch
        {
            "number" when double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number) => JsonValue.Create(number),
            "boolean" when bool.TryParse(text.Trim(), out var flag) => JsonValue.Create(flag),
            "number" or "boolean" or "date" or "enum" => JsonValue.Create(text.Trim()),
            _ => JsonValue.Create(text),
        };

        public RowOutcome Fail(CommandError error)
        {
            if (error.Fields is { IsValid: false } validation)
            {
                var errors = validation.Errors;
                var (key, messages) = errors.First();
                var message = messages[0];
                var others = errors.SelectMany(e => e.Value.Select(m => $"{e.Key}: {m}")).Skip(1).ToList();
                if (others.Count > 0)
                {
                    message += $" (also {string.Join("; ", others)})";
                }

                return Fail(key, message);
            }

            // Refusals that are not about one value name the column that asked for what was refused.
            var column = error.Code switch
            {
                "email_taken" => "email",
                "permission_not_held" or "forbidden" or "last_admin" => Roles is not null ? "roles" : Status is not null ? "status" : null,
                _ => null,
            };
            return column is null ? RowOutcome.Fail(Number, null, null, error.Message) : Fail(column, error.Message);
        }

        /// <summary>A failure of the column a validation key names, with the cell the file holds there.</summary>
        public RowOutcome Fail(string key, string message)
        {
            string header;
            if (key.StartsWith(Query.FilterSchema.CustomFieldPrefix, StringComparison.Ordinal))
            {
                var name = key[Query.FilterSchema.CustomFieldPrefix.Length..];
                header = _fieldHeaders.TryGetValue(name, out var column) ? column
                    : _fieldsColumn?.ContainsKey(name) == true ? Header("fields")
                    : key;
            }
            else
            {
                header = Header(key);
            }

            // A password is a secret: the error report names its column, never its value.
            var value = key == "password" || !_source.Values.TryGetValue(header, out var cell) ? null : cell;
            return RowOutcome.Fail(Number, header, value is null ? null : Shorten(value), message);
        }

        private string Header(string name) => _headers.TryGetValue(name, out var header) ? header : name;

        /// <summary>A value quoted in the error report: enough to find the cell, never a whole 10 MB one.</summary>
        private static string Shorten(string value) => value.Length <= 200 ? value : value[..200] + "…";
    }
}
