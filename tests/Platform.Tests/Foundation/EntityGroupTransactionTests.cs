using System.Runtime.Serialization;
using System.Text;
using Azure;
using Azure.Core;
using Azure.Data.Tables;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Foundation;

/// <summary>
/// The app's own transaction writer against the SDK's: every transaction is sent both ways, to two partitions of one
/// table in Azurite, and what is stored, answered and thrown must be the same.
/// </summary>
public sealed class EntityGroupTransactionTests(Azurite azurite) : IAsyncLifetime
{
    private const string Direct = "direct";
    private const string Sdk = "sdk";

    private readonly StorageAccount _storage = PlatformApp.StorageFor(azurite, PlatformApp.NewPrefix());
    private TableClient _table = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _table = _storage.Table("transactions");
        await _table.CreateIfNotExistsAsync(Ct);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public void AnAccountKeyConnectionStringWritesTransactionsDirectly() => Assert.True(_storage.Transactions.IsDirect);

    [Fact]
    public void DevelopmentStorageByNameWritesTransactionsDirectly()
    {
        // The run command's setting: the emulator's published account on its default ports (the tests' Azurite is on
        // other ports, so the run command's seeding is what writes through it).
        var storage = StorageWith("UseDevelopmentStorage=true", new StorageOptions());

        Assert.True(storage.Transactions.IsDirect);
    }

    [Fact]
    public void TheSdkSettingSendsTransactionsThroughTheSdk()
    {
        var storage = StorageWith(azurite.ConnectionString, new StorageOptions { Transactions = TransactionWriter.Sdk });

        Assert.False(storage.Transactions.IsDirect);
    }

    [Fact]
    public async Task EveryPropertyTypeOfADictionaryEntityIsStoredAsTheSdkStoresIt()
    {
        TableEntity Row(string partition) => new(partition, "all-types")
        {
            ["Text"] = "quote \" backslash \\ line\r\nbreak é 漢字 😀",
            ["Empty"] = "",
            ["Int"] = -42,
            ["Long"] = long.MinValue,
            ["Double"] = 2.0,
            ["Fraction"] = 0.1,
            ["NaN"] = double.NaN,
            ["True"] = true,
            ["When"] = new DateTimeOffset(2026, 11, 29, 10, 11, 12, TimeSpan.FromHours(5)).AddTicks(1234567),
            ["UtcTime"] = new DateTime(1999, 1, 2, 3, 4, 5, DateTimeKind.Utc),
            ["Id"] = Guid.Parse("6f9619ff-8b86-d011-b42d-00cf4fc964ff"),
            ["Bytes"] = new byte[] { 0, 1, 2, 255 },
            ["Data"] = BinaryData.FromString("binary"),
            ["Nothing"] = null,
        };

        await BothWaysAsync(partition => [new(TableTransactionActionType.Add, Row(partition))]);

        await AssertSameRowsAsync();
        var stored = await _table.GetEntityAsync<TableEntity>(Direct, "all-types", cancellationToken: Ct);
        Assert.Equal(long.MinValue, stored.Value["Long"]);
        Assert.Equal(2.0, stored.Value["Double"]);
        Assert.Equal(-42, stored.Value["Int"]);
    }

    [Fact]
    public async Task AModelTypeIsStoredByTheSdksRules()
    {
        await BothWaysAsync(partition =>
        [
            new(TableTransactionActionType.Add, new Model
            {
                PartitionKey = partition, RowKey = "model", Name = "n", Count = 3, Total = 1L << 40, Kind = Shade.Dark,
                Maybe = null, MaybeKind = Shade.Light, Renamed = "r", Ignored = "never stored", Field = 7,
                When = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), Bytes = [1, 2, 3],
            }),
        ]);

        await AssertSameRowsAsync();
        var stored = (await _table.GetEntityAsync<TableEntity>(Direct, "model", cancellationToken: Ct)).Value;
        Assert.Equal("Dark", stored["Kind"]);
        Assert.Equal("r", stored["stored-as"]);
        Assert.False(stored.ContainsKey("Ignored"));
        Assert.Equal(7, stored["Field"]);
    }

    [Fact]
    public async Task AModelsKeysAreTheOnesItHoldsAsATableEntityNeverAMemberOfTheSameName()
    {
        // Explicit ITableEntity keys beside public members named the same: the SDK writes the entity's keys (pinned to
        // the tenant by TenantPartition), so must the writer, or a row could land in the partition a member names.
        await BothWaysAsync(partition => [new(TableTransactionActionType.Add, new ExplicitKeys(partition, "explicit"))]);

        await AssertSameRowsAsync();
        Assert.Empty(await RowsAsync(ExplicitKeys.Decoy));
    }

    [Fact]
    public async Task NamesThatWouldBeWrittenTwiceGoThroughTheSdk()
    {
        await BothWaysAsync(partition =>
        [
            new(TableTransactionActionType.Add, new TwoOfOneName { PartitionKey = partition, RowKey = "two-names", First = "a", Second = "b" }),
            new(TableTransactionActionType.Add, new TableEntity(partition, "own-annotation") { ["L"] = 5L, ["L@odata.type"] = "Edm.Int64" }),
        ]);

        await AssertSameRowsAsync();
    }

    [Fact]
    public async Task ARefusedRequestCarriesTheServicesErrorCode()
    {
        var wrongKey = System.Text.RegularExpressions.Regex.Replace(azurite.ConnectionString, "AccountKey=[^;]+", "AccountKey=" + Convert.ToBase64String(new byte[64]));
        var storage = StorageWith(wrongKey, new StorageOptions { Prefix = _storage.Prefix });
        var table = storage.Table("transactions");
        TableTransactionAction[] actions = [new(TableTransactionActionType.Add, new TableEntity(Direct, "refused"))];

        var direct = await Assert.ThrowsAnyAsync<RequestFailedException>(() => storage.Transactions.SubmitAsync(table, actions, Ct));
        var sdk = await Assert.ThrowsAnyAsync<RequestFailedException>(() => table.SubmitTransactionAsync(actions, Ct));

        // Azurite answers this one in XML with the code in x-ms-error-code, which the SDK's reader leaves out (it reads the
        // JSON body's odata.error, as the writer does first).
        Assert.Equal((403, "AuthorizationFailure"), (direct.Status, direct.ErrorCode));
        Assert.Equal((sdk.Status, sdk.GetType()), (direct.Status, direct.GetType()));
        Assert.True(sdk.ErrorCode is null || sdk.ErrorCode == direct.ErrorCode, $"the SDK read {sdk.ErrorCode}");
    }

    [Fact]
    public async Task EveryKindOfActionWritesWhatTheSdkWrites()
    {
        var etags = new Dictionary<string, ETag>();
        await BothWaysAsync(partition =>
        [
            new(TableTransactionActionType.Add, new TableEntity(partition, "replace") { ["A"] = 1 }),
            new(TableTransactionActionType.Add, new TableEntity(partition, "merge") { ["A"] = 1, ["B"] = "kept" }),
            new(TableTransactionActionType.Add, new TableEntity(partition, "delete") { ["A"] = 1 }),
            new(TableTransactionActionType.Add, new TableEntity(partition, "delete-if") { ["A"] = 1 }),
        ], (partition, responses) =>
        {
            etags[partition + "/delete-if"] = responses[3].Headers.ETag!.Value;
            etags[partition + "/replace"] = responses[0].Headers.ETag!.Value;
        });

        var answers = await BothWaysAsync(partition =>
        [
            new(TableTransactionActionType.UpdateReplace, new TableEntity(partition, "replace") { ["C"] = "only" }, etags[partition + "/replace"]),
            new(TableTransactionActionType.UpdateMerge, new TableEntity(partition, "merge") { ["A"] = 2 }),
            new(TableTransactionActionType.Delete, new TableEntity(partition, "delete")),
            new(TableTransactionActionType.Delete, new TableEntity(partition, "delete-if"), etags[partition + "/delete-if"]),
            new(TableTransactionActionType.UpsertReplace, new TableEntity(partition, "upserted") { ["A"] = 1 }),
            new(TableTransactionActionType.UpsertMerge, new TableEntity(partition, "upsert-merged") { ["A"] = 1 }),
        ]);

        await AssertSameRowsAsync();
        Assert.Equal(
            ["merge", "replace", "upsert-merged", "upserted"],
            (await RowsAsync(Direct)).Select(r => r.RowKey).Order(StringComparer.Ordinal));
        var direct = answers[Direct];
        Assert.Equal(answers[Sdk].Select(r => r.Status), direct.Select(r => r.Status));
        Assert.Equal(6, direct.Count);

        // Each response's ETag is the row's own: the next conditional write can use it.
        var replaced = await _table.GetEntityAsync<TableEntity>(Direct, "replace", cancellationToken: Ct);
        Assert.Equal(replaced.Value.ETag, direct[0].Headers.ETag);
        await _storage.Transactions.SubmitAsync(_table, [new(TableTransactionActionType.UpdateReplace, new TableEntity(Direct, "replace"), direct[0].Headers.ETag!.Value)], Ct);
    }

    [Theory]
    [InlineData("add-existing", 409, "EntityAlreadyExists")]
    [InlineData("stale-etag", 412, "UpdateConditionNotSatisfied")]
    [InlineData("delete-missing", 404, "ResourceNotFound")]
    public async Task AFailedActionIsThrownWithItsIndexAndNothingIsWritten(string failure, int status, string code)
    {
        var etags = new Dictionary<string, ETag>();
        await BothWaysAsync(partition => [new(TableTransactionActionType.Add, new TableEntity(partition, "existing") { ["V"] = 1 })],
            (partition, responses) => etags[partition] = responses[0].Headers.ETag!.Value);
        await BothWaysAsync(partition => [new(TableTransactionActionType.UpdateReplace, new TableEntity(partition, "existing") { ["V"] = 2 }, etags[partition])]);

        var thrown = new Dictionary<string, TableTransactionFailedException>();
        foreach (var (partition, submit) in Submitters())
        {
            TableTransactionAction failing = failure switch
            {
                "add-existing" => new(TableTransactionActionType.Add, new TableEntity(partition, "existing")),
                "stale-etag" => new(TableTransactionActionType.UpdateReplace, new TableEntity(partition, "existing"), etags[partition]),
                _ => new(TableTransactionActionType.Delete, new TableEntity(partition, "missing"), ETag.All),
            };
            thrown[partition] = await Assert.ThrowsAsync<TableTransactionFailedException>(() => submit(
            [
                new(TableTransactionActionType.Add, new TableEntity(partition, "new-1")),
                new(TableTransactionActionType.Add, new TableEntity(partition, "new-2")),
                failing,
            ]));
        }

        Assert.Equal(status, thrown[Direct].Status);
        Assert.Equal(code, thrown[Direct].ErrorCode);
        Assert.Equal(2, thrown[Direct].FailedTransactionActionIndex);
        Assert.Equal((thrown[Sdk].Status, thrown[Sdk].ErrorCode, thrown[Sdk].FailedTransactionActionIndex),
            (thrown[Direct].Status, thrown[Direct].ErrorCode, thrown[Direct].FailedTransactionActionIndex));
        Assert.Equal(["existing"], (await RowsAsync(Direct)).Select(r => r.RowKey));
        await AssertSameRowsAsync();
    }

    [Theory]
    [InlineData("it's")]
    [InlineData("100% sure")]
    [InlineData("a+b=c&d")]
    [InlineData("(paren),[bracket];semi:colon")]
    [InlineData("é漢字😀")]
    [InlineData("''")]
    [InlineData("~outbox~x")]
    public async Task KeysWithCharactersThatNeedEscapingAreAddressedExactly(string key)
    {
        var etags = new Dictionary<string, ETag>();
        await BothWaysAsync(partition => [new(TableTransactionActionType.Add, new TableEntity(partition, key) { ["V"] = 1 }), new(TableTransactionActionType.Add, new TableEntity(partition, key + "-gone"))],
            (partition, responses) => etags[partition] = responses[0].Headers.ETag!.Value);

        await BothWaysAsync(partition =>
        [
            new(TableTransactionActionType.UpdateMerge, new TableEntity(partition, key) { ["W"] = 2 }, etags[partition]),
            new(TableTransactionActionType.Delete, new TableEntity(partition, key + "-gone")),
        ]);

        await AssertSameRowsAsync();
        var stored = await _table.GetEntityAsync<TableEntity>(Direct, key, cancellationToken: Ct);
        Assert.Equal((1, 2), (stored.Value["V"], stored.Value["W"]));
    }

    [Fact]
    public async Task APropertyTheWriterDoesNotWriteGoesThroughTheSdk()
    {
        // decimal and TimeSpan have no table type of their own: the SDK writes them as it does, and so the writer hands
        // such a transaction to it.
        await BothWaysAsync(partition => [new(TableTransactionActionType.Add, new TableEntity(partition, "odd") { ["Span"] = TimeSpan.FromMinutes(90), ["Money"] = 1.5m })]);

        await AssertSameRowsAsync();
    }

    [Fact]
    public async Task WhatTheSdkRefusesTheWriterRefusesTheSameWay()
    {
        foreach (var (partition, submit) in Submitters())
        {
            await Assert.ThrowsAsync<NotSupportedException>(() => submit([new(TableTransactionActionType.Add, new TableEntity(partition, "local") { ["T"] = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Local) })]));
        }

        Assert.Empty(await RowsAsync(Direct));
    }

    [Fact]
    public async Task RandomEntitiesAreStoredAsTheSdkStoresThem()
    {
        // A fixed seed: a failure names the transaction that differed and replays.
        var random = new Random(20261129);
        for (var round = 0; round < 12; round++)
        {
            var rows = Enumerable.Range(0, random.Next(1, 101)).Select(i => (Key: $"{round:D2}-{i:D3}-{RandomText(random, 0, 12, KeyCharacters)}", Properties: RandomProperties(random))).ToList();
            await BothWaysAsync(partition => [.. rows.Select(r =>
            {
                var entity = new TableEntity(partition, r.Key);
                foreach (var (name, value) in r.Properties)
                {
                    entity[name] = value;
                }

                return new TableTransactionAction(TableTransactionActionType.UpsertReplace, entity);
            })]);
        }

        await AssertSameRowsAsync();
    }

    [Fact]
    public void AnAnswerThatIsDamagedOrCutIsARequestFailureNeverAnotherError()
    {
        var valid = Encoding.ASCII.GetBytes(
            "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n" +
            "--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
            "HTTP/1.1 204 No Content\r\nETag: W/\"datetime'2026-11-29T16%3A18%3A24.5982538Z'\"\r\n\r\n\r\n" +
            "--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
            "HTTP/1.1 409 Conflict\r\nContent-ID: 2\r\nContent-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n" +
            "{\"odata.error\":{\"code\":\"EntityAlreadyExists\",\"message\":{\"lang\":\"en-US\",\"value\":\"1:The specified entity already exists.\"}}}\r\n" +
            "--changesetresponse_2--\r\n--batchresponse_1--\r\n");
        var failed = Assert.Throws<TableTransactionFailedException>(() => TransactionAnswer.Read(new Answer(valid), 2));
        Assert.Equal((409, "EntityAlreadyExists", 1), (failed.Status, failed.ErrorCode, failed.FailedTransactionActionIndex));

        var random = new Random(7);
        for (var i = 0; i < 5_000; i++)
        {
            var damaged = valid.ToArray();
            if (i % 2 == 0)
            {
                damaged = damaged[..random.Next(damaged.Length)];
            }

            for (var flips = random.Next(1, 8); flips > 0 && damaged.Length > 0; flips--)
            {
                damaged[random.Next(damaged.Length)] = (byte)random.Next(256);
            }

            try
            {
                TransactionAnswer.Read(new Answer(damaged), 2);
            }
            catch (RequestFailedException)
            {
                // Expected: an answer that cannot be trusted is a failed request.
            }
        }
    }

    private static StorageAccount StorageWith(string connectionString, StorageOptions options) =>
        new(Microsoft.Extensions.Options.Options.Create(new StorageConnection { ConnectionString = connectionString }),
            Microsoft.Extensions.Options.Options.Create(options), Microsoft.Extensions.Options.Options.Create(new StorageLayout()), TimeProvider.System);

    private async Task<Dictionary<string, IReadOnlyList<Response>>> BothWaysAsync(
        Func<string, IReadOnlyCollection<TableTransactionAction>> actions, Action<string, IReadOnlyList<Response>>? answered = null)
    {
        var answers = new Dictionary<string, IReadOnlyList<Response>>();
        foreach (var (partition, submit) in Submitters())
        {
            answers[partition] = (await submit(actions(partition))).Value;
            answered?.Invoke(partition, answers[partition]);
        }

        return answers;
    }

    private IEnumerable<(string Partition, Func<IReadOnlyCollection<TableTransactionAction>, Task<Response<IReadOnlyList<Response>>>> Submit)> Submitters()
    {
        yield return (Direct, actions => _storage.Transactions.SubmitAsync(_table, actions, Ct));
        yield return (Sdk, actions => _table.SubmitTransactionAsync(actions, Ct));
    }

    private async Task<List<TableEntity>> RowsAsync(string partition) =>
        await _table.QueryAsync<TableEntity>(e => e.PartitionKey == partition, cancellationToken: Ct).ToListAsync(Ct);

    /// <summary>Both partitions hold the same rows with the same properties, values and types.</summary>
    private async Task AssertSameRowsAsync()
    {
        static string Describe(TableEntity row) => row.RowKey + " {" + string.Join(", ", row.Keys
            .Where(k => k is not ("PartitionKey" or "Timestamp" or "odata.etag"))
            .Order(StringComparer.Ordinal)
            .Select(k => $"{k}: {Value(row[k])}")) + "}";

        static string Value(object? value) => value switch
        {
            null => "null",
            byte[] bytes => "byte[] " + Convert.ToHexString(bytes),
            double d => "double " + d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            DateTimeOffset t => "time " + t.UtcTicks,
            _ => value.GetType().Name + " " + Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
        };

        var direct = (await RowsAsync(Direct)).Select(Describe).ToList();
        var sdk = (await RowsAsync(Sdk)).Select(Describe).ToList();
        Assert.Equal(sdk, direct);
    }

    /// <summary>What a key may hold: no '/', '\\', '#', '?' or control characters (the service refuses them).</summary>
    private const string KeyCharacters = "abcXYZ019 '\"%+&=()[]{}<>;:,.!@$^*-_~`|é漢";

    private static Dictionary<string, object?> RandomProperties(Random random)
    {
        var properties = new Dictionary<string, object?>();
        for (var i = random.Next(0, 12); i > 0; i--)
        {
            var name = "P" + RandomText(random, 0, 8, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
            properties[name] = random.Next(10) switch
            {
                0 => RandomText(random, 0, 300),
                1 => random.Next(int.MinValue, int.MaxValue),
                2 => random.NextInt64(long.MinValue, long.MaxValue),
                3 => (random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-300, 300)),
                4 => random.Next(2) == 0,
                5 => new DateTimeOffset(random.NextInt64(DateTimeOffset.UnixEpoch.Ticks, new DateTime(9999, 1, 1).Ticks), TimeSpan.Zero),
                6 => new Guid(Enumerable.Range(0, 16).Select(_ => (byte)random.Next(256)).ToArray()),
                7 => Enumerable.Range(0, random.Next(0, 64)).Select(_ => (byte)random.Next(256)).ToArray(),
                8 => null,
                _ => (double)random.Next(-1000, 1000),
            };
        }

        return properties;
    }

    /// <summary>Text of letters, digits, quotes, escapes, controls and characters beyond ASCII; never a lone surrogate.</summary>
    private static string RandomText(Random random, int min, int max, string? alphabet = null)
    {
        const string Default = "abcXYZ019 '\"\\%+&=()[]{}<>;:,.!@$^*-_~`|é漢\t\r\n\u0001\u007f";
        var pool = alphabet ?? Default;
        var text = new StringBuilder();
        for (var i = random.Next(min, max + 1); i > 0; i--)
        {
            if (alphabet is null && random.Next(20) == 0)
            {
                text.Append("😀");
            }
            else
            {
                text.Append(pool[random.Next(pool.Length)]);
            }
        }

        return text.ToString();
    }

    private enum Shade
    {
        Light,
        Dark,
    }

    private sealed class Model : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        public string? Name { get; set; }
        public int Count { get; set; }
        public long Total { get; set; }
        public Shade Kind { get; set; }
        public int? Maybe { get; set; }
        public Shade? MaybeKind { get; set; }
        [DataMember(Name = "stored-as")]
        public string? Renamed { get; set; }
        [IgnoreDataMember]
        public string? Ignored { get; set; }
        public DateTime When { get; set; }
        public byte[]? Bytes { get; set; }
#pragma warning disable CA1051 // A public field, as some models have: the SDK stores it.
        public int Field;
#pragma warning restore CA1051
    }

    /// <summary>Keys implemented explicitly, and public members of the same names that hold something else.</summary>
    private sealed class ExplicitKeys(string partition, string row) : ITableEntity
    {
        public const string Decoy = "decoy";

        string ITableEntity.PartitionKey { get; set; } = partition;
        string ITableEntity.RowKey { get; set; } = row;
        DateTimeOffset? ITableEntity.Timestamp { get; set; }
        ETag ITableEntity.ETag { get; set; }
        public string PartitionKey { get; } = Decoy;
        public string RowKey { get; } = "decoy-row";
        public string Name { get; } = "explicit";
    }

    private sealed class TwoOfOneName : ITableEntity
    {
        public string PartitionKey { get; set; } = "";
        public string RowKey { get; set; } = "";
        public DateTimeOffset? Timestamp { get; set; }
        public ETag ETag { get; set; }
        [DataMember(Name = "Same")]
        public string? First { get; set; }
        [DataMember(Name = "Same")]
        public string? Second { get; set; }
    }

    /// <summary>An answer as the pipeline hands it over: status 202, the body buffered.</summary>
    private sealed class Answer(byte[] body) : Response
    {
        public override int Status => 202;
        public override string ReasonPhrase => "Accepted";
        public override Stream? ContentStream { get; set; } = new MemoryStream(body, 0, body.Length, writable: false, publiclyVisible: true);
        public override string ClientRequestId { get; set; } = "test";
        public override void Dispose() { }
        protected override bool ContainsHeader(string name) => false;
        protected override IEnumerable<HttpHeader> EnumerateHeaders() => [];
        protected override bool TryGetHeader(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value) { value = null; return false; }
        protected override bool TryGetHeaderValues(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IEnumerable<string>? values) { values = null; return false; }
    }
}
